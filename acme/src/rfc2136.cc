// rfc2136: TXT records added and removed with TSIG-signed DNS UPDATE messages (SPEC §10.4).
#include "acme/dns_provider.h"

#include "base/log.h"
#include "base64.h"
#include "dns_client.h"

#include <ldns/ldns.h>

#include <map>

namespace sandboxd::acme {
namespace {

constexpr log::Logger kLog{"acme"};
constexpr std::string_view kCheckKeys =
    "check acme.dns.rfc2136.tsig_name, tsig_secret and tsig_algorithm";

class Rfc2136Provider final : public DnsProvider {
 public:
  Rfc2136Provider(Rfc2136Options o, NameServer server, TsigKey key)
      : opts_(std::move(o)), server_(std::move(server)), key_(std::move(key)) {}

  std::string_view name() const override { return "rfc2136"; }

  Status present(const std::string& fqdn, const std::string& value) override {
    return update(fqdn, value, UpdateOp::add);
  }
  Status cleanup(const std::string& fqdn, const std::string& value) override {
    return update(fqdn, value, UpdateOp::remove);
  }

 private:
  Status update(const std::string& fqdn, const std::string& value, UpdateOp op) {
    auto zone = zone_of(fqdn);
    if (!zone) return zone.error();
    auto out = dns_update_txt(server_, *zone, fqdn, value, op, opts_.ttl, key_, opts_.timeout);
    if (!out) {
      return Error{Errc::unavailable, "rfc2136: " + out.error().detail};
    }
    const char* what = op == UpdateOp::add ? "add" : "delete";
    std::string answer = rcode_name(out->rcode);
    if (out->tsig_error != 0) answer += " (TSIG " + tsig_error_name(out->tsig_error) + ")";
    if (out->rcode == LDNS_RCODE_REFUSED || out->rcode == LDNS_RCODE_NOTAUTH || out->tsig_error != 0) {
      return Error{Errc::invalid_argument, std::string("rfc2136: ") + server_.text() +
                                               " refused the " + what + " of " + fqdn + ": " +
                                               answer + "; " + std::string(kCheckKeys)};
    }
    if (out->tsig_bogus) {
      return Error{Errc::invalid_argument, std::string("rfc2136: the answer of ") + server_.text() +
                                               " to the " + what + " of " + fqdn + " (" + answer +
                                               ") carries no valid TSIG; " + std::string(kCheckKeys)};
    }
    if (out->rcode != LDNS_RCODE_NOERROR) {
      return Error{Errc::unavailable, std::string("rfc2136: ") + server_.text() + " answered the " +
                                          what + " of " + fqdn + " with " + rcode_name(out->rcode)};
    }
    kLog.debug("TXT record updated", {{"op", what}, {"fqdn", fqdn}, {"zone", *zone}});
    return ok();
  }

  Result<std::string> zone_of(const std::string& fqdn) {
    if (auto it = zones_.find(fqdn); it != zones_.end()) return it->second;
    auto zone = find_zone(server_, fqdn, opts_.timeout);
    if (!zone) {
      return Error{Errc::unavailable, "rfc2136: cannot find the zone of " + fqdn + " at " +
                                          server_.text() + ": " + zone.error().detail};
    }
    zones_[fqdn] = *zone;
    return *zone;
  }

  Rfc2136Options opts_;
  NameServer server_;
  TsigKey key_;
  std::map<std::string, std::string> zones_;
};

}  // namespace

Result<std::unique_ptr<DnsProvider>> make_rfc2136_provider(Rfc2136Options options) {
  if (options.nameserver.empty()) {
    return Error{Errc::invalid_argument, "acme.dns.rfc2136.nameserver is required"};
  }
  auto server = parse_nameserver(options.nameserver);
  if (!server) return Error{Errc::invalid_argument, "acme.dns.rfc2136.nameserver: " + server.error().detail};
  static const std::map<std::string, std::string, std::less<>> kAlgorithms = {
      {"hmac-sha1", "hmac-sha1."},     {"hmac-sha224", "hmac-sha224."},
      {"hmac-sha256", "hmac-sha256."}, {"hmac-sha384", "hmac-sha384."},
      {"hmac-sha512", "hmac-sha512."},
  };
  std::string algorithm = options.tsig_algorithm;
  if (!algorithm.empty() && algorithm.back() == '.') algorithm.pop_back();
  const auto alg = kAlgorithms.find(algorithm);
  if (alg == kAlgorithms.end()) {
    return Error{Errc::invalid_argument,
                 "acme.dns.rfc2136.tsig_algorithm: unknown algorithm \"" + options.tsig_algorithm + "\""};
  }
  if (options.tsig_name.empty()) {
    return Error{Errc::invalid_argument, "acme.dns.rfc2136.tsig_name is required"};
  }
  const auto secret = base64_decode(options.tsig_secret);
  if (!secret || secret->empty()) {
    return Error{Errc::invalid_argument, "acme.dns.rfc2136.tsig_secret is not valid base64"};
  }
  TsigKey key{options.tsig_name, alg->second, options.tsig_secret};
  if (key.name.back() != '.') key.name += '.';
  return std::unique_ptr<DnsProvider>(
      std::make_unique<Rfc2136Provider>(std::move(options), std::move(*server), std::move(key)));
}

}  // namespace sandboxd::acme
