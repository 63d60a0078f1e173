// Small text helpers shared by the parsers, the reader and the printer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::config::detail {

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// ASCII lower case; other bytes unchanged.
std::string lower(std::string_view s);

// `s` in double quotes for a message: quotes, backslashes and control bytes escaped, cut
// after 80 bytes so one bad value cannot flood the report.
std::string quote(std::string_view s);

// A YAML double-quoted scalar, every byte kept: quotes and backslashes escaped, control
// bytes as \xNN. Every string is written so, so that "true", "1.2" or ":80" read back as
// strings.
std::string yaml_quote(std::string_view s);

// The shortest text that reads back as `v` ("0.5", "10", "2.5").
std::string format_number(double v);

// True if `s` holds a C0 control byte or DEL.
bool has_control(std::string_view s);

// "a, b or c"
std::string join_or(const std::vector<std::string>& items);

// Damerau-Levenshtein distance (optimal string alignment) between two short strings.
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace sandboxd::config::detail
