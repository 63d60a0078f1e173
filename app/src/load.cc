#include "load.h"

#include "base/log.h"

#include <cstdio>

namespace sandboxd::app {

namespace {
constexpr log::Logger kLog{"app"};
}

Loaded load_config(const CommonFlags& flags) {
  Loaded out;
  auto env = config::process_env();
  std::string path = config::find_config_path(flags.config_path, env);
  if (path.empty()) {
    kLog.info("no config file; using defaults");
    out.result = config::parse_config("", "", env);
  } else {
    out.result = config::load_config_file(path, env);
  }
  for (const auto& d : out.result.errors) std::fprintf(stderr, "%s\n", d.str().c_str());
  if (out.result.unreadable) {
    out.exit_code = kExitUsage;
  } else if (!out.result.ok()) {
    std::fprintf(stderr, "%zu problem%s in %s\n", out.result.errors.size(),
                 out.result.errors.size() == 1 ? "" : "s", path.c_str());
    out.exit_code = kExitConfig;
  }
  return out;
}

}  // namespace sandboxd::app
