// What runtimed knows about one task, as the task object of SPEC §6.3 shows it.
#pragma once

#include "base/clock.h"
#include "runtimed/task_request.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::runtimed {

enum class TaskStatus { queued, running, succeeded, failed, cancelled };

std::string_view status_name(TaskStatus s);
std::optional<TaskStatus> parse_status(std::string_view s);
inline bool is_final(TaskStatus s) {
  return s == TaskStatus::succeeded || s == TaskStatus::failed || s == TaskStatus::cancelled;
}

struct TaskError {
  std::string code;
  std::string message;
};

struct TaskSummary {
  TaskRequest request;
  TaskStatus status = TaskStatus::queued;
  Clock::WallTime created_at{};
  std::optional<Clock::WallTime> started_at;
  std::optional<Clock::WallTime> finished_at;
  std::optional<int> exit_code;
  std::optional<TaskError> error;
  std::uint64_t last_event_id = 0;
  std::uint64_t events_bytes = 0;  // size of events.ndjson
  bool cancel_requested = false;
};

}  // namespace sandboxd::runtimed
