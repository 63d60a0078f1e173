// Small text helpers shared by runtimed's events and answers: RFC 3339 times with
// milliseconds (SPEC §6.3), UTF-8 repair and cutting on character boundaries (SPEC §6.4),
// and signal names for `exit` events. Pure functions, safe on any input and any thread.
#pragma once

#include "base/clock.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::runtimed {

// "2026-11-22T14:03:07.123Z".
std::string format_time_ms(Clock::WallTime t);
// The inverse of format_time_ms (exactly that form); nullopt for anything else.
std::optional<Clock::WallTime> parse_time_ms(std::string_view text);

// `s` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD.
std::string valid_utf8(std::string_view s);

// The largest n <= max such that s[0, n) does not end inside a valid multi-byte sequence
// (invalid bytes count as one character each). n == s.size() when s fits.
std::size_t utf8_cut(std::string_view s, std::size_t max);

// At most `max_chars` code points of `s` (already valid UTF-8).
std::string first_chars(std::string_view s, std::size_t max_chars);

// "SIGTERM", or "SIG<n>" for a number without a name.
std::string signal_name(int sig);

// Bytes compared without an early exit (the secret check of SPEC §6.2).
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace sandboxd::runtimed
