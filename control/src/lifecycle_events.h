// The lifecycle events behind GET /v1/events (SPEC §2.7.12): one `sandbox.state` per
// transition of §5.2 and one `task.state` per task status change, kept in memory (the last
// `capacity`) for Last-Event-ID replays, with a signal for the streams that wait for more.
//
// Ids: one more than the previous id, but never below the wall clock in microseconds-ish
// units (unix ms × 1000), and the first id of a run is above `floor_ms` × 1000. A restart
// takes longer than a millisecond and every transition moves a row's updated_at, so a
// floor of max(now, newest updated_at + 1 ms) keeps ids rising across restarts, also when
// the clock stepped back a little; up to 1000 events per millisecond keep that margin.
//
// Threading: the control executor's single thread only.
#pragma once

#include "async_util.h"
#include "base/clock.h"
#include "store/sandbox_repo.h"
#include "store/store.h"
#include "store/task_repo.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::control {

struct LifecycleEvent {
  std::uint64_t id = 0;
  std::string type;        // "sandbox.state" or "task.state"
  std::string sandbox_id;
  std::string user_id;     // the sandbox's external user when it happened; "" = none
  std::string data;        // the payload: one line of JSON
};

// The `reason` of a sandbox.state event that ends in `to`: the stored stop or error reason
// where the row has one, else what moved it ("create", "started", "wake", …).
std::string transition_reason(std::string_view from, const store::SandboxRow& to);

// The floor for this run's ids: max(now, the newest sandbox updated_at + 1) in unix ms.
std::int64_t lifecycle_floor_ms(store::Store& store, const Clock& clock);

class LifecycleEvents {
 public:
  static constexpr std::size_t kKept = 4096;

  LifecycleEvents(asio::any_io_executor executor, const Clock& clock, std::int64_t floor_ms,
                  std::size_t capacity = kKept);

  // `from` empty: the sandbox did not exist (a create). `to` empty: the row is gone again
  // (a create rolled back before anyone could use it).
  void sandbox_state(std::string_view sandbox_id, std::string_view user_id, std::string_view from,
                     std::string_view to, std::string_view reason);
  void task_state(const store::TaskRow& task, std::string_view user_id);

  // The kept events after `last_id`, oldest first; nullopt when some event after it is no
  // longer kept or `last_id` is not an id of this run (the client must list again).
  std::optional<std::vector<LifecycleEvent>> after(std::uint64_t last_id) const;
  // The newest id, or just below this run's first one before any event.
  std::uint64_t newest() const { return newest_; }
  // Fires at the next event.
  std::shared_ptr<OneShot> next();

 private:
  void add(std::string type, std::string_view sandbox_id, std::string_view user_id,
           std::string data);

  asio::any_io_executor executor_;
  const Clock& clock_;
  std::size_t capacity_;
  std::deque<LifecycleEvent> kept_;
  std::uint64_t horizon_;  // every id at or below it is gone (or from an earlier run)
  std::uint64_t newest_;
  std::shared_ptr<OneShot> next_;
};

}  // namespace sandboxd::control
