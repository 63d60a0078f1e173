// Config lookup and loading shared by `serve` and `check-config`.
#pragma once

#include "commands.h"
#include "config/load.h"

namespace sandboxd::app {

struct Loaded {
  config::LoadResult result;
  int exit_code = kExitOk;  // non-zero: stop with this status (problems already printed)
};

// Finds the file (SPEC §9.1), loads and validates it, and prints every problem to stderr.
// No file at all → the defaults, with the log line of §9.1.
Loaded load_config(const CommonFlags& flags);

}  // namespace sandboxd::app
