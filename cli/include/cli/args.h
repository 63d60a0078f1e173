// The command line of sandboxctl (SPEC §12): the command table, global flags and their
// environment variables, and the flag parser.
//
// `parse_command_line` turns argv into an `Invocation` without any I/O: it finds the command
// (`create`, `task run`, …), reads its flags and the global flags wherever they stand (a
// command flag of the same name wins after the command: `exec --timeout` is the command's
// deadline, not the HTTP one), resolves `--server`/`--token` against SANDBOXD_URL and
// SANDBOXD_TOKEN, and checks the global values. Flags take `--name value`, `--name=value`,
// `-x value` or `-xvalue`; `--` ends the flags and the rest is the remote argv. Problems come
// back as usage errors (exit 2) naming the flag. Command-specific checks (which flags go
// together, what a value must look like) are the builders' job (requests.h).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/errors.h"
#include "cli/url.h"

namespace sandboxd::cli {

struct FlagSpec {
  std::string_view name;   // long name without dashes: "port"
  char short_name = 0;     // 'q' for -q; 0 when none
  std::string_view value;  // value placeholder ("N"); empty for a boolean flag
  bool repeatable = false;
  std::string_view help;
};

struct CommandSpec {
  std::string_view name;     // "create", "task run"
  std::string_view args;     // positional part of the synopsis: "ID [PATH]"
  std::string_view summary;  // one line for the command list
  std::string_view details;  // paragraph(s) for `-h`
  std::vector<FlagSpec> flags;
  std::size_t min_args = 0;  // positionals (before `--`)
  std::size_t max_args = 0;
  bool takes_argv = false;  // accepts `-- ARGV…`

  const FlagSpec* flag(std::string_view long_name) const;
  const FlagSpec* flag(char short_name) const;
};

// Every command, in the order of the help text.
const std::vector<CommandSpec>& commands();
const CommandSpec* find_command(std::string_view name);

struct GlobalOptions {
  ServerUrl server;
  std::string server_text;  // as given, without a trailing slash: what messages show
  std::optional<std::string> token;
  std::string cacert;
  bool json = false;
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  bool verbose = false;
};

struct Invocation {
  GlobalOptions global;
  const CommandSpec* command = nullptr;  // nullptr: no command (top-level help)
  bool help = false;                     // -h/--help: print the help and exit 0
  std::map<std::string, std::vector<std::string>, std::less<>> flags;  // booleans hold ""
  std::vector<std::string> args;                                       // positionals
  std::vector<std::string> argv;                                       // after `--`
  bool dashdash = false;

  bool has(std::string_view flag) const;
  // The last value given (flags that may appear once are refused twice by the parser).
  std::optional<std::string> value(std::string_view flag) const;
  std::vector<std::string> values(std::string_view flag) const;
};

// Whether the invocation passes a remote exit code through, so that its own failures exit
// 125 (SPEC §12): `exec`, and `task run --follow -- ARGV…` (agent command).
bool passes_remote_exit(const Invocation& inv);

// Reads an environment variable; nullopt when unset. Tests pass a map-backed lookup.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;

// `args` excludes argv[0].
CliResult<Invocation> parse_command_line(const std::vector<std::string>& args,
                                         const EnvLookup& env);

// "30s", "5m", "1h30m", "250ms", or a bare number of seconds. Must be above zero.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Decimal integer in [min, max], digits only (a leading '-' when min < 0).
std::optional<long long> parse_int(std::string_view text, long long min, long long max);

// `K=V` split at the first '='; the name must not be empty.
std::optional<std::pair<std::string, std::string>> parse_env_pair(std::string_view text);

// Help texts. `usage_line` is "usage: sandboxctl create [--port N]… …".
std::string usage_line(const CommandSpec& c);
std::string command_help(const CommandSpec& c);
std::string top_level_help();

}  // namespace sandboxd::cli
