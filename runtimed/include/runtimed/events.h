// The task event envelope of SPEC §6.4, one NDJSON line per event:
//   {"id":N,"type":T,"ts":"2026-11-22T14:03:07.123Z","data":{…}}
// Strings in `data` must already be valid UTF-8 (text.h's valid_utf8). Pure functions.
#pragma once

#include "base/clock.h"

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace sandboxd::runtimed {

// The line, terminated by '\n'.
std::string event_line(std::uint64_t id, std::string_view type, Clock::WallTime ts,
                       const boost::json::object& data);

}  // namespace sandboxd::runtimed
