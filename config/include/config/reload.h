// What a SIGHUP reload (SPEC §9.4) may change: the key-by-key diff of two valid configs,
// split into the keys §9.2 marks `live` and those it marks `restart`.
//
// Pure functions of their arguments; thread-safe. Key names are §9.2's spelling, one per
// key (`edge.limits.max_header_bytes`, `auth.tokens`), never a value, so a secret's change
// shows only as its name.
#pragma once

#include "config/config.h"

#include <string>
#include <vector>

namespace sandboxd::config {

// The `restart` keys whose value differs between `running` and `next`, in §9.2's order.
std::vector<std::string> restart_changes(const Config& running, const Config& next);

// The `live` keys whose value differs between `running` and `next`, in §9.2's order.
std::vector<std::string> live_changes(const Config& running, const Config& next);

// The config a reload hands the modules: `next` with every `restart` key set back to
// `running`'s value, so what waits for a restart keeps serving as it was.
Config keep_restart_keys(const Config& running, Config next);

}  // namespace sandboxd::config
