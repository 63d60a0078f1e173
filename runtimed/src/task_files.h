// The on-disk layout of tasks (SPEC §6.6), in <workspace>/.sandboxd/tasks/<id>/:
//   task.json      the request (env values included) and created_at, 0600, written first
//   events.ndjson  one event per line, ids 1, 2, 3 … (line n holds id n)
//   agent.log      the raw output, capped
//   result.json    the `done` data, by temp file and rename after the `done` line
// and the boot-time recovery that reads it back. Blocking calls: at boot, or on the writer
// strand / blocking pool. Nothing here follows a symlink at the leaf.
#pragma once

#include "base/clock.h"
#include "base/result.h"
#include "task_model.h"

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::runtimed {

inline constexpr std::string_view kTaskFile = "task.json";
inline constexpr std::string_view kEventsFile = "events.ndjson";
inline constexpr std::string_view kAgentLog = "agent.log";
inline constexpr std::string_view kResultFile = "result.json";

// mkdir -p with `mode` for every directory it creates.
Status make_dirs(const std::string& path, mode_t mode);

// Writes `content` to dir/name through a temp file (O_EXCL|O_NOFOLLOW), fsync, rename and
// an fsync of the directory: readers see the old file or the new one.
Status write_file_atomic(const std::string& dir, std::string_view name, std::string_view content,
                         mode_t mode);

// A regular file of at most `max` bytes, not through a symlink.
Result<std::string> read_small_file(const std::string& path, std::size_t max);

// Deletes a directory tree without following symlinks.
void remove_tree(const std::string& path);

// task.json's content for a request created at `created_at`.
std::string task_file_json(const TaskRequest& request, Clock::WallTime created_at);

struct RecoveredTask {
  enum class Kind { finished, interrupted, queued };
  Kind kind = Kind::queued;
  TaskSummary summary;
};

struct RecoveryReport {
  std::vector<RecoveredTask> tasks;  // queued ones in created_at order
  std::size_t deleted = 0;           // finished directories past retention
  std::size_t skipped = 0;           // unreadable directories, left alone
};

// Recovery at boot (SPEC §6.6): finished tasks are loaded, interrupted ones get
// `error {interrupted}` and `done {failed}` appended and a result.json, task.json-only ones
// come back queued, and finished directories older than `retention` are deleted.
// `devserver_state` goes into the appended `done`.
RecoveryReport recover_tasks(const std::string& tasks_root, const RequestDefaults& defaults,
                             Clock::WallTime now, std::chrono::hours retention,
                             std::string_view devserver_state);

}  // namespace sandboxd::runtimed
