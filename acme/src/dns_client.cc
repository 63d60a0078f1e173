#include "dns_client.h"

#include <ldns/ldns.h>

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>

namespace sandboxd::acme {
namespace {

struct ResolverFree {
  void operator()(ldns_resolver* r) const { ldns_resolver_deep_free(r); }
};
struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
struct RdfFree {
  void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
struct BufferFree {
  void operator()(ldns_buffer* b) const { ldns_buffer_free(b); }
};
struct MallocFree {
  void operator()(void* p) const { free(p); }  // NOLINT: memory from ldns' malloc
};
struct RrListFree {
  void operator()(ldns_rr_list* l) const { ldns_rr_list_deep_free(l); }
};
using ResolverPtr = std::unique_ptr<ldns_resolver, ResolverFree>;
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string absolute(std::string name) {
  if (name.empty() || name.back() != '.') name += '.';
  return name;
}

std::string rdf_text(const ldns_rdf* rdf) {
  char* s = ldns_rdf2str(rdf);
  if (s == nullptr) return {};
  std::string out(s);
  free(s);  // NOLINT: allocated by ldns with malloc
  return out;
}

timeval to_timeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = d.count() / 1000;
  tv.tv_usec = (d.count() % 1000) * 1000;
  return tv;
}

ldns_rr_type rr_type(DnsType t) {
  switch (t) {
    case DnsType::txt: return LDNS_RR_TYPE_TXT;
    case DnsType::soa: return LDNS_RR_TYPE_SOA;
    case DnsType::ns: return LDNS_RR_TYPE_NS;
    case DnsType::a: return LDNS_RR_TYPE_A;
    case DnsType::aaaa: return LDNS_RR_TYPE_AAAA;
    case DnsType::cname: return LDNS_RR_TYPE_CNAME;
  }
  return LDNS_RR_TYPE_TXT;
}

Error status_error(std::string_view what, ldns_status st, const std::string& server) {
  const char* text = ldns_get_errorstr_by_id(st);
  return Error{Errc::unavailable, std::string(what) + " " + server + ": " + (text ? text : "unknown error")};
}

Result<ResolverPtr> resolver_for(const NameServer& server, bool rd,
                                 std::chrono::milliseconds timeout) {
  ResolverPtr res(ldns_resolver_new());
  if (!res) return Error{Errc::internal, "ldns_resolver_new"};
  const bool v6 = server.address.find(':') != std::string::npos;
  RdfPtr addr(ldns_rdf_new_frm_str(v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A,
                                   server.address.c_str()));
  if (!addr) return Error{Errc::invalid_argument, "not an IP address: " + server.address};
  if (ldns_resolver_push_nameserver(res.get(), addr.get()) != LDNS_STATUS_OK) {
    return Error{Errc::internal, "ldns_resolver_push_nameserver"};
  }
  ldns_resolver_set_port(res.get(), server.port);
  ldns_resolver_set_recursive(res.get(), rd);
  ldns_resolver_set_timeout(res.get(), to_timeval(timeout));
  ldns_resolver_set_retry(res.get(), 1);
  ldns_resolver_set_fallback(res.get(), true);
  ldns_resolver_set_dnssec(res.get(), false);
  ldns_resolver_set_random(res.get(), false);
  return res;
}

DnsAnswer read_answer(const ldns_pkt* pkt) {
  DnsAnswer a;
  a.rcode = static_cast<int>(ldns_pkt_get_rcode(pkt));
  a.truncated = ldns_pkt_tc(pkt);
  const ldns_rr_list* answer = ldns_pkt_answer(pkt);
  for (std::size_t i = 0; i < ldns_rr_list_rr_count(answer); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(answer, i);
    switch (ldns_rr_get_type(rr)) {
      case LDNS_RR_TYPE_TXT: {
        std::string joined;
        for (std::size_t j = 0; j < ldns_rr_rd_count(rr); ++j) {
          const ldns_rdf* rdf = ldns_rr_rdf(rr, j);
          const std::uint8_t* data = ldns_rdf_data(rdf);
          const std::size_t size = ldns_rdf_size(rdf);
          if (size == 0) continue;
          const std::size_t len = std::min<std::size_t>(data[0], size - 1);
          joined.append(reinterpret_cast<const char*>(data + 1), len);
        }
        a.txt.push_back(std::move(joined));
        break;
      }
      case LDNS_RR_TYPE_NS: a.ns.push_back(lower(rdf_text(ldns_rr_rdf(rr, 0)))); break;
      case LDNS_RR_TYPE_A:
      case LDNS_RR_TYPE_AAAA: a.addresses.push_back(rdf_text(ldns_rr_rdf(rr, 0))); break;
      case LDNS_RR_TYPE_CNAME: a.cnames.push_back(lower(rdf_text(ldns_rr_rdf(rr, 0)))); break;
      case LDNS_RR_TYPE_SOA:
        a.soa_owner = lower(rdf_text(ldns_rr_owner(rr)));
        a.soa_in_answer = true;
        break;
      default: break;
    }
  }
  if (a.soa_owner.empty()) {
    const ldns_rr_list* authority = ldns_pkt_authority(pkt);
    for (std::size_t i = 0; i < ldns_rr_list_rr_count(authority); ++i) {
      const ldns_rr* rr = ldns_rr_list_rr(authority, i);
      if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA) {
        a.soa_owner = lower(rdf_text(ldns_rr_owner(rr)));
        break;
      }
    }
  }
  return a;
}

Result<DnsAnswer> query_with(ldns_resolver* res, const std::string& name, DnsType type, bool rd,
                             const std::string& server_text) {
  RdfPtr qname(ldns_dname_new_frm_str(absolute(name).c_str()));
  if (!qname) return Error{Errc::invalid_argument, "invalid DNS name: " + name};
  ldns_pkt* raw = nullptr;
  const ldns_status st = ldns_resolver_send(&raw, res, qname.get(), rr_type(type),
                                            LDNS_RR_CLASS_IN, rd ? LDNS_RD : 0);
  PktPtr pkt(raw);
  if (st != LDNS_STATUS_OK || !pkt) return status_error("no DNS answer from", st, server_text);
  return read_answer(pkt.get());
}

// Walks from `fqdn` towards the root until a server names the zone with an SOA.
template <class Query>
Result<std::string> walk_zone(const std::string& fqdn, Query query) {
  std::string name = lower(absolute(fqdn));
  Error last{Errc::not_found, "no zone found for " + fqdn};
  while (!name.empty() && name != ".") {
    auto a = query(name);
    if (!a) return a.error();
    if (!a->soa_owner.empty() && (a->rcode == LDNS_RCODE_NOERROR || a->rcode == LDNS_RCODE_NXDOMAIN)) {
      return a->soa_owner;
    }
    if (a->rcode != LDNS_RCODE_NOERROR && a->rcode != LDNS_RCODE_NXDOMAIN) {
      last = Error{Errc::unavailable, "SOA query for " + name + " answered " + rcode_name(a->rcode)};
    }
    const auto dot = name.find('.');
    name = dot == std::string::npos ? "" : name.substr(dot + 1);
  }
  return last;
}

std::string quote_txt(const std::string& value) {
  std::string q = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

}  // namespace

std::string NameServer::text() const {
  if (address.find(':') != std::string::npos) return "[" + address + "]:" + std::to_string(port);
  return address + ":" + std::to_string(port);
}

Result<NameServer> parse_nameserver(std::string_view host_port) {
  std::string host;
  std::string port = "53";
  if (host_port.empty()) return Error{Errc::invalid_argument, "empty nameserver"};
  if (host_port.front() == '[') {
    const auto close = host_port.find(']');
    if (close == std::string_view::npos) return Error{Errc::invalid_argument, "bad nameserver"};
    host = host_port.substr(1, close - 1);
    if (close + 1 < host_port.size()) {
      if (host_port[close + 1] != ':') return Error{Errc::invalid_argument, "bad nameserver"};
      port = host_port.substr(close + 2);
    }
  } else if (std::count(host_port.begin(), host_port.end(), ':') == 1) {
    const auto colon = host_port.find(':');
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
  } else {
    host = host_port;
  }
  unsigned value = 0;
  const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || ec != std::errc() || p != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return Error{Errc::invalid_argument, "bad nameserver \"" + std::string(host_port) + "\""};
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0 || res == nullptr) {
    return Error{Errc::unavailable, "cannot resolve nameserver " + host + ": " + gai_strerror(rc)};
  }
  char buf[NI_MAXHOST];
  const int rc = ::getnameinfo(res->ai_addr, res->ai_addrlen, buf, sizeof buf, nullptr, 0,
                               NI_NUMERICHOST);
  ::freeaddrinfo(res);
  if (rc != 0) return Error{Errc::unavailable, "cannot resolve nameserver " + host};
  return NameServer{buf, static_cast<std::uint16_t>(value)};
}

