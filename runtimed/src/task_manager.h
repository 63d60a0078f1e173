// Tasks (SPEC §6.3–§6.6): the queue (one task runs at a time, up to max_queued wait in
// submission order), running an agent as its own process group, its events, cancel and
// timeout kills, persistence through each task's Journal, and what recovery found at boot.
// Loop thread only. Task objects live as long as the manager (they are never erased), so
// pointers to them stay valid.
#pragma once

#include "async.h"
#include "context.h"
#include "journal.h"
#include "runtimed/agent_output.h"
#include "task_files.h"
#include "task_model.h"

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::runtimed {

struct RunState;

struct Task {
  TaskSummary s;
  std::shared_ptr<Journal> journal;
  bool done_emitted = false;
  bool reserving = false;  // task.json not yet written
  std::uint64_t output_bytes = 0;
  std::uint64_t dropped_bytes = 0;
  bool truncated = false;
  std::shared_ptr<RunState> run;  // while running
};

// Where a stream writes; false when the client is gone.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual asio::awaitable<bool> write(std::string_view bytes) = 0;
};

class TaskManager {
 public:
  TaskManager(Context& ctx, std::function<std::string()> devserver_state);
  ~TaskManager();

  // Boot: takes what recovery found; interrupted tasks' leftover processes are killed.
  void load(RecoveryReport report);
  void start();

  enum class SubmitCode { accepted, existing, queue_full, unavailable, failed };
  struct SubmitResult {
    SubmitCode code = SubmitCode::failed;
    Task* task = nullptr;
    std::string message;
  };
  // The request is already validated; `id` may be known (then `existing`).
  asio::awaitable<SubmitResult> submit(const TaskRequest& request);

  Task* find(const std::string& id);
  std::vector<const Task*> list(std::size_t limit) const;
  // 202 when the cancel was taken (queued or running), 200 when the task had finished.
  int cancel(Task& task);

  boost::json::object task_json(const Task& task) const;
  std::optional<std::string> running_id() const;
  std::size_t queued_count() const { return queue_.size(); }

  // Streams events with id > since until `done` has been sent (SPEC §6.4).
  asio::awaitable<void> stream_events(Task& task, std::uint64_t since, EventSink& sink);

  // Shutdown (SPEC §6.1): no new tasks; the running one gets SIGTERM and, once it has
  // ended, is finalized as failed/interrupted. Returns once the queue loop has stopped and
  // every journal is flushed, or at `deadline`.
  void begin_shutdown();
  asio::awaitable<void> wait_stopped(std::chrono::steady_clock::time_point deadline);
  bool stopping() const { return stopping_; }

 private:
  Task& add(TaskSummary summary, std::uint64_t events_bytes, bool done);
  asio::awaitable<void> queue_loop();
  asio::awaitable<void> run_task(Task& task);
  asio::awaitable<void> read_output(Task* task, std::shared_ptr<RunState> run, bool is_stdout);
  asio::awaitable<void> kill_leftovers(const std::string& marker);

  void emit(Task& task, std::string_view type, const boost::json::object& data);
  void emit_output(Task& task, std::string_view type, std::string_view text, bool partial,
                   std::uint64_t counted);
  void emit_agent_events(Task& task, std::vector<AgentEvent>& events);
  void fail_before_spawn(Task& task, std::string_view code, const std::string& message);
  void finish(Task& task, TaskStatus status, std::optional<TaskError> error,
              std::optional<int> exit_code, const Outcome* outcome);
  void on_disk_error(Task& task, int err);

  Context& ctx_;
  std::function<std::string()> devserver_state_;
  std::map<std::string, std::unique_ptr<Task>> tasks_;
  std::deque<Task*> queue_;
  Task* running_ = nullptr;
  std::size_t reserving_ = 0;
  Notifier queue_changed_;
  Notifier stopped_changed_;
  bool stopping_ = false;
  bool loop_running_ = false;
  std::size_t unfinished_journals_ = 0;
};

}  // namespace sandboxd::runtimed
