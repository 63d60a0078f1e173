// Dev-server supervision (SPEC §6.7): runs `bash -lc "<command>"` in project_dir in its own
// session with PORT and HOST=0.0.0.0, logs its output to .sandboxd/devserver.log, probes the
// port on the container address and on loopback, restarts it after an exit with backoff
// (1, 2, 4, 8, 16, then 30 s; never giving up), and restarts it at once on request.
// Loop thread only.
#pragma once

#include "async.h"
#include "context.h"
#include "journal.h"
#include "runtimed/devserver_policy.h"

#include <boost/json/object.hpp>

#include <optional>
#include <string>

namespace sandboxd::runtimed {

class DevServer {
 public:
  explicit DevServer(Context& ctx);

  void start();
  // POST /devserver/restart and SIGHUP: stop the server, reset the backoff, start at once.
  // Overrides hold until the next boot.
  void restart(std::optional<std::string> command, std::optional<int> port);
  void begin_shutdown();
  asio::awaitable<void> wait_stopped(std::chrono::steady_clock::time_point deadline);

  std::string_view state() const;
  boost::json::object to_json() const;
  const std::string& log_path() const { return log_.path(); }

 private:
  enum class State { waiting, starting, ready, loopback_only, backoff };
  struct Listening {
    bool container = false;
    bool loopback = false;
  };

  asio::awaitable<void> supervise();
  asio::awaitable<void> probe();
  asio::awaitable<void> copy_output(int fd);

  Context& ctx_;
  DevLog log_;
  RestartBackoff backoff_;
  State state_ = State::waiting;
  std::optional<std::string> command_;
  std::string command_source_;
  int port_;
  std::optional<pid_t> pid_;
  std::optional<Clock::WallTime> started_at_;
  int starts_ = 0;
  struct LastExit {
    std::optional<int> code;
    std::optional<int> signal;
    Clock::WallTime at;
    std::int64_t ran_ms = 0;
  };
  std::optional<LastExit> last_exit_;
  std::optional<Clock::WallTime> next_restart_at_;
  Listening listening_;
  std::optional<std::string> hint_;

  std::optional<std::string> override_command_;
  std::optional<int> override_port_;
  bool restart_requested_ = false;
  bool stopping_ = false;
  bool running_ = false;  // the supervise loop
  bool exited_ = false;
  int exit_status_ = 0;
  Notifier changed_;
};

// The last `lines` lines of the dev-server log, reaching into the rotated `.1` file when the
// current one holds fewer. Blocking; run it on the pool.
std::string read_log_tail(const std::string& path, std::size_t lines);

}  // namespace sandboxd::runtimed
