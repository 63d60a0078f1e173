// Strict JSON for request bodies (SPEC §2.1, §13).
//
// `parse_json` accepts exactly one JSON value (RFC 8259) and refuses what Boost.JSON's own
// parser lets through or reports vaguely: duplicate keys (named), nesting deeper than the
// limit (named), invalid UTF-8 anywhere (including in keys), trailing bytes, and it always
// gives the byte offset of the problem. Numbers without fraction or exponent become int64
// (or uint64 above INT64_MAX); anything else becomes double. The parser is a pure function,
// safe on any input: it never throws, never recurses deeper than `max_depth`.
#pragma once

#include "base/result.h"

#include <boost/json/value.hpp>

#include <cstddef>
#include <string_view>

namespace sandboxd {

struct JsonLimits {
  std::size_t max_depth = 32;  // an object or array at the top level is depth 1
};

// Errors have Errc::invalid_argument and a detail like
// "invalid JSON at byte 17: duplicate key \"ports\"".
Result<boost::json::value> parse_json(std::string_view text, const JsonLimits& limits = {});

// Same, and the top level must be an object: "request body must be a JSON object".
Result<boost::json::object> parse_json_object(std::string_view text,
                                              const JsonLimits& limits = {});

}  // namespace sandboxd
