// Children and signals of runtimed (SPEC §6.1). One SIGCHLD handler reaps in a
// waitpid(-1, WNOHANG) loop: a tracked child's status goes to its owner's callback, any
// other zombie (an orphan that reached runtimed as PID 1 or subreaper) is reaped silently.
// Loop thread only; `watch` must be called right after the fork, before the loop runs again.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/signal_set.hpp>

#include <sys/types.h>

#include <functional>
#include <map>

namespace sandboxd::runtimed {

class Reaper {
 public:
  explicit Reaper(boost::asio::any_io_executor ex);

  // `on_exit(status)` runs on the loop when `pid` has been reaped.
  void watch(pid_t pid, std::function<void(int status)> on_exit);
  // Reaps everything that has exited (also called once at startup).
  void reap();

 private:
  void arm();

  boost::asio::signal_set signals_;
  std::map<pid_t, std::function<void(int)>> watched_;
};

}  // namespace sandboxd::runtimed