Result<DnsAnswer> dns_query(const NameServer& server, const std::string& name, DnsType type,
                            bool recursion_desired, std::chrono::milliseconds timeout) {
  auto res = resolver_for(server, recursion_desired, timeout);
  if (!res) return res.error();
  return query_with(res->get(), name, type, recursion_desired, server.text());
}

Result<DnsAnswer> dns_query_system(const std::string& name, DnsType type,
                                   std::chrono::milliseconds timeout) {
  ldns_resolver* raw = nullptr;
  if (ldns_resolver_new_frm_file(&raw, nullptr) != LDNS_STATUS_OK || raw == nullptr) {
    return Error{Errc::unavailable, "cannot read /etc/resolv.conf"};
  }
  ResolverPtr res(raw);
  ldns_resolver_set_recursive(res.get(), true);
  ldns_resolver_set_timeout(res.get(), to_timeval(timeout));
  ldns_resolver_set_retry(res.get(), 1);
  ldns_resolver_set_fallback(res.get(), true);
  return query_with(res.get(), name, type, true, "the system resolver");
}

Result<UpdateOutcome> dns_update_txt(const NameServer& server, const std::string& zone,
                                     const std::string& fqdn, const std::string& value,
                                     UpdateOp op, std::uint32_t ttl, const TsigKey& key,
                                     std::chrono::milliseconds timeout) {
  auto res = resolver_for(server, false, timeout);
  if (!res) return res.error();
  const std::string text = op == UpdateOp::add
                               ? absolute(fqdn) + " " + std::to_string(ttl) + " IN TXT " + quote_txt(value)
                               : absolute(fqdn) + " 0 NONE TXT " + quote_txt(value);
  ldns_rr* rr = nullptr;
  if (ldns_rr_new_frm_str(&rr, text.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK || !rr) {
    return Error{Errc::invalid_argument, "cannot build the TXT record for " + fqdn};
  }
  std::unique_ptr<ldns_rr_list, RrListFree> updates(ldns_rr_list_new());
  ldns_rr_list_push_rr(updates.get(), rr);
  ldns_rdf* zone_rdf = ldns_dname_new_frm_str(absolute(zone).c_str());
  if (zone_rdf == nullptr) return Error{Errc::invalid_argument, "invalid zone " + zone};
  // The packet owns zone_rdf; it copies the update list.
  PktPtr pkt(ldns_update_pkt_new(zone_rdf, LDNS_RR_CLASS_IN, nullptr, updates.get(), nullptr));
  if (!pkt) return Error{Errc::internal, "ldns_update_pkt_new"};
  ldns_resolver_set_tsig_keyname(res->get(), key.name.c_str());
  ldns_resolver_set_tsig_algorithm(res->get(), key.algorithm.c_str());
  ldns_resolver_set_tsig_keydata(res->get(), key.secret.c_str());
  if (ldns_status st = ldns_update_pkt_tsig_add(pkt.get(), res->get()); st != LDNS_STATUS_OK) {
    return Error{Errc::invalid_argument,
                 std::string("cannot sign the update with TSIG: ") + ldns_get_errorstr_by_id(st)};
  }
  // Sent by hand rather than with ldns_resolver_send_pkt: that one drops an answer whose TSIG
  // does not verify, and with it the rcode and TSIG error that tell an operator what is wrong.
  std::unique_ptr<ldns_buffer, BufferFree> query(ldns_buffer_new(LDNS_MAX_PACKETLEN));
  if (!query || ldns_pkt2buffer_wire(query.get(), pkt.get()) != LDNS_STATUS_OK) {
    return Error{Errc::internal, "cannot encode the DNS UPDATE"};
  }
  const bool v6 = server.address.find(':') != std::string::npos;
  RdfPtr addr(ldns_rdf_new_frm_str(v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, server.address.c_str()));
  if (!addr) return Error{Errc::invalid_argument, "not an IP address: " + server.address};
  std::size_t to_len = 0;
  std::unique_ptr<sockaddr_storage, MallocFree> to(
      ldns_rdf2native_sockaddr_storage(addr.get(), server.port, &to_len));
  if (!to) return Error{Errc::internal, "ldns_rdf2native_sockaddr_storage"};

  auto exchange = [&](bool tcp) -> Result<std::pair<std::unique_ptr<uint8_t, MallocFree>, std::size_t>> {
    uint8_t* wire = nullptr;
    std::size_t size = 0;
    const ldns_status st = tcp ? ldns_tcp_send(&wire, query.get(), to.get(), static_cast<socklen_t>(to_len),
                                               to_timeval(timeout), &size)
                               : ldns_udp_send(&wire, query.get(), to.get(), static_cast<socklen_t>(to_len),
                                               to_timeval(timeout), &size);
    std::unique_ptr<uint8_t, MallocFree> owned(wire);
    if (st != LDNS_STATUS_OK || !owned) return status_error("no answer to the DNS UPDATE from", st, server.text());
    return std::make_pair(std::move(owned), size);
  };
  auto wire = exchange(false);
  if (!wire) return wire.error();
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, wire->first.get(), wire->second) != LDNS_STATUS_OK) {
    return Error{Errc::unavailable, "malformed answer to the DNS UPDATE from " + server.text()};
  }
  PktPtr reply(raw);
  if (ldns_pkt_tc(reply.get())) {
    wire = exchange(true);
    if (!wire) return wire.error();
    raw = nullptr;
    if (ldns_wire2pkt(&raw, wire->first.get(), wire->second) != LDNS_STATUS_OK) {
      return Error{Errc::unavailable, "malformed answer to the DNS UPDATE from " + server.text()};
    }
    reply.reset(raw);
  }
  if (ldns_pkt_id(reply.get()) != ldns_pkt_id(pkt.get())) {
    return Error{Errc::unavailable, "answer to the DNS UPDATE from " + server.text() + " has another id"};
  }
  UpdateOutcome out;
  out.rcode = static_cast<int>(ldns_pkt_get_rcode(reply.get()));
  const ldns_rr* tsig = ldns_pkt_tsig(reply.get());
  if (tsig != nullptr && ldns_rr_rd_count(tsig) > 5) {
    out.tsig_error = ldns_rdf2native_int16(ldns_rr_rdf(tsig, 5));
  }
  const ldns_rdf* request_mac = ldns_rr_rdf(ldns_pkt_tsig(pkt.get()), 3);
  out.tsig_bogus = !ldns_pkt_tsig_verify(reply.get(), wire->first.get(), wire->second,
                                         key.name.c_str(), key.secret.c_str(), request_mac);
  return out;
}

std::string tsig_error_name(int error) {
  switch (error) {
    case 0: return "";
    case 16: return "BADSIG";
    case 17: return "BADKEY";
    case 18: return "BADTIME";
    case 22: return "BADTRUNC";
    default: return "TSIG error " + std::to_string(error);
  }
}

std::string rcode_name(int rcode) {
  const ldns_lookup_table* lt = ldns_lookup_by_id(ldns_rcodes, rcode);
  if (lt != nullptr && lt->name != nullptr) return lt->name;
  return "RCODE" + std::to_string(rcode);
}

Result<std::string> find_zone(const NameServer& server, const std::string& fqdn,
                              std::chrono::milliseconds timeout) {
  auto res = resolver_for(server, false, timeout);
  if (!res) return res.error();
  return walk_zone(fqdn, [&](const std::string& name) {
    return query_with(res->get(), name, DnsType::soa, false, server.text());
  });
}

Result<std::string> find_zone_system(const std::string& fqdn, std::chrono::milliseconds timeout) {
  return walk_zone(fqdn, [&](const std::string& name) {
    return dns_query_system(name, DnsType::soa, timeout);
  });
}

}  // namespace sandboxd::acme
