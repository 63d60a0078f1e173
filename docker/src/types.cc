#include "docker/types.h"

#include <charconv>

namespace sandboxd::docker {

std::string ContainerInfo::ip_address(std::string_view network) const {
  auto it = networks.find(std::string(network));
  return it == networks.end() ? std::string() : it->second.ip_address;
}

std::optional<int> Event::exit_code() const {
  auto it = attributes.find("exitCode");
  if (it == attributes.end()) return std::nullopt;
  int code = 0;
  const auto& text = it->second;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), code);
  if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  return code;
}

}  // namespace sandboxd::docker
