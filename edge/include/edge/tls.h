// The certificates the edge's https listener serves (SPEC §3.15), as plain PEM values.
//
// Control is the edge's certificate source: it builds a `TlsCertificates` from files, from
// the ACME manager or from `make_placeholder_certificate`, and hands it to
// `EdgeServer::set_certificates`, which checks it and swaps it in atomically. Handshakes that
// start after the swap use the new set; open connections keep theirs.
//
// `key_pem` is a secret: never log it.
#pragma once

#include "base/result.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::edge {

// One certificate: the leaf, then its chain, and the leaf's private key, all PEM.
struct TlsCertificate {
  std::string chain_pem;
  std::string key_pem;
};

struct TlsCertificates {
  // Serves `*.<suffix>` and `<suffix>`, and every handshake without SNI or with a name that
  // no certificate covers.
  TlsCertificate preview{};
  // Serves control.public_host when `preview` does not cover it.
  std::optional<TlsCertificate> control{};
  // The start-up placeholder (§3.15): while it serves, plain HTTP is not redirected.
  bool placeholder = false;
};

// What the edge learnt from a certificate it checked.
struct TlsCertificateInfo {
  std::vector<std::string> names;  // dNSName SANs, lower-case
  std::chrono::system_clock::time_point not_before{};
  std::chrono::system_clock::time_point not_after{};
};

// Parses a PEM chain and key the way `set_certificates` does: the chain must parse, the key
// must match the leaf. Errors are `invalid_argument` with a message fit for the log.
Result<TlsCertificateInfo> inspect_tls_certificate(const TlsCertificate& cert);

// A self-signed ECDSA P-256 certificate for `names` (the first is the subject CN), valid
// from an hour ago for `validity`.
Result<TlsCertificate> make_placeholder_certificate(const std::vector<std::string>& names,
                                                    std::chrono::seconds validity);

}  // namespace sandboxd::edge
