// runtimed.json (SPEC §6.2): what sandboxd hands runtimed before every container start.
//
//   {"version":1,"sandbox_id":"01J…","secret":"<64 hex>","project_dir":"workspace/app",
//    "dev":{"command":"","port":3000},
//    "tasks":{"timeout_s":7200,"max_queued":8,"cancel_grace_ms":5000,
//             "max_output_bytes":16777216}}
//
// `version`, `sandbox_id` and `secret` are required; the rest fall back to the defaults
// shown. Unknown fields are ignored, so an older runtimed in an older image still starts
// under a newer sandboxd. Parsing is a pure function; errors name the field.
#pragma once

#include "base/result.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace sandboxd::runtimed {

struct DevSettings {
  std::string command;  // empty: detect from package.json (SPEC §6.7)
  int port = 3000;
};

struct TaskSettings {
  int timeout_s = 7200;
  int max_queued = 8;
  int cancel_grace_ms = 5000;
  std::uint64_t max_output_bytes = 16 * 1024 * 1024;
};

struct Settings {
  std::string sandbox_id;   // canonical ULID
  std::string secret;       // 64 hex characters; never logged
  std::string project_dir = "workspace/app";  // normalized, workspace-relative
  DevSettings dev;
  TaskSettings tasks;
};

Result<Settings> parse_settings(std::string_view text);

}  // namespace sandboxd::runtimed
