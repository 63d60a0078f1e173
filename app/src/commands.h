// The subcommands of the sandboxd binary. Each returns the process exit status.
#pragma once

#include <optional>
#include <string>

namespace sandboxd::app {

// Exit statuses shared by the subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitConfig = 1;   // invalid configuration, or a failure at start-up
inline constexpr int kExitUsage = 2;    // bad flags, or a config file that cannot be read
inline constexpr int kExitTooNew = 78;  // the database was written by a newer sandboxd

struct CommonFlags {
  std::optional<std::string> config_path;  // -c / --config
};

int run_serve(const CommonFlags& flags);
int run_check_config(const CommonFlags& flags, bool print);
// `sandboxd config from-env` (SPEC §9.5): 0, or 1 when a set variable could not be converted.
int run_config_from_env();

}  // namespace sandboxd::app
