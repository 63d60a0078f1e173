// Tasks (SPEC §2.7.1-2.7.5, §6.6, §6.8, §8): submit through runtimed, the lasting record in
// SQLite, one relay per open task, and the event streams that clients read.
//
// The relay of a task follows runtimed's `GET /tasks/{id}/events?since=<last_event_id>` once,
// turns every line into a `task_event` row (INSERT OR IGNORE, so a replay is harmless) and
// keeps the task row in step, in one transaction per batch: events that arrive while a batch
// is being written form the next batch. Clients never read runtimed: they read the store
// and are woken after each commit, so any number of them see the same events, stored ones
// first and live ones after, with no gap and no duplicate. A relay whose stream drops
// reconnects from the last event it processed while the sandbox runs; once the sandbox no
// longer runs, a running task is finalized as failed/interrupted with synthetic `error` and
// `done` events (SPEC §8), and a queued one waits for the next start.
//
// After every container start (and at boot for sandboxes already running) the service waits
// until runtimed's /status answers and reconciles tasks with runtimed's list (SPEC §6.8);
// submits to that sandbox wait for it.
//
// Threading: everything runs on the control executor's single thread, like SandboxService.
// The Config, Store, SandboxService and RuntimedLink must outlive it; coroutines it spawned
// hold its state weakly and end quietly once it is gone.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "api_error.h"
#include "async_util.h"
#include "config/config.h"
#include "http.h"
#include "runtimed_client.h"
#include "sandbox_service.h"
#include "store/task_repo.h"

namespace sandboxd::control {

// A validated POST …/tasks body (SPEC §2.7.1); defaults from tasks.* are already applied.
struct TaskSubmit {
  std::string agent;                    // opencode|claude-code|command
  std::optional<std::string> prompt;    // agents
  std::vector<std::string> argv;        // command
  std::optional<std::string> model;     // agents
  std::vector<std::string> extra_args;  // agents, from tasks.agents.<name>.extra_args
  std::map<std::string, std::string> env;
  std::int64_t timeout_s = 7200;
};

struct CancelOutcome {
  int status = 202;   // 202 cancelling, 200 already final (or finalized now)
  std::string state;  // "cancelling" or the final status
};

// runtimed's health for the v1 object (SPEC §6.8): up, starting, unreachable, unauthorized,
// bad_socket.
struct RuntimeHealth {
  std::string runtime;
  std::optional<std::string> devserver_state;  // from /status when it answered
};

class TaskService {
 public:
  TaskService(asio::any_io_executor executor, const config::Config& config, store::Store& store,
              SandboxService& sandboxes, const RuntimedLink& link, const Clock& clock);
  ~TaskService();
  TaskService(const TaskService&) = delete;
  TaskService& operator=(const TaskService&) = delete;

  // Boot, after the reconciler: relays for open tasks of running sandboxes (after their
  // runtimed answered), interrupted finalization for running tasks of stopped ones.
  asio::awaitable<void> recover();
  // SandboxService's hook after a container start: reconcile with the new runtimed.
  void container_started(const std::string& sandbox_id);

  asio::awaitable<ApiResult<store::TaskRow>> submit(const std::string& sandbox_id,
                                                    TaskSubmit request, Actor actor);
  ApiResult<store::TaskRow> get(const std::string& sandbox_id, const std::string& task_id) const;
  ApiResult<std::vector<store::TaskRow>> list(const std::string& sandbox_id,
                                              const store::TaskFilter& filter) const;
  // The sandbox's queued and running tasks, oldest first.
  std::vector<store::TaskRow> open_tasks(const std::string& sandbox_id) const;
  // Paths of the task's `file` events, in order, without repeats.
  std::vector<std::string> files_changed(const std::string& task_id) const;
  asio::awaitable<ApiResult<CancelOutcome>> cancel(const std::string& sandbox_id,
                                                   const std::string& task_id, Actor actor);

