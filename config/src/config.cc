#include "config/config.h"

#include <arpa/inet.h>

#include <cstring>
#include <ostream>

#include "enums.h"

namespace sandboxd::config {

std::string Secret::str() const { return "<redacted>"; }

std::ostream& operator<<(std::ostream& os, const Secret& s) { return os << s.str(); }

std::string HostPort::str() const {
  std::string out;
  if (host.find(':') != std::string::npos) {
    out = "[" + host + "]";
  } else {
    out = host;
  }
  out += ":" + std::to_string(port);
  return out;
}

bool HostPort::is_loopback() const { return is_loopback_host(host); }

bool is_loopback_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 64) return false;
  std::string lower;
  for (char c : host) lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (lower == "localhost") return true;
  unsigned char buf[16];
  if (inet_pton(AF_INET, lower.c_str(), buf) == 1) return buf[0] == 127;
  if (inet_pton(AF_INET6, lower.c_str(), buf) == 1) {
    static constexpr unsigned char kLoop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(buf, kLoop6, 16) == 0) return true;
    // ::ffff:127.0.0.1 is how a v4 loopback peer looks on a dual-stack socket.
    return std::memcmp(buf, kMapped, 12) == 0 && buf[12] == 127;
  }
  return false;
}

bool Cidr::contains(bool addr_v6, const std::uint8_t* addr) const {
  if (addr_v6 != v6) return false;
  int full = prefix_len / 8;
  if (std::memcmp(address.data(), addr, static_cast<std::size_t>(full)) != 0) return false;
  int rest = prefix_len % 8;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (addr[full] & mask) == address[static_cast<std::size_t>(full)];
}

std::string Cidr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, address.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix_len);
}

std::string_view to_string(log::Level v) { return detail::enum_name(detail::kLogLevels, v); }
std::string_view to_string(log::Format v) { return detail::enum_name(detail::kLogFormats, v); }
std::string_view to_string(AuthRequired v) { return detail::enum_name(detail::kAuthRequired, v); }
std::string_view to_string(UndeclaredPorts v) {
  return detail::enum_name(detail::kUndeclaredPorts, v);
}
std::string_view to_string(TlsMode v) { return detail::enum_name(detail::kTlsModes, v); }
std::string_view to_string(TlsVersion v) { return detail::enum_name(detail::kTlsVersions, v); }
std::string_view to_string(AcmeKeyType v) { return detail::enum_name(detail::kKeyTypes, v); }
std::string_view to_string(DnsProvider v) { return detail::enum_name(detail::kDnsProviders, v); }
std::string_view to_string(PropagationCheck v) {
  return detail::enum_name(detail::kPropagationChecks, v);
}
std::string_view to_string(TsigAlgorithm v) {
  return detail::enum_name(detail::kTsigAlgorithms, v);
}
std::string_view to_string(Agent v) { return detail::enum_name(detail::kAgents, v); }

std::string Config::preview_suffix() const {
  return preview.suffix.empty() ? "preview." + preview.domain : preview.suffix;
}

bool Config::auth_required() const {
  switch (auth.required) {
    case AuthRequired::yes:
      return true;
    case AuthRequired::no:
      return false;
    case AuthRequired::automatic:
      break;
  }
  return !control.listen.is_loopback();
}

Config default_config() { return Config{}; }

}  // namespace sandboxd::config
