// Runs the real sandboxd binary as a child process for integration tests: captures its
// stdout and stderr, waits for a line or for its exit with deadlines, signals it by PID.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::testing {

class Process {
 public:
  // Starts argv[0] with the given arguments and extra environment ("K=V").
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~Process();  // SIGKILLs the child if it still runs
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  int pid() const { return pid_; }
  void signal(int sig);
  // Waits until stderr holds a line containing `needle`; returns that line.
  std::optional<std::string> wait_for_stderr(const std::string& needle,
                                             std::chrono::milliseconds deadline);
  // Waits for the exit; the exit status (128+N for a signal), or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds deadline);

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  void pump(std::chrono::milliseconds wait);
  int pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
  std::optional<int> status_;
};

// Runs a command to completion (bounded by `deadline`); exit status plus output.
struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};
RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds deadline =
                                                        std::chrono::seconds(30));

// Polls `condition` every 20 ms until it holds or `deadline` passes; returns whether it held.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline);

// A fresh directory under /tmp, removed with everything in it at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

}  // namespace sandboxd::testing
