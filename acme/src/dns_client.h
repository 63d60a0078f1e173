// Plain DNS exchanges for the ACME module, on ldns: queries sent straight to one server
// (RD configurable, UDP with TCP on truncation) and TSIG-signed RFC 2136 updates whose
// answers' TSIG is verified. Blocking; each call builds its own resolver, so calls on
// different threads are independent.
#pragma once

#include "base/result.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::acme {

struct NameServer {
  std::string address;  // an IPv4 or IPv6 literal
  std::uint16_t port = 53;
  std::string text() const;  // "1.2.3.4:53", "[::1]:53"
};

// "host:port", "[v6]:port", "host" (port 53). A host name is resolved with getaddrinfo.
Result<NameServer> parse_nameserver(std::string_view host_port);

struct DnsAnswer {
  int rcode = 0;
  bool truncated = false;
  std::vector<std::string> txt;            // TXT answers at the name, strings joined
  std::vector<std::string> ns;             // NS answers (names)
  std::vector<std::string> addresses;      // A / AAAA answers
  std::vector<std::string> cnames;         // CNAME targets
  std::string soa_owner;                   // owner of an SOA in the answer or authority section
  bool soa_in_answer = false;
};

enum class DnsType { txt, soa, ns, a, aaaa, cname };

// One query to one server. Errors: timeout/unavailable when no answer came.
Result<DnsAnswer> dns_query(const NameServer& server, const std::string& name, DnsType type,
                            bool recursion_desired, std::chrono::milliseconds timeout);
// Through the servers of /etc/resolv.conf (recursive).
Result<DnsAnswer> dns_query_system(const std::string& name, DnsType type,
                                   std::chrono::milliseconds timeout);

struct TsigKey {
  std::string name;       // with the trailing dot
  std::string algorithm;  // ldns spelling, e.g. "hmac-sha256."
  std::string secret;     // base64 (secret)
};

enum class UpdateOp { add, remove };

struct UpdateOutcome {
  int rcode = 0;
  bool tsig_bogus = false;  // the answer's TSIG did not verify (or was missing)
  int tsig_error = 0;       // the error field of the answer's TSIG (16 BADSIG, 17 BADKEY, …)
};

// "BADSIG", "BADKEY", "BADTIME", … ("" for 0).
std::string tsig_error_name(int error);

// Adds (class IN, `ttl`) or removes (class NONE, TTL 0: that exact value) one TXT record.
Result<UpdateOutcome> dns_update_txt(const NameServer& server, const std::string& zone,
                                     const std::string& fqdn, const std::string& value,
                                     UpdateOp op, std::uint32_t ttl, const TsigKey& key,
                                     std::chrono::milliseconds timeout);

std::string rcode_name(int rcode);  // "NOERROR", "REFUSED", "NOTAUTH", …

// The zone holding `fqdn` (with the trailing dot), found by SOA queries to `server`.
Result<std::string> find_zone(const NameServer& server, const std::string& fqdn,
                              std::chrono::milliseconds timeout);
// Same through the system resolver.
Result<std::string> find_zone_system(const std::string& fqdn, std::chrono::milliseconds timeout);

}  // namespace sandboxd::acme
