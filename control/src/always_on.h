// SPEC §5.10: always_on sandboxes come back by themselves.
// - After a host, dockerd or sandboxd restart: once reconciliation has turned what is gone
//   into `stopped` with reason `exited`, `pass` starts every always_on sandbox in that state.
//   One stopped through the API (another reason) stays stopped.
// - After a crash (a `die` that sandboxd did not cause): a restart after 1 s, doubling up to
//   5 min; the delay starts again at 1 s once the sandbox ran 10 min.
// - Stopped by the emergency pressure band (reason `pressure`): started again by `pass`
//   once no band is active.
// Every start goes through SandboxService::restart_always_on, so admission and
// wake.max_concurrent apply; a refused start is tried again after the next delay.
//
// Threading: the control executor's single thread only. The owner spawns the coroutines
// (it keeps itself alive in them) and calls `stop` at shutdown.
#pragma once

#include "async_util.h"
#include "base/clock.h"
#include "sandbox_service.h"

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace sandboxd::control {

// The crash-restart delays of one sandbox.
class RestartBackoff {
 public:
  static constexpr std::chrono::milliseconds kFirst{1000};
  static constexpr std::chrono::milliseconds kMax{5 * 60 * 1000};
  static constexpr std::chrono::minutes kResetAfter{10};

  // The wait before the next start after a crash (or a refused start) at `now`.
  std::chrono::milliseconds next(Clock::MonoTime now);
  // The sandbox runs again since `now`.
  void started(Clock::MonoTime now) { started_ = now; }

 private:
  std::chrono::milliseconds last_{0};
  std::optional<Clock::MonoTime> started_;
};

class AlwaysOn {
 public:
  AlwaysOn(SandboxService& service, store::Store& store, const Clock& clock)
      : service_(service), store_(store), clock_(clock) {}

  // The delay before `row`'s restart after its crash; nullopt when it is not always_on or a
  // restart is already waiting.
  std::optional<std::chrono::milliseconds> crashed(const store::SandboxRow& row);
  // Sleeps `delay`, then restarts the sandbox if it is still an exited always_on one; a
  // refused start waits the next delay and tries again.
  asio::awaitable<void> restart_after(std::string id, std::chrono::milliseconds delay);
  // A container of the sandbox started (by anyone): its uptime counts from now.
  void started(const std::string& id);
  // Starts every always_on sandbox stopped with `reason` ("exited" after reconciliation,
  // "pressure" once no band is active), one after another.
  asio::awaitable<void> pass(std::string reason);
  void stop() { stopping_ = true; }

 private:
  struct Entry {
    RestartBackoff backoff;
    bool waiting = false;  // a restart_after is pending
  };

  SandboxService& service_;
  store::Store& store_;
  const Clock& clock_;
  std::map<std::string, Entry> entries_;
  bool stopping_ = false;
};

}  // namespace sandboxd::control
