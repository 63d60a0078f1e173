// Human output of sandboxctl (SPEC §12, "Output"): aligned tables, relative times, IEC
// sizes. Pure functions; "now" is always passed in so tests need no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::cli {

using WallTime = std::chrono::system_clock::time_point;

// Columns separated by two spaces and padded to the widest cell (counted in UTF-8
// characters); the last column is not padded, so no line ends in spaces. Every line ends in
// '\n'. Rows shorter than the header are padded with empty cells.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

// Aligned "key: value" lines: the values start in one column.
std::string render_fields(const std::vector<std::pair<std::string, std::string>>& fields);

// "RFC 3339 with seconds, optional fraction, Z or ±hh:mm" → time; nullopt when malformed.
std::optional<WallTime> parse_rfc3339(std::string_view text);

// A span in the largest fitting unit, rounded down: "0s", "45s", "3m", "5h", "2d", "3y".
// Hours are used up to 47h, days up to 729d.
std::string format_span(std::chrono::seconds d);

// "3m ago", "just now" (under a second), "in 5d" for a future time.
std::string format_relative(WallTime t, WallTime now);

// "512 B", "1.5 KiB", "12 KiB", "2 GiB": one decimal below 10 units unless exact.
std::string format_iec(std::uint64_t bytes);

// "850ms", "12.3s", "4m05s", "2h03m".
std::string format_duration_ms(std::int64_t ms);

// "12:03:07" in the local time zone (TZ).
std::string format_clock(WallTime t);

// Number of UTF-8 characters (continuation bytes are not counted).
std::size_t display_width(std::string_view s);

}  // namespace sandboxd::cli