  // Writes the SSE body of GET …/events (SPEC §2.7.4) from event `after + 1` on, until the
  // `done` event was written, the client left (`gone`) or a write failed.
  asio::awaitable<void> stream_events(std::string task_id, std::int64_t after, BodySink& sink,
                                      std::shared_ptr<OneShot> gone);

  // The last `tail` lines of the dev-server log through runtimed (SPEC §6.3); Errc failures
  // of RuntimedClient, or not_found when the sandbox has no running container.
  asio::awaitable<Result<std::string>> devserver_log(const std::string& sandbox_id, int tail);

  // runtimed's /status within `limit` (GET of the v1 object asks with 1 s).
  asio::awaitable<RuntimeHealth> health(const store::SandboxRow& row,
                                        std::chrono::milliseconds limit);

  // Sandboxes with a queued or running task: busy for the idle reaper (SPEC §4.1).
  std::set<std::string> busy_sandboxes() const;
  std::size_t tasks_running() const;

  // Where every task status change is announced (GET /v1/events), after its store write.
  void set_events(LifecycleEvents& events) { events_ = &events; }

 private:
  struct Relay;
  struct Readiness;
  struct State;

  RuntimedTarget target_for(const store::SandboxRow& row) const;
  // SPEC §6.2: a socket that fails its checks gets one warning and one audit row per
  // container start.
  void report_bad_socket(const store::SandboxRow& row, const Error& error);
  std::optional<store::SandboxRow> sandbox(const std::string& id) const;

  // Waits until the sandbox's runtimed answered and reconciliation after its start is done.
  asio::awaitable<ApiResult<void>> ready(const store::SandboxRow& row);
  asio::awaitable<void> reconcile(std::string sandbox_id, std::shared_ptr<Readiness> gate);
  asio::awaitable<ApiResult<void>> wait_for_runtimed(const std::string& sandbox_id);

  void ensure_relay(const store::TaskRow& row);
  asio::awaitable<void> run_relay(std::shared_ptr<Relay> relay);
  asio::awaitable<void> relay_writer(std::shared_ptr<Relay> relay);
  // Applies one event line of runtimed to the relay; false ends the stream.
  bool take_line(Relay& relay, std::string_view line);

  // Finalizes an open task that runtimed cannot finish (SPEC §8 "Interrupted stream"):
  // synthetic `error` (unless `code` is empty) and `done` events after last_event_id.
  asio::awaitable<Status> finalize(const std::string& task_id, std::string_view status,
                                   std::string_view code, std::string_view message);
  asio::awaitable<Status> write_task(const store::TaskRow& row,
                                     std::vector<store::TaskEventRow> events);
  // A task.state event when `row` left `from` ("" = it was just submitted).
  void announce(std::string_view from, const store::TaskRow& row);
  asio::awaitable<void> recover_sandbox(store::SandboxRow row);
  // Wakes every stream waiting on the task.
  void notify(const std::string& task_id);
  std::shared_ptr<OneShot> watch(const std::string& task_id);

  asio::awaitable<Result<RuntimedReply>> post_task(const store::SandboxRow& sandbox,
                                                   const std::string& task_id,
                                                   const TaskSubmit& request);

  asio::any_io_executor executor_;
  const config::Config& config_;
  store::Store& store_;
  SandboxService& sandboxes_;
  const RuntimedLink& link_;
  const Clock& clock_;
  RuntimedClient client_;
  std::shared_ptr<State> state_;
  LifecycleEvents* events_ = nullptr;
};

// Event-envelope time: RFC 3339 UTC with milliseconds, "2026-11-22T14:03:07.123Z".
std::string format_time_ms(std::int64_t unix_ms);
// Parses runtimed's times ("…T14:03:07Z" or with a fraction); nullopt when malformed.
inline std::optional<std::int64_t> parse_time_ms(std::string_view text) { return parse_rfc3339_ms(text); }

}  // namespace sandboxd::control
