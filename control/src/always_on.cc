#include "always_on.h"

#include "base/log.h"
#include "store/sandbox_repo.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <vector>

namespace sandboxd::control {

namespace {

constexpr log::Logger kLog{"always_on"};

}  // namespace

std::chrono::milliseconds RestartBackoff::next(Clock::MonoTime now) {
  const bool ran_long = started_ && now - *started_ >= kResetAfter;
  last_ = (last_.count() == 0 || ran_long) ? kFirst : std::min(last_ * 2, kMax);
  if (ran_long) started_.reset();
  return last_;
}

std::optional<std::chrono::milliseconds> AlwaysOn::crashed(const store::SandboxRow& row) {
  if (stopping_ || row.idle_policy != "always_on") return std::nullopt;
  Entry& e = entries_[row.id];
  if (e.waiting) return std::nullopt;
  e.waiting = true;
  return e.backoff.next(clock_.mono());
}

void AlwaysOn::started(const std::string& id) {
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second.backoff.started(clock_.mono());
}

asio::awaitable<void> AlwaysOn::restart_after(std::string id, std::chrono::milliseconds delay) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const std::string exited = "exited";
  for (;;) {
    kLog.info("always_on sandbox exited; restarting", {{"id", id}, {"in_ms", delay.count()}});
    timer.expires_after(delay);
    co_await timer.async_wait(nothrow);
    if (stopping_) co_return;
    auto outcome = co_await service_.restart_always_on(id, exited);
    if (!outcome || outcome->has_value()) break;
    const ApiError& e = outcome->error();
    // Refused by admission, or Docker unreachable: the state is unchanged; try later.
    // Anything else left the sandbox in `error`, which only the API starts again.
    if (e.status != 503 && e.status != 504) {
      kLog.warn("always_on restart failed", {{"id", id}, {"error", e.message}});
      break;
    }
    kLog.warn("always_on restart refused; retrying", {{"id", id}, {"error", e.message}});
    delay = entries_[id].backoff.next(clock_.mono());
  }
  entries_[id].waiting = false;
}

asio::awaitable<void> AlwaysOn::pass(std::string reason) {
  store::SandboxFilter stopped;
  stopped.status = "stopped";
  auto rows = store::sandbox_repo::list(store_, stopped);
  if (!rows) {
    kLog.warn("cannot read sandboxes for the always_on pass", {{"error", rows.error().message()}});
    co_return;
  }
  std::vector<std::string> ids;
  for (const auto& row : *rows) {
    if (row.idle_policy == "always_on" && row.stop_reason.value_or("") == reason) ids.push_back(row.id);
  }
  for (const std::string& id : ids) {
    if (stopping_) co_return;
    auto outcome = co_await service_.restart_always_on(id, reason);
    if (!outcome) continue;
    if (outcome->has_value()) {
      kLog.info("always_on sandbox started again", {{"id", id}, {"after", reason}});
    } else {
      kLog.warn("always_on sandbox not started again",
                {{"id", id}, {"after", reason}, {"error", outcome->error().message}});
    }
  }
}

}  // namespace sandboxd::control
