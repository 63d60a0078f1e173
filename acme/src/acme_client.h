// The RFC 8555 wire protocol: the directory, nonces, and JWS-signed POSTs (ES256, `jwk` for
// newAccount, `kid` after) with the badNonce retry. It knows no order logic; the Issuer
// drives it. Blocking, one thread at a time, like the HttpClient it uses.
#pragma once

#include "http_client.h"

#include "base/clock.h"
#include "base/result.h"

#include <boost/json/value.hpp>
#include <openssl/evp.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::acme {

struct Directory {
  std::string new_nonce;
  std::string new_account;
  std::string new_order;
  std::string renewal_info;  // "" when the CA has no ARI
  bool external_account_required = false;
  std::vector<std::string> profiles;
};

// An RFC 7807 problem document from the CA.
struct Problem {
  std::string type;    // e.g. "urn:ietf:params:acme:error:badNonce"
  std::string detail;
  int status = 0;
  // The type without the ACME namespace: "badNonce", "rateLimited", …
  std::string short_type() const;
  std::string describe() const;  // "rateLimited: too many orders (HTTP 429)"
};

struct AcmeResponse {
  int status = 0;
  std::string location;
  std::string body;
  boost::json::value json;                 // null when the body is not JSON
  std::optional<std::chrono::seconds> retry_after;
  std::optional<Problem> problem;          // set for every status outside 2xx
};

class AcmeClient {
 public:
  AcmeClient(HttpClient& http, EVP_PKEY* account_key, const Clock& clock, int max_bad_nonce);

  Result<Directory> fetch_directory(const std::string& url);
  // Signed POST. `payload` is the JSON text, "" for POST-as-GET. With `use_jwk` the header
  // carries the account's JWK (newAccount), otherwise the kid set by set_account_url.
  // Transport failures are errors; ACME problems come back in `problem`.
  Result<AcmeResponse> post(const std::string& url, const std::string& payload,
                            bool use_jwk = false, const std::string& accept = "");
  void set_account_url(std::string url) { kid_ = std::move(url); }
  const std::string& account_url() const { return kid_; }
  const std::string& account_jwk() const { return jwk_; }
  const std::string& thumbprint() const { return thumbprint_; }
  // "" after construction if the key is not P-256 (then every post fails).
  const std::string& key_error() const { return key_error_; }

 private:
  Result<std::string> fresh_nonce();
  void remember_nonce(const HttpResponse& r);

  HttpClient& http_;
  EVP_PKEY* key_;
  const Clock& clock_;
  int max_bad_nonce_;
  std::string new_nonce_url_;
  std::string nonce_;
  std::string kid_;
  std::string jwk_;
  std::string thumbprint_;
  std::string key_error_;
};

}  // namespace sandboxd::acme
