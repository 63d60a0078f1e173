#include "propagation.h"

#include "base/log.h"
#include "dns_client.h"

#include <algorithm>
#include <map>
#include <set>

namespace sandboxd::acme {
namespace {

constexpr log::Logger kLog{"acme"};
constexpr std::chrono::milliseconds kQueryTimeout = std::chrono::seconds(3);
constexpr std::string_view kHint =
    "; hint: set acme.dns.propagation.delay, or check: off where outbound DNS is blocked";

// The zone's authoritative addresses, found through the system resolver.
Result<std::vector<NameServer>> zone_servers(const std::string& fqdn) {
  auto zone = find_zone_system(fqdn, kQueryTimeout);
  if (!zone) return zone.error();
  auto ns = dns_query_system(*zone, DnsType::ns, kQueryTimeout);
  if (!ns) return ns.error();
  if (ns->ns.empty()) return Error{Errc::not_found, "zone " + *zone + " lists no NS records"};
  std::vector<NameServer> out;
  for (const auto& host : ns->ns) {
    for (const DnsType t : {DnsType::a, DnsType::aaaa}) {
      auto a = dns_query_system(host, t, kQueryTimeout);
      if (!a) continue;
      for (const auto& addr : a->addresses) out.push_back(NameServer{addr, 53});
    }
  }
  if (out.empty()) return Error{Errc::not_found, "no address for the NS hosts of " + *zone};
  return out;
}

}  // namespace

Status wait_for_propagation(const PropagationOptions& options,
                            const std::vector<TxtRecord>& records, const SleepFn& sleep) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  if (options.delay.count() > 0 && !sleep(options.delay)) {
    return Error{Errc::cancelled, "cancelled"};
  }
  if (options.check == PropagationCheck::off) return ok();

  std::map<std::string, std::set<std::string>> wanted;  // fqdn → values
  for (const auto& r : records) wanted[r.fqdn].insert(r.value);

  std::vector<NameServer> fixed;
  for (const auto& text : options.nameservers) {
    auto ns = parse_nameserver(text);
    if (!ns) return Error{Errc::invalid_argument, "acme.dns.propagation.nameservers: " + ns.error().detail};
    fixed.push_back(*ns);
  }

  const auto deadline = start + options.timeout;
  std::string missing;
  for (int round = 0;; ++round) {
    missing.clear();
    for (const auto& [fqdn, values] : wanted) {
      std::vector<NameServer> servers = fixed;
      if (servers.empty()) {
        auto found = zone_servers(fqdn);
        if (!found) {
          missing = "cannot find the authoritative servers of " + fqdn + ": " + found.error().detail;
          break;
        }
        servers = std::move(*found);
      }
      for (const auto& server : servers) {
        auto a = dns_query(server, fqdn, DnsType::txt, false, kQueryTimeout);
        if (!a) {
          missing = server.text() + ": " + a.error().detail;
          break;
        }
        std::size_t seen = 0;
        for (const auto& v : values) seen += std::count(a->txt.begin(), a->txt.end(), v) > 0 ? 1 : 0;
        if (seen != values.size()) {
          missing = server.text() + " shows " + std::to_string(seen) + " of " +
                    std::to_string(values.size()) + " values at " + fqdn;
          break;
        }
      }
      if (!missing.empty()) break;
    }
    if (missing.empty()) {
      kLog.info("TXT records visible", {{"rounds", round + 1},
                                        {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   clock::now() - start).count()}});
      return ok();
    }
    const auto now = clock::now();
    if (now >= deadline) {
      return Error{Errc::timeout, "TXT records not visible after " +
                                      std::to_string(options.timeout.count() / 1000) + "s (" +
                                      missing + ")" + std::string(kHint)};
    }
    const auto wait = std::min<std::chrono::milliseconds>(
        options.interval, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
    if (!sleep(wait)) return Error{Errc::cancelled, "cancelled"};
  }
}

}  // namespace sandboxd::acme
