// sandboxd: one process that holds the preview edge, the control API and the state.

#include "commands.h"
#include "version.h"

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::string_view kUsage = R"(usage: sandboxd <command> [flags]

commands:
  serve          run sandboxd (the default when no command is given)
  check-config   validate the config file without starting anything
  config from-env
                 print a sandboxd.yaml fragment from the original project's environment
                 variables (SPEC §9.5)

flags:
  -c, --config FILE   the config file (else $SANDBOXD_CONFIG, /etc/sandboxd/sandboxd.yaml,
                      ./sandboxd.yaml, or built-in defaults for serve)
  --print             check-config: also print the effective config, secrets redacted
  -h, --help          this help
  --version           the version and commit
)";

int usage_error(std::string_view message) {
  std::fprintf(stderr, "sandboxd: %.*s\n%.*s", static_cast<int>(message.size()), message.data(),
               static_cast<int>(kUsage.size()), kUsage.data());
  return sandboxd::app::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sandboxd::app;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  std::string_view command = "serve";
  CommonFlags flags;
  bool print = false;
  bool command_seen = false;
  std::vector<std::string_view> operands;

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == "-h" || a == "--help") {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      return kExitOk;
    }
    if (a == "--version") {
      std::printf("sandboxd %s (commit %s)\n", SANDBOXD_VERSION, SANDBOXD_COMMIT);
      return kExitOk;
    }
    if (a == "-c" || a == "--config") {
      if (i + 1 == args.size()) return usage_error("-c needs a file");
      flags.config_path = std::string(args[++i]);
    } else if (a.starts_with("--config=")) {
      flags.config_path = std::string(a.substr(9));
    } else if (a == "--print") {
      print = true;
    } else if (!a.starts_with("-") && !command_seen) {
      command = a;
      command_seen = true;
    } else if (!a.starts_with("-") && command == "config") {
      operands.push_back(a);
    } else {
      return usage_error("unknown argument " + std::string(a));
    }
  }

  if (command == "serve") {
    if (print) return usage_error("--print belongs to check-config");
    return run_serve(flags);
  }
  if (command == "check-config") return run_check_config(flags, print);
  if (command == "config") {
    if (operands.size() != 1 || operands[0] != "from-env") return usage_error("config: the only subcommand is from-env");
    if (print || flags.config_path) return usage_error("config from-env takes no flags");
    return run_config_from_env();
  }
  return usage_error("unknown command " + std::string(command));
}
