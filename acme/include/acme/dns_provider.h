// DNS-01 providers: the seam between the ACME issuer and whoever serves the zone.
//
// A provider adds one TXT value at an fqdn (`present`) and removes exactly that value again
// (`cleanup`). Several values may live at one name at once (a wildcard and its apex share
// `_acme-challenge.<suffix>.`), so `present` ADDS and never replaces the record set, and
// `cleanup` removes BY VALUE. `fqdn` always ends with a dot.
//
// Calls block; the issuer makes them on its own thread, one at a time. A provider object is
// used by one thread at a time but may move between threads.
//
// Errors: `Errc::invalid_argument` means the provider refused the credentials or the
// configuration (reported as `dns_auth`; the detail names the config key to check); every
// other code means the provider was unreachable or failed (`dns_unavailable`). Error details
// and logs never contain credentials (tokens, TSIG secrets, passwords).
#pragma once

#include "base/result.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::acme {

class DnsProvider {
 public:
  virtual ~DnsProvider() = default;

  // "rfc2136", "exec", "httpreq", "cloudflare", or a test double's name.
  virtual std::string_view name() const = 0;
  virtual Status present(const std::string& fqdn, const std::string& value) = 0;
  virtual Status cleanup(const std::string& fqdn, const std::string& value) = 0;
};

// --- rfc2136: DNS UPDATE signed with TSIG (RFC 2136, RFC 8945) -------------------------
struct Rfc2136Options {
  std::string nameserver;      // "host:port" (port 53 when absent); where updates go
  std::string tsig_name;       // key name; a trailing dot is added when missing
  std::string tsig_secret;     // base64; secret
  std::string tsig_algorithm = "hmac-sha256";  // hmac-sha1|-sha224|-sha256|-sha384|-sha512
  std::chrono::milliseconds timeout = std::chrono::seconds(10);  // per exchange
  std::uint32_t ttl = 60;
};
// Validates the options (algorithm, base64 secret, nameserver syntax) without any I/O.
Result<std::unique_ptr<DnsProvider>> make_rfc2136_provider(Rfc2136Options options);

// --- exec: `<command> present|cleanup <fqdn> <value>` (lego's exec hook) ----------------
struct ExecOptions {
  std::string command;  // absolute path; run without a shell, env holds only PATH
  std::chrono::milliseconds timeout = std::chrono::seconds(60);  // then SIGKILL
};
Result<std::unique_ptr<DnsProvider>> make_exec_provider(ExecOptions options);

// --- httpreq: POST {"fqdn","value"} to <url>/present and <url>/cleanup (lego's httpreq) -
struct HttpreqOptions {
  std::string url;        // base URL, http:// (loopback) or https://
  std::string username;   // basic auth when not empty
  std::string password;   // secret
  std::string ca_bundle;  // extra CA file for https, as for the ACME calls
  std::string user_agent = "sandboxd";
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
};
Result<std::unique_ptr<DnsProvider>> make_httpreq_provider(HttpreqOptions options);

// --- cloudflare: the v4 API with a scoped API token ------------------------------------
struct CloudflareOptions {
  std::string api_token;  // secret
  std::string zone_id;    // "" = look the zone up by walking the name's labels
  std::string base_url = "https://api.cloudflare.com/client/v4";
  std::string ca_bundle;
  std::string user_agent = "sandboxd";
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
  std::uint32_t ttl = 120;
};
Result<std::unique_ptr<DnsProvider>> make_cloudflare_provider(CloudflareOptions options);

}  // namespace sandboxd::acme
