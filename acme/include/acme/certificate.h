// A certificate with its private key, as the edge will serve it.
//
// `inspect_certificate` parses a PEM chain (leaf first) and a PEM private key and checks that
// they belong together; every field of `CertificateBundle` except the PEM text is derived
// from the leaf. Bundles are immutable values shared as `shared_ptr<const CertificateBundle>`
// between threads. `key_pem` is a secret: never log it.
#pragma once

#include "base/clock.h"
#include "base/result.h"

#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::acme {

enum class KeyType { ec256, ec384, rsa2048, rsa4096 };

std::string_view to_string(KeyType type);

struct CertificateBundle {
  std::string chain_pem;            // leaf, then intermediates
  std::string key_pem;              // the leaf's private key (secret)
  std::vector<std::string> names;   // dNSName SANs of the leaf, lower-case, as listed
  Clock::WallTime not_before{};
  Clock::WallTime not_after{};
  std::string serial;               // lower-case hex, no leading zeros
  std::string issuer;               // RFC 2253, e.g. "CN=Pebble Intermediate CA 1d6b4c"
  std::string key_type;             // "ec256", "ec384", "rsa2048", "rsa4096" or "other"
};

// Errors are `invalid_argument`: the chain does not parse, the key does not parse or does
// not match the leaf.
Result<CertificateBundle> inspect_certificate(std::string chain_pem, std::string key_pem);

// True when every wanted name is one of the bundle's SANs (exact, case-insensitive).
bool covers_names(const CertificateBundle& bundle, const std::vector<std::string>& wanted);

}  // namespace sandboxd::acme
