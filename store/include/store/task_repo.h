// Typed access to the `task` and `task_event` tables (SPEC §8).
//
// A task row is sandboxd's lasting record of one runtimed task: what was asked (prompt or
// argv, model, env NAMES only), where it stands, and the data of its `done` event. Its
// events are stored beside it, keyed (task_id, id) with runtimed's event ids, so a relay
// that replays a stream inserts nothing twice (`INSERT OR IGNORE`).
//
// `last_event_id` is the highest event id the relay has processed, stored or dropped by the
// per-task cap: a relay resumes runtimed's stream after it. The functions taking `Tx&`
// compose into one write job; the `Store&` overloads are blocking single reads. Times are
// unix ms. Plain data; no SQL leaves store/.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/store.h"
#include "store/tx.h"

namespace sandboxd::store {

struct TaskRow {
  std::string id{};  // canonical ULID made by sandboxd
  std::string sandbox_id{};
  std::string agent{};                  // opencode|claude-code|command
  std::optional<std::string> prompt{};  // agents only
  std::optional<std::string> argv{};    // command only: a JSON array
  std::optional<std::string> model{};
  std::string env_keys = "[]";  // JSON array of names; values are never stored
  std::string status{};         // queued|running|succeeded|failed|cancelled
  std::optional<std::int64_t> exit_code{};
  std::optional<std::string> error_code{};
  std::optional<std::string> error_message{};
  std::optional<std::string> result{};  // data of the done event, JSON
  std::int64_t timeout_ms = 0;
  std::string actor{};
  std::int64_t created_at = 0;
  std::optional<std::int64_t> started_at{};
  std::optional<std::int64_t> finished_at{};
  std::optional<std::int64_t> cancel_requested_at{};
  std::int64_t last_event_id = 0;
  std::int64_t events_dropped = 0;

  bool final() const { return status != "queued" && status != "running"; }
  friend bool operator==(const TaskRow&, const TaskRow&) = default;
};

struct TaskEventRow {
  std::int64_t id = 0;  // runtimed's event id, >= 1
  std::string type{};   // started|stdout|stderr|message|tool|file|exit|error|done
  std::int64_t ts = 0;  // unix ms
  std::string data{};   // the event's data object, JSON

  friend bool operator==(const TaskEventRow&, const TaskEventRow&) = default;
};

struct TaskFilter {
  std::optional<std::string> status{};
  std::optional<std::string> after_id{};  // a cursor: tasks older than this one (newest first)
  int limit = 100;
};

namespace task_repo {

// A taken id is Errc::conflict; an unknown sandbox violates the foreign key (conflict too).
Status insert(Tx& tx, const TaskRow& row);
// Errc::not_found when absent.
Result<TaskRow> get(Tx& tx, std::string_view id);
// The sandbox's tasks, newest first (created_at, then id, both descending).
Result<std::vector<TaskRow>> list(Tx& tx, std::string_view sandbox_id, const TaskFilter& filter);
// Queued and running tasks of every sandbox, oldest first.
Result<std::vector<TaskRow>> list_open(Tx& tx);
// Rewrites the mutable columns (status, exit_code, error_*, result, started_at,
// finished_at, cancel_requested_at, last_event_id, events_dropped). Errc::not_found when
// absent.
Status update(Tx& tx, const TaskRow& row);
// Inserts events with INSERT OR IGNORE (a replay is harmless); ids must be >= 1.
Status insert_events(Tx& tx, std::string_view task_id, std::span<const TaskEventRow> events);
// Events with id > after_id in id order, at most `limit`.
Result<std::vector<TaskEventRow>> events_after(Tx& tx, std::string_view task_id,
                                               std::int64_t after_id, int limit);
// Events of one type in id order (e.g. the `file` events of a task object).
Result<std::vector<TaskEventRow>> events_of_type(Tx& tx, std::string_view task_id,
                                                 std::string_view type);
// Bytes of event data stored for the task (the per-task cap of SPEC §8).
Result<std::int64_t> event_bytes(Tx& tx, std::string_view task_id);
// One batch of the daily event-retention sweep (SPEC §8): deletes at most `batch` events of
// tasks finished before `cutoff_ms`, never a `done` (a replay still ends); the task rows
// stay. Returns the events deleted; fewer than `batch` means done.
Result<std::int64_t> delete_expired_events(Tx& tx, std::int64_t cutoff_ms, int batch);

Result<TaskRow> get(Store& store, std::string_view id);
Result<std::vector<TaskRow>> list(Store& store, std::string_view sandbox_id,
                                  const TaskFilter& filter);
Result<std::vector<TaskRow>> list_open(Store& store);
Result<std::vector<TaskEventRow>> events_after(Store& store, std::string_view task_id,
                                               std::int64_t after_id, int limit);
Result<std::vector<TaskEventRow>> events_of_type(Store& store, std::string_view task_id,
                                                 std::string_view type);
Result<std::int64_t> event_bytes(Store& store, std::string_view task_id);

}  // namespace task_repo
}  // namespace sandboxd::store
