#include "reaper.h"

#include <sys/wait.h>

#include <cerrno>
#include <csignal>

namespace sandboxd::runtimed {

Reaper::Reaper(boost::asio::any_io_executor ex) : signals_(ex, SIGCHLD) { arm(); }

void Reaper::arm() {
  signals_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    reap();
    arm();
  });
}

void Reaper::watch(pid_t pid, std::function<void(int)> on_exit) {
  watched_[pid] = std::move(on_exit);
}

void Reaper::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;
    auto it = watched_.find(pid);
    if (it == watched_.end()) continue;
    auto callback = std::move(it->second);
    watched_.erase(it);
    callback(status);
  }
}

}  // namespace sandboxd::runtimed
