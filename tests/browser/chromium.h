// Headless Chromium for tests, driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: commands go in on the child's fd 3, answers and events come
// out on its fd 4, each one JSON message ended by a NUL byte).
//
// `Chromium::launch` starts /usr/bin/chromium with the flags that keep it quiet and
// self-contained on these machines (RECIPES.md "A real browser"): headless, no sandbox (it
// runs as root), no GPU, no QUIC, no background networking, a fresh profile in a temporary
// directory, no proxy, and every *.localhost name resolved to 127.0.0.1. It runs in its own
// process group; the destructor asks it to close, then SIGKILLs that group (by the PID of
// its leader, the browser) and reaps it, so no renderer outlives a test.
//
// Every call has a deadline; nothing blocks without one. Not thread-safe.
#pragma once

#include "process.h"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::testing {

class Chromium {
 public:
  static constexpr const char* kBinary = "/usr/bin/chromium";

  // Starts the browser; nullptr (with the reason in `problem`) when it cannot.
  static std::unique_ptr<Chromium> launch(std::string* problem);
  ~Chromium();
  Chromium(const Chromium&) = delete;
  Chromium& operator=(const Chromium&) = delete;

  // Sends one command (to a page when `session` is set, else to the browser) and waits for
  // its answer. The `result` object, or nullopt with the reason in `problem()` (a protocol
  // error, the deadline, or the browser gone). Events read meanwhile are kept in events().
  std::optional<boost::json::object> call(
      const std::string& method, boost::json::object params = {}, const std::string& session = "",
      std::chrono::milliseconds deadline = std::chrono::seconds(30));

  // Opens a new tab on about:blank and attaches to it; the session id, or "" (problem()).
  // Network and Page events of the tab are enabled.
  std::string open_tab();

  // Events received so far ({"method", "params", "sessionId"}), oldest first.
  const std::vector<boost::json::object>& events() const { return events_; }
  void clear_events() { events_.clear(); }

  const std::string& problem() const { return problem_; }
  // The browser's own stderr (the last few KiB), for failure messages.
  std::string log_tail() const;

 private:
  Chromium() = default;
  // Reads until one whole message is buffered; nullopt at the deadline or EOF.
  std::optional<std::string> read_message(std::chrono::steady_clock::time_point until);

  TempDir dir_;  // the profile and the log
  int pid_ = -1;
  int to_browser_ = -1;
  int from_browser_ = -1;
  std::string inbox_;
  int next_id_ = 1;
  std::vector<boost::json::object> events_;
  std::string problem_;
};

}  // namespace sandboxd::testing
