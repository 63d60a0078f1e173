#include "edge/edge_options.h"

#include <charconv>

namespace sandboxd::edge {

std::optional<IpNetwork> IpNetwork::parse(std::string_view text) {
  const std::size_t slash = text.find('/');
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  const unsigned max = address->family() == IpAddress::Family::v4 ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc() || end != digits.data() + digits.size() || prefix > max) {
      return std::nullopt;
    }
  }
  return IpNetwork{*address, static_cast<std::uint8_t>(prefix)};
}

bool IpNetwork::contains(const IpAddress& ip) const {
  if (ip.family() != address.family() || ip.empty()) return false;
  const auto& a = address.bytes();
  const auto& b = ip.bytes();
  unsigned bits = prefix_length;
  for (std::size_t i = 0; bits > 0; ++i) {
    const unsigned take = bits >= 8 ? 8 : bits;
    const auto mask = static_cast<std::uint8_t>(0xff00u >> take);
    if ((a[i] & mask) != (b[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

}  // namespace sandboxd::edge
