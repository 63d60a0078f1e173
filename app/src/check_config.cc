// `sandboxd check-config [-c FILE] [--print]` (SPEC §9.3): validates without starting.

#include "commands.h"
#include "config/print.h"
#include "load.h"

#include <cstdio>

namespace sandboxd::app {

int run_check_config(const CommonFlags& flags, bool print) {
  Loaded loaded = load_config(flags);
  if (loaded.exit_code != kExitOk) return loaded.exit_code;
  const config::Config& cfg = *loaded.result.config;
  std::fputs(config::summary(cfg, loaded.result).c_str(), stdout);
  if (print) {
    std::fputs("\n", stdout);
    std::fputs(config::effective_yaml(cfg).c_str(), stdout);
  }
  return kExitOk;
}

}  // namespace sandboxd::app
