// Small text helpers for answers: UTF-8 repair and base64.
#pragma once

#include <string>
#include <string_view>

namespace sandboxd::control {

// Replaces every byte that is not part of a valid UTF-8 sequence with U+FFFD.
std::string sanitize_utf8(std::string_view s);
// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence which the
// next bytes could still complete (a stream cut on a character boundary).
std::size_t utf8_complete_prefix(std::string_view s);
bool is_valid_utf8(std::string_view s);
std::string base64_encode(std::string_view s);

}  // namespace sandboxd::control
