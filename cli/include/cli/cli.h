// sandboxctl's entry point (SPEC §12): parses the command line, runs the command against
// the control API, writes its output and error lines, and returns the process exit code.
// It reads the process environment (SANDBOXD_URL, SANDBOXD_TOKEN) and uses fds 0, 1 and 2.
#pragma once

#include <string>
#include <vector>

namespace sandboxd::cli {

// `args` excludes argv[0].
int run_cli(const std::vector<std::string>& args);

}  // namespace sandboxd::cli
