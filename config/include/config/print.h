// What `sandboxd check-config` prints (SPEC §9.3).
//
// Both functions are pure and never reveal a secret: `Secret` values and every value that
// came from `${NAME}` interpolation print as `<redacted>`.
#pragma once

#include <string>

#include "config/config.h"
#include "config/load.h"

namespace sandboxd::config {

// The exit-0 summary: file used, listeners, preview suffix, TLS mode, token and preview-key
// counts, and the warnings of `loaded`. Ends with a newline.
std::string summary(const Config& cfg, const LoadResult& loaded);

// The whole effective config as YAML (the `--print` output), defaults filled in, in the
// order of §9.2. Parsing it back gives the same values, except for redacted secrets.
std::string effective_yaml(const Config& cfg);

}  // namespace sandboxd::config
