// Local files for sandboxctl: reading a small input (a prompt file or stdin) and writing a
// download to FILE atomically, through a temporary file in the same directory that is
// fsynced and renamed over FILE only when the whole download arrived. Not thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "cli/errors.h"

namespace sandboxd::cli {

// The content of `path` ("-" = stdin), at most `limit` bytes (more is an error).
CliResult<std::string> read_small_file(const std::string& path, std::size_t limit);

class AtomicOutput {
 public:
  AtomicOutput() = default;
  ~AtomicOutput();  // removes the temporary file unless committed
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  CliStatus open(const std::string& path);
  CliStatus write(std::string_view bytes);
  CliStatus commit();

 private:
  std::string path_;
  std::string temp_;
  int fd_ = -1;
};

}  // namespace sandboxd::cli
