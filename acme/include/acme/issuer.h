// One ACME DNS-01 issuance, start to finish (RFC 8555, SPEC §10.1).
//
// `Issuer::obtain` runs the whole attempt on the calling thread and blocks until it ends:
// directory → nonce → account (found or created, EAB when configured) → one order for every
// name → a dns-01 TXT value per authorization, each added through the provider (values that
// share a name are added side by side) → propagation check → challenges answered → polling
// with Retry-After → finalize with a CSR from a fresh certificate key → chain downloaded and
// checked. Every value presented is removed again before `obtain` returns, after success and
// after failure; `pending.json` in the storage remembers values whose removal has not
// succeeded yet, and `cleanup_leftovers` (called first by `obtain`) retries them.
//
// Call `obtain` from a thread of its own (the CertificateManager does): it performs network
// I/O and sleeps. `cancel` may be called from any thread; it aborts the request in flight and
// every wait, and `obtain` then fails with code "cancelled" after cleaning up. The provider,
// storage and clock must outlive the Issuer. An Issuer is good for one attempt.
#pragma once

#include "acme/certificate.h"
#include "acme/dns_provider.h"
#include "acme/storage.h"
#include "base/clock.h"
#include "base/result.h"

#include <boost/system/result.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sandboxd::acme {

enum class PropagationCheck { authoritative, off };

struct PropagationOptions {
  std::chrono::milliseconds delay{0};
  std::chrono::milliseconds timeout = std::chrono::seconds(120);
  PropagationCheck check = PropagationCheck::authoritative;
  // "host:port" servers asked instead of the zone's NS set (tests, split horizons).
  std::vector<std::string> nameservers;
  std::chrono::milliseconds interval = std::chrono::seconds(2);
};

struct IssuerOptions {
  std::string directory_url;
  std::string ca_bundle;       // extra CA file (PEM) trusted for the ACME API
  bool trust_system_cas = true;
  std::string email;           // "" = no contact
  std::string eab_kid;         // "" = no external account binding
  std::string eab_hmac;        // base64url MAC key (secret)
  KeyType key_type = KeyType::ec256;
  std::string profile;         // "" = the CA's default
  std::vector<std::string> names;  // e.g. {"*.preview.example.com", "preview.example.com"}
  PropagationOptions propagation;
  std::string user_agent = "sandboxd";
  std::chrono::milliseconds http_timeout = std::chrono::seconds(30);
  std::chrono::milliseconds validation_timeout = std::chrono::minutes(10);
  int max_bad_nonce_retries = 5;
};

// Why an attempt failed. `code` is one of: ca_unavailable, ca_rejected, rate_limited,
// account, challenge_invalid, propagation_timeout, dns_auth, dns_unavailable, invalid_config,
// certificate_invalid, store, cancelled. `step` is one of: directory, account, order, dns_present,
// propagation, validation, finalize, download, store, cleanup. `message` is for operators and
// holds no secret.
struct Failure {
  std::string code;
  std::string step;
  std::string message;
  std::optional<std::chrono::seconds> retry_after;  // rate_limited: wait at least this long
};

[[noreturn]] void throw_exception_from_error(const Failure& f, const boost::source_location& loc);

struct IssuedCertificate {
  CertificateBundle bundle;
  std::string account_url;
  // Milliseconds per step, in order ("directory", "account", "order", "authorizations",
  // "dns_present", "propagation", "validation", "finalize", "download", "cleanup").
  std::vector<std::pair<std::string, std::int64_t>> step_ms;
};

using IssueResult = boost::system::result<IssuedCertificate, Failure>;

class Issuer {
 public:
  Issuer(IssuerOptions options, DnsProvider& provider, Storage& storage,
         const Clock& clock = system_clock());
  ~Issuer();
  Issuer(const Issuer&) = delete;
  Issuer& operator=(const Issuer&) = delete;

  IssueResult obtain();
  // Removes the values `pending.json` still lists; the first failure is returned, the
  // values not removed stay listed.
  Status cleanup_leftovers();
  void cancel();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The storage key prefix of the certificate named `cert_name` ("certs/<cert_name>").
std::string cert_storage_prefix(std::string_view cert_name);

}  // namespace sandboxd::acme
