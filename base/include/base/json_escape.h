// JSON string escaping for hand-built JSON (log lines, access log). Control characters,
// quotes and backslashes are escaped; bytes that are not valid UTF-8 become U+FFFD so the
// output is always valid JSON.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sandboxd {

// Length of the valid UTF-8 sequence that starts at s[i] (1 to 4), or 0 when the bytes there
// do not start one (bad lead byte, truncated, overlong, surrogate, above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i);

// Appends `"<escaped s>"` to out.
void append_json_string(std::string& out, std::string_view s);

}  // namespace sandboxd
