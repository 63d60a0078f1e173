#include "edge/ip_address.h"

#include <arpa/inet.h>

#include <cstring>

namespace sandboxd::edge {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  char buf[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (::inet_pton(AF_INET, buf, a.bytes_.data()) == 1) {
    a.family_ = Family::v4;
    return a;
  }
  if (::inet_pton(AF_INET6, buf, a.bytes_.data()) == 1) {
    a.family_ = Family::v6;
    return a;
  }
  return std::nullopt;
}

IpAddress IpAddress::v4(std::uint32_t host_order) {
  IpAddress a;
  a.family_ = Family::v4;
  a.bytes_[0] = static_cast<std::uint8_t>(host_order >> 24);
  a.bytes_[1] = static_cast<std::uint8_t>(host_order >> 16);
  a.bytes_[2] = static_cast<std::uint8_t>(host_order >> 8);
  a.bytes_[3] = static_cast<std::uint8_t>(host_order);
  return a;
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN];
  const int af = family_ == Family::v4 ? AF_INET : AF_INET6;
  if (family_ == Family::none || ::inet_ntop(af, bytes_.data(), buf, sizeof buf) == nullptr) {
    return {};
  }
  return buf;
}

}  // namespace sandboxd::edge
