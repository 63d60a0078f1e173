// `sandboxd config from-env` (SPEC §9.5): the original project's environment variables as a
// sandboxd.yaml fragment on stdout; values that cannot be converted are named on stderr.

#include "commands.h"
#include "config/legacy_env.h"

#include <cstdio>

namespace sandboxd::app {

int run_config_from_env() {
  const config::FromEnv got = config::yaml_from_env(config::process_env_vars());
  if (!got.any) {
    std::fputs("# none of the original project's environment variables is set\n", stdout);
    return kExitOk;
  }
  std::fputs(got.yaml.c_str(), stdout);
  for (const auto& p : got.problems) std::fprintf(stderr, "sandboxd: %s\n", p.c_str());
  return got.problems.empty() ? kExitOk : kExitConfig;
}

}  // namespace sandboxd::app
