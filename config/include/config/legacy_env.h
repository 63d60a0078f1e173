// SPEC §9.5: the original project's environment variables. sandboxd reads none of them
// for its settings; at start it names each one that is set together with its replacement,
// and `sandboxd config from-env` turns the set ones into a `sandboxd.yaml` fragment for an
// operator to paste. Pure functions over a list of variables (some names are families:
// SANDBOXD_POLLER_*, SANDBOXD_SNAPSHOT_*).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sandboxd::config {

using EnvVars = std::vector<std::pair<std::string, std::string>>;  // name, value

// This process's environment.
EnvVars process_env_vars();

// One line per set variable, in the order of SPEC §9.5's table: "NAME is not read; use
// key (…)" or "NAME is not read and has no replacement: why". Values never appear (some
// are secrets).
std::vector<std::string> legacy_env_warnings(const EnvVars& env);

struct FromEnv {
  std::string yaml;                   // the fragment, with a comment per variable it used
  std::vector<std::string> problems;  // "NAME: why" for values that could not be converted
  bool any = false;                   // at least one variable was set
};

// The fragment for the set variables. A value that cannot be converted is left out and
// named in `problems`.
FromEnv yaml_from_env(const EnvVars& env);

}  // namespace sandboxd::config
