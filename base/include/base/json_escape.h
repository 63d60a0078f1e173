// JSON string escaping for hand-built JSON (log lines, access log). Control characters,
// quotes and backslashes are escaped; bytes that are not valid UTF-8 become U+FFFD so the
// output is always valid JSON.
#pragma once

#include <string>
#include <string_view>

namespace sandboxd {

// Appends `"<escaped s>"` to out.
void append_json_string(std::string& out, std::string_view s);

}  // namespace sandboxd
