#include "async.h"
#include "context.h"
#include "process.h"

#include <signal.h>

#include <algorithm>

namespace sandboxd::runtimed {

namespace {

asio::awaitable<std::vector<pid_t>> scan(const Context& ctx, const std::string& marker) {
  if (marker.empty()) co_return std::vector<pid_t>{};
  auto job = [marker] { return find_marked(marker); };
  co_return co_await offload(ctx.pool, job);
}

bool all_gone(const std::vector<pid_t>& pids) {
  return std::all_of(pids.begin(), pids.end(), [](pid_t p) { return pid_gone(p); });
}

}  // namespace

asio::awaitable<void> kill_tree(const Context& ctx, pid_t pgid, const std::string& marker,
                                std::chrono::milliseconds grace) {
  using clock = std::chrono::steady_clock;
  std::vector<pid_t> marked = co_await scan(ctx, marker);
  if (pgid > 0) ::kill(-pgid, SIGTERM);
  for (pid_t p : marked) ::kill(p, SIGTERM);
  auto deadline = clock::now() + grace;
  while (clock::now() < deadline) {
    if (!group_alive(pgid) && all_gone(marked)) {
      // The group is gone; something that left it with setsid may still carry the marker.
      marked = co_await scan(ctx, marker);
      if (marked.empty()) co_return;
      for (pid_t p : marked) ::kill(p, SIGTERM);
    }
    co_await sleep_for(std::chrono::milliseconds(50));
  }
  if (pgid > 0) ::kill(-pgid, SIGKILL);
  marked = co_await scan(ctx, marker);
  for (pid_t p : marked) ::kill(p, SIGKILL);
  auto reaped_by = clock::now() + std::chrono::seconds(2);
  while (clock::now() < reaped_by && (group_alive(pgid) || !all_gone(marked))) {
    co_await sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace sandboxd::runtimed
