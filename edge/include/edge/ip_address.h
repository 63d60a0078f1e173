// An IPv4 or IPv6 address as a plain value (no sockets, no Asio): the upstream address of a
// route, and later a client address. Parsing accepts the textual forms of inet_pton; `str()`
// gives the canonical form of inet_ntop. Copyable, comparable, safe to share between threads.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::edge {

class IpAddress {
 public:
  enum class Family : std::uint8_t { none, v4, v6 };

  IpAddress() = default;  // Family::none: no address (e.g. a sandbox that is not running)

  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress v4(std::uint32_t host_order);

  Family family() const { return family_; }
  bool empty() const { return family_ == Family::none; }
  // Network byte order; 4 bytes used for v4.
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }
  std::string str() const;  // "" for Family::none

  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  Family family_ = Family::none;
  std::array<std::uint8_t, 16> bytes_{};
};

}  // namespace sandboxd::edge
