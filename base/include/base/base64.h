// Base64 (RFC 4648 §4) and base64url without padding (§5, as JOSE uses it).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sandboxd {

std::string base64_encode(std::string_view bytes);
std::string base64url_encode(std::string_view bytes);
// Both accept input with or without '=' padding; nullopt on any other byte or a bad length.
std::optional<std::string> base64_decode(std::string_view text);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace sandboxd
