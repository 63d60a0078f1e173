// Finding, reading and validating sandboxd.yaml (SPEC §9.1, §9.3).
//
// `parse_config` turns YAML text into a `Config` or into the complete list of problems:
// it never stops at the first one, never throws for bad input (malformed YAML, binary
// garbage, huge numbers, deep nesting) and reports each problem with its 1-based position,
// its key path and, when it can, a hint. A `Config` is returned only when there are no
// errors; warnings never block. The environment is read only through the given
// `EnvLookup`. Apart from `load_config_file` and `find_config_path`, which touch the file
// system, and the checks that read the files a config names (`tls.files.*` with OpenSSL,
// `acme.ca_bundle` readability; relative paths resolve against the working directory),
// everything here is a pure function. All functions are thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/values.h"

namespace sandboxd::config {

struct Diagnostic {
  std::string file;
  int line = 0;          // 1-based; 0 when the problem has no place (an unreadable file)
  int col = 0;           // 1-based
  std::string key_path;  // "auth.tokens[0].secret"; "" for YAML syntax errors
  std::string message;
  std::string hint;  // "" for none
  bool warning = false;

  // "FILE:LINE:COL: KEY.PATH: message", plus "\n  hint: ..." when there is a hint. Parts
  // that are unknown (no line, no key path) are left out.
  std::string str() const;

  bool operator==(const Diagnostic&) const = default;
};

struct LoadResult {
  std::optional<Config> config;      // set exactly when `errors` is empty
  std::vector<Diagnostic> errors;    // sorted by position
  std::vector<Diagnostic> warnings;  // sorted by position
  std::string file;                  // "" when running on defaults without a file
  bool unreadable = false;           // the file could not be read (check-config exits 2)

  bool ok() const { return config.has_value(); }
};

// Parses and validates `yaml_text`; `file_name` only labels the diagnostics. Empty text or
// text with only comments gives the defaults.
LoadResult parse_config(std::string_view yaml_text, std::string file_name, const EnvLookup& env);

// Reads `path` and parses it. A file that cannot be read gives one error and `unreadable`.
LoadResult load_config_file(const std::string& path, const EnvLookup& env);

// The lookup order of §9.1: the -c/--config flag, $SANDBOXD_CONFIG, then the first of
// `candidates` that exists. "" means no file: run on defaults.
std::vector<std::string> default_config_candidates();  // /etc/sandboxd/sandboxd.yaml, sandboxd.yaml
std::string find_config_path(
    const std::optional<std::string>& flag, const EnvLookup& env,
    const std::vector<std::string>& candidates = default_config_candidates());

// Every leaf key the parser accepts, in schema order. List items are written with "[]"
// ("auth.tokens[].name"); free-form maps (sandbox.env) appear as one leaf.
std::vector<std::string> known_key_paths();

}  // namespace sandboxd::config
