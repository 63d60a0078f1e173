// sandboxctl: the command-line client of sandboxd's control API (SPEC §12).
#include "cli/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return sandboxd::cli::run_cli(args);
}
