#include "task_manager.h"

#include "base/log.h"
#include "process.h"
#include "runtimed/agents.h"
#include "runtimed/events.h"
#include "runtimed/line_splitter.h"
#include "runtimed/text.h"
#include "workspace_fs.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

namespace sandboxd::runtimed {

namespace json = boost::json;
using steady = std::chrono::steady_clock;

namespace {

constexpr log::Logger kLog{"runtimed"};
constexpr std::size_t kMaxLine = 16 * 1024;            // SPEC §6.4
constexpr std::size_t kMaxAgentLine = 4 * 1024 * 1024;  // one JSON line of an agent
// Message pieces and the final message stay small enough that an event line, even with
// every character escaped, remains under the 256 KiB sandboxd reads (SPEC §6.2).
constexpr std::size_t kMaxMessagePiece = 32 * 1024;
constexpr std::size_t kMaxFinalMessage = 32 * 1024;
constexpr auto kAfterExit = std::chrono::seconds(5);   // SPEC §6.6 "End"
constexpr std::size_t kStreamRead = 256 * 1024;
constexpr auto kHeartbeat = std::chrono::seconds(15);

std::string marker_of(const Task& t) { return "SANDBOXD_TASK_ID=" + t.s.request.id; }

json::value time_or_null(const std::optional<Clock::WallTime>& t) {
  if (!t) return nullptr;
  return json::value(format_time_ms(*t));
}

json::object error_json(const TaskError& e) {
  json::object o;
  o["code"] = e.code;
  o["message"] = valid_utf8(e.message);
  return o;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

struct RunState {
  RunState(asio::any_io_executor ex, int out_fd, int err_fd)
      : out(ex, out_fd), err(ex, err_fd), out_split(kMaxLine), err_split(kMaxLine) {}

  asio::posix::stream_descriptor out;
  asio::posix::stream_descriptor err;
  pid_t pid = -1;
  bool exited = false;
  ExitStatus exit;
  steady::time_point exit_at{};
  bool out_done = false;
  bool err_done = false;
  bool disk_full = false;
  Notifier changed;
  std::unique_ptr<OutputParser> parser;
  LineSplitter out_split;
  LineSplitter err_split;
};

TaskManager::TaskManager(Context& ctx, std::function<std::string()> devserver_state)
    : ctx_(ctx), devserver_state_(std::move(devserver_state)) {}

TaskManager::~TaskManager() = default;

Task& TaskManager::add(TaskSummary summary, std::uint64_t events_bytes, bool done) {
  auto task = std::make_unique<Task>();
  std::string id = summary.request.id;
  task->s = std::move(summary);
  task->done_emitted = done;
  std::uint64_t events = task->s.last_event_id;
  task->journal = std::make_shared<Journal>(ctx_.loop, ctx_.writer, ctx_.tasks_dir + "/" + id,
                                            events, events_bytes,
                                            ctx_.settings.tasks.max_output_bytes);
  Task* raw = task.get();
  task->journal->on_disk_error = [this, raw](int err) { on_disk_error(*raw, err); };
  Task& ref = *task;
  tasks_[id] = std::move(task);
  return ref;
}

void TaskManager::load(RecoveryReport report) {
  for (RecoveredTask& r : report.tasks) {
    bool finished = r.kind != RecoveredTask::Kind::queued;
    std::uint64_t bytes = r.summary.events_bytes;
    Task& t = add(std::move(r.summary), bytes, finished);
    if (r.kind == RecoveredTask::Kind::queued) {
      t.s.status = TaskStatus::queued;
      queue_.push_back(&t);
      kLog.info("task requeued", {{"task", t.s.request.id}});
    } else if (r.kind == RecoveredTask::Kind::interrupted) {
      kLog.warn("task interrupted", {{"task", t.s.request.id}});
      std::string marker = marker_of(t);
      asio::co_spawn(ctx_.loop, [this, marker] { return kill_leftovers(marker); }, asio::detached);
    }
  }
  if (report.deleted > 0) {
    kLog.info("old task directories deleted", {{"count", report.deleted}});
  }
}

asio::awaitable<void> TaskManager::kill_leftovers(const std::string& marker) {
  co_await kill_tree(ctx_, 0, marker,
                     std::chrono::milliseconds(ctx_.settings.tasks.cancel_grace_ms));
}

void TaskManager::start() {
  loop_running_ = true;
  asio::co_spawn(ctx_.loop, [this] { return queue_loop(); }, asio::detached);
}

Task* TaskManager::find(const std::string& id) {
  auto it = tasks_.find(id);
  return it == tasks_.end() || it->second->reserving ? nullptr : it->second.get();
}

std::vector<const Task*> TaskManager::list(std::size_t limit) const {
  std::vector<const Task*> all;
  for (const auto& [id, t] : tasks_) {
    if (!t->reserving) all.push_back(t.get());
  }
  std::sort(all.begin(), all.end(), [](const Task* a, const Task* b) {
    if (a->s.created_at != b->s.created_at) return a->s.created_at > b->s.created_at;
    return a->s.request.id > b->s.request.id;
  });
  if (all.size() > limit) all.resize(limit);
  return all;
}

std::optional<std::string> TaskManager::running_id() const {
  if (!running_) return std::nullopt;
  return running_->s.request.id;
}

json::object TaskManager::task_json(const Task& t) const {
  json::object o;
  o["id"] = t.s.request.id;
  o["agent"] = agent_name(t.s.request.agent);
  o["status"] = status_name(t.s.status);
  o["created_at"] = format_time_ms(t.s.created_at);
  o["started_at"] = time_or_null(t.s.started_at);
  o["finished_at"] = time_or_null(t.s.finished_at);
  o["exit_code"] = t.s.exit_code ? json::value(*t.s.exit_code) : json::value(nullptr);
  o["error"] = t.s.error ? json::value(error_json(*t.s.error)) : json::value(nullptr);
  o["last_event_id"] = t.s.last_event_id;
  o["cancel_requested"] = t.s.cancel_requested;
  json::value position = nullptr;
  if (t.s.status == TaskStatus::queued) {
    auto it = std::find(queue_.begin(), queue_.end(), &t);
    if (it != queue_.end()) position = (it - queue_.begin()) + 1;
  }
  o["queue_position"] = position;
  return o;
}

asio::awaitable<TaskManager::SubmitResult> TaskManager::submit(const TaskRequest& request) {
  SubmitResult result;
  if (Task* existing = find(request.id)) {
    result.code = SubmitCode::existing;
    result.task = existing;
    co_return result;
  }
  if (tasks_.count(request.id)) {
    // The same id is being stored right now; the caller retries.
    result.code = SubmitCode::unavailable;
    result.message = "a task with this id is being submitted";
    co_return result;
  }
  if (stopping_) {
    result.code = SubmitCode::unavailable;
    result.message = "runtimed is shutting down";
    co_return result;
  }
  auto max_queued = static_cast<std::size_t>(ctx_.settings.tasks.max_queued);
  if (queue_.size() + reserving_ >= max_queued && (running_ || !queue_.empty() || reserving_)) {
    result.code = SubmitCode::queue_full;
    result.message = "the task queue is full (" + std::to_string(max_queued) + " queued" +
                     (running_ ? ", task " + running_->s.request.id + " running" : std::string()) +
                     ")";
    co_return result;
  }

  TaskSummary summary;
  summary.request = request;
  summary.status = TaskStatus::queued;
  summary.created_at = ctx_.clock->wall();
  Task& t = add(std::move(summary), 0, false);
  t.reserving = true;
  ++reserving_;
  std::string dir = ctx_.tasks_dir + "/" + request.id;
  std::string content = task_file_json(t.s.request, t.s.created_at);
  auto write = [dir, content]() -> Status {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Error{Errc::io, std::string("cannot create the task directory: ") + std::strerror(errno)};
    }
    return write_file_atomic(dir, kTaskFile, content, 0600);
  };
  asio::any_io_executor writer = ctx_.writer;
  Status stored = co_await offload(writer, write);
  --reserving_;
  t.reserving = false;
  if (!stored) {
    kLog.error("task not stored", {{"task", request.id}, {"error", stored.error().detail}});
    tasks_.erase(request.id);
    result.code = SubmitCode::failed;
    result.message = "cannot store the task: " + stored.error().detail;
    co_return result;
  }
  kLog.info("task queued", {{"task", t.s.request.id}, {"agent", agent_name(t.s.request.agent)}});
  queue_.push_back(&t);
  if (t.s.cancel_requested) cancel(t);
  queue_changed_.notify();
  result.code = SubmitCode::accepted;
  result.task = &t;
  co_return result;
}

int TaskManager::cancel(Task& t) {
  if (is_final(t.s.status)) return 200;
  t.s.cancel_requested = true;
  if (t.s.status == TaskStatus::queued) {
    auto it = std::find(queue_.begin(), queue_.end(), &t);
    if (it == queue_.end()) return 202;  // still being stored; cancelled once it is
    queue_.erase(it);
    kLog.info("task cancelled while queued", {{"task", t.s.request.id}});
    finish(t, TaskStatus::cancelled, std::nullopt, std::nullopt, nullptr);
    return 202;
  }
  if (t.run) t.run->changed.notify();
  return 202;
}

void TaskManager::emit(Task& t, std::string_view type, const json::object& data) {
  std::uint64_t id = t.s.last_event_id + 1;
  t.s.last_event_id = id;
  std::string line = event_line(id, type, ctx_.clock->wall(), data);
  t.journal->append_event(std::move(line));
}

void TaskManager::emit_output(Task& t, std::string_view type, std::string_view text, bool partial,
                              std::uint64_t counted) {
  std::uint64_t cap = ctx_.settings.tasks.max_output_bytes;
  if (t.truncated) {
    t.dropped_bytes += counted;
    return;
  }
  if (t.output_bytes + counted > cap) {
    t.truncated = true;
    t.dropped_bytes += counted;
    json::object err;
    err["code"] = "output_truncated";
    err["message"] = "output passed tasks.max_output_bytes (" + std::to_string(cap) +
                     " bytes); further output is dropped while the task keeps running";
    emit(t, "error", err);
    return;
  }
  t.output_bytes += counted;
  json::object data;
  data["text"] = valid_utf8(text);
  if (partial) data["partial"] = true;
  emit(t, type, data);
}

void TaskManager::emit_agent_events(Task& t, std::vector<AgentEvent>& events) {
  for (AgentEvent& e : events) {
    if (e.type == "stdout") {
      // A non-JSON line of an agent: cut like any output line.
      std::string text(e.data["text"].as_string());
      std::string_view rest = text;
      do {
        std::size_t n = utf8_cut(rest, kMaxLine);
        bool last = n == rest.size();
        emit_output(t, "stdout", rest.substr(0, n), !last, n + (last ? 1 : 0));
        rest.remove_prefix(n);
      } while (!rest.empty());
    } else if (e.type == "message") {
      std::string text(e.data["text"].as_string());
      std::string role(e.data["role"].as_string());
      std::string_view rest = text;
      do {
        std::size_t n = utf8_cut(rest, kMaxMessagePiece);
        bool last = n == rest.size();
        if (t.truncated || t.output_bytes + n > ctx_.settings.tasks.max_output_bytes) {
          emit_output(t, "message", rest.substr(0, n), !last, n);  // records the drop
        } else {
          t.output_bytes += n;
          json::object data;
          data["role"] = role;
          data["text"] = std::string(rest.substr(0, n));
          if (!last) data["partial"] = true;
          emit(t, "message", data);
        }
        rest.remove_prefix(n);
      } while (!rest.empty());
    } else {
      emit(t, e.type, e.data);
    }
  }
  events.clear();
}

void TaskManager::fail_before_spawn(Task& t, std::string_view code, const std::string& message) {
  kLog.warn("task failed before spawn", {{"task", t.s.request.id}, {"code", code}});
  TaskError err{std::string(code), message};
  emit(t, "error", error_json(err));
  finish(t, TaskStatus::failed, err, std::nullopt, nullptr);
}

void TaskManager::finish(Task& t, TaskStatus status, std::optional<TaskError> error,
                         std::optional<int> exit_code, const Outcome* outcome) {
  auto now = ctx_.clock->wall();
  t.s.status = status;
  t.s.error = std::move(error);
  t.s.exit_code = exit_code;
  t.s.finished_at = now;
  json::object done;
  done["status"] = status_name(status);
  done["exit_code"] = exit_code ? json::value(*exit_code) : json::value(nullptr);
  if (t.s.error) done["error"] = error_json(*t.s.error);
  auto since = t.s.started_at.value_or(now);
  done["duration_ms"] = std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count());
  if (outcome && outcome->final_message) {
    std::string text = *outcome->final_message;
    text.resize(utf8_cut(text, kMaxFinalMessage));
    done["final_message"] = valid_utf8(text);
  }
  if (outcome && outcome->usage.reported) done["usage"] = outcome->usage.to_json();
  done["output_dropped_bytes"] = t.dropped_bytes;
  json::object dev;
  dev["state"] = devserver_state_();
  done["devserver"] = std::move(dev);
  emit(t, "done", done);
  t.done_emitted = true;
  ++unfinished_journals_;
  t.journal->finish(json::serialize(done) + "\n", [this] {
    --unfinished_journals_;
    stopped_changed_.notify();
  });
  kLog.info("task finished", {{"task", t.s.request.id},
                              {"status", status_name(status)},
                              {"events", t.s.last_event_id}});
}

void TaskManager::on_disk_error(Task& t, int err) {
  kLog.error("task files cannot be written", {{"task", t.s.request.id}, {"errno", err}});
  if (err != ENOSPC || t.s.status != TaskStatus::running || !t.run) return;
  t.run->disk_full = true;
  t.run->changed.notify();
}

asio::awaitable<void> TaskManager::queue_loop() {
  while (!stopping_) {
    if (queue_.empty()) {
      co_await queue_changed_.wait(std::chrono::hours(1));
      continue;
    }
    Task* t = queue_.front();
    queue_.pop_front();
    running_ = t;
    co_await run_task(*t);
    running_ = nullptr;
  }
  loop_running_ = false;
  stopped_changed_.notify();
}

asio::awaitable<void> TaskManager::run_task(Task& t) {
  const TaskRequest& req = t.s.request;
  t.s.status = TaskStatus::running;

  // The agent's env: runtimed's, then the task's, then the agent's additions and ours.
  std::map<std::string, std::string> env;
  for (const std::string& kv : ctx_.base_env) {
    std::size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : req.env) env[k] = v;

  auto lookup = [&env](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  struct stat st {};
  std::string auth_file = ctx_.workspace + "/.local/share/opencode/auth.json";
  bool opencode_auth = ::stat(auth_file.c_str(), &st) == 0;
  if (auto missing = missing_credentials(req, lookup, opencode_auth)) {
    fail_before_spawn(t, "missing_credentials", *missing);
    co_return;
  }

  if (!req.cwd_given) {
    if (Status made = make_dirs_beneath(ctx_.workspace, req.cwd); !made) {
      fail_before_spawn(t, "spawn_failed", "cannot create the working directory: " + made.error().detail);
      co_return;
    }
  }
  auto cwd = open_dir_beneath(ctx_.workspace, req.cwd);
  if (!cwd) {
    fail_before_spawn(t, "spawn_failed", "working directory " + cwd.error().detail);
    co_return;
  }
  Fd cwd_fd{*cwd};

  AgentCommand command = build_agent_command(req);
  for (const auto& [k, v] : command.env) env[k] = v;
  env["SANDBOXD_TASK_ID"] = req.id;
  env["HOME"] = ctx_.workspace;
  env["TERM"] = "dumb";
  SpawnSpec spec;
  spec.argv = command.argv;
  spec.cwd_fd = cwd_fd.fd;
  for (const auto& [k, v] : env) spec.env.push_back(k + "=" + v);

  int exec_errno = 0;
  auto spawned = spawn_process(spec, &exec_errno);
  if (!spawned) {
    if (exec_errno == ENOENT) {
      fail_before_spawn(t, "agent_not_found",
                        "program not found: " + valid_utf8(command.argv[0]) +
                            " (looked up in PATH)");
    } else {
      fail_before_spawn(t, "spawn_failed", "cannot start " + valid_utf8(command.argv[0]) + ": " +
                                               spawned.error().detail);
    }
    co_return;
  }

  auto run = std::make_shared<RunState>(ctx_.loop, spawned->out_fd, spawned->err_fd);
  run->pid = spawned->pid;
  run->parser = make_output_parser(req.agent, ctx_.workspace, req.cwd);
  if (req.agent != Agent::command) run->out_split = LineSplitter(kMaxAgentLine);
  t.run = run;
  std::weak_ptr<RunState> weak = run;
  ctx_.reaper->watch(run->pid, [weak](int status) {
    if (auto r = weak.lock()) {
      r->exited = true;
      r->exit = decode_wait_status(status);
      r->exit_at = steady::now();
      r->changed.notify();
    }
  });

  t.s.started_at = ctx_.clock->wall();
  json::object started;
  started["agent"] = agent_name(req.agent);
  json::array shown;
  for (const auto& a : command.shown_argv) shown.emplace_back(valid_utf8(a));
  started["argv"] = std::move(shown);
  started["cwd"] = req.cwd;
  started["pid"] = run->pid;
  emit(t, "started", started);
  kLog.info("task started", {{"task", req.id}, {"pid", run->pid}});

  Task* tp = &t;
  asio::co_spawn(ctx_.loop, [this, tp, run] { return read_output(tp, run, true); }, asio::detached);
  asio::co_spawn(ctx_.loop, [this, tp, run] { return read_output(tp, run, false); }, asio::detached);

  std::string marker = marker_of(t);
  auto grace = std::chrono::milliseconds(ctx_.settings.tasks.cancel_grace_ms);
  auto deadline = steady::now() + std::chrono::seconds(req.timeout_s);
  bool timed_out = false;
  bool disk_full = false;
  bool killing = false;
  bool interrupted = false;
  for (;;) {
    if (run->exited && run->out_done && run->err_done) break;
    auto now = steady::now();
    if (run->exited && now >= run->exit_at + kAfterExit) {
      // Something still holds the pipes (a background child): stop reading.
      boost::system::error_code ignored;
      run->out.cancel(ignored);
      run->err.cancel(ignored);
      while (!run->out_done || !run->err_done) co_await run->changed.wait(std::chrono::seconds(1));
      break;
    }
    if (stopping_ && !interrupted) {
      interrupted = true;
      ::kill(-run->pid, SIGTERM);
      auto marked_job = [marker] { return find_marked(marker); };
      std::vector<pid_t> marked = co_await offload(ctx_.pool, marked_job);
      for (pid_t p : marked) ::kill(p, SIGTERM);
      continue;
    }
    if (!killing && !interrupted && t.s.cancel_requested) {
      killing = true;
      kLog.info("task cancel", {{"task", req.id}});
      co_await kill_tree(ctx_, run->pid, marker, grace);
      continue;
    }
    if (!killing && !interrupted && run->disk_full) {
      killing = disk_full = true;
      TaskError err{"disk_full", "the disk is full; task files cannot be written"};
      emit(t, "error", error_json(err));
      co_await kill_tree(ctx_, run->pid, marker, grace);
      continue;
    }
    if (!killing && !interrupted && now >= deadline) {
      killing = timed_out = true;
      TaskError err{"timeout", "the task ran longer than timeout_s (" +
                                   std::to_string(req.timeout_s) + " s) and was killed"};
      emit(t, "error", error_json(err));
      kLog.info("task timeout", {{"task", req.id}});
      co_await kill_tree(ctx_, run->pid, marker, grace);
      continue;
    }
    auto wake = run->exited ? run->exit_at + kAfterExit : deadline;
    if (killing || interrupted) wake = std::min(wake, now + std::chrono::seconds(1));
    co_await run->changed.wait(std::max<steady::duration>(wake - now, std::chrono::milliseconds(1)));
  }

  // Nothing of the task may outlive it (SPEC §6.6 "End"); at shutdown runtimed kills all.
  if (!interrupted && !stopping_) {
    auto marked_job = [marker] { return find_marked(marker); };
    std::vector<pid_t> marked = co_await offload(ctx_.pool, marked_job);
    if (group_alive(run->pid) || !marked.empty()) co_await kill_tree(ctx_, run->pid, marker, grace);
  }
  interrupted = interrupted || stopping_;

  json::object exit_data;
  exit_data["code"] = run->exit.code ? json::value(*run->exit.code) : json::value(nullptr);
  exit_data["signal"] = run->exit.signal ? json::value(signal_name(*run->exit.signal))
                                         : json::value(nullptr);
  emit(t, "exit", exit_data);

  std::vector<AgentEvent> tail;
  Outcome outcome = run->parser->finish(run->exit.code, tail);
  if (interrupted) {
    TaskError err{"interrupted", "runtimed shut down while the task was running"};
    emit(t, "error", error_json(err));
    finish(t, TaskStatus::failed, err, run->exit.code, &outcome);
  } else if (t.s.cancel_requested) {
    finish(t, TaskStatus::cancelled, std::nullopt, run->exit.code, &outcome);
  } else if (timed_out) {
    finish(t, TaskStatus::failed, TaskError{"timeout", "the task ran longer than timeout_s"},
           run->exit.code, &outcome);
  } else if (disk_full) {
    finish(t, TaskStatus::failed, TaskError{"disk_full", "the disk is full"}, run->exit.code,
           &outcome);
  } else {
    emit_agent_events(t, tail);
    std::optional<TaskError> err;
    if (outcome.error) err = TaskError{outcome.error->first, outcome.error->second};
    finish(t, outcome.succeeded ? TaskStatus::succeeded : TaskStatus::failed, err,
           run->exit.code, &outcome);
  }
  t.run.reset();
}

asio::awaitable<void> TaskManager::read_output(Task* task, std::shared_ptr<RunState> run,
                                               bool is_stdout) {
  Task& t = *task;
  auto& stream = is_stdout ? run->out : run->err;
  auto& splitter = is_stdout ? run->out_split : run->err_split;
  std::vector<LineSplitter::Piece> pieces;
  std::vector<AgentEvent> events;
  std::string buf(64 * 1024, '\0');
  auto handle = [&] {
    for (auto& p : pieces) {
      std::uint64_t counted = p.text.size() + (p.partial ? 0 : 1);
      if (!is_stdout) {
        emit_output(t, "stderr", p.text, p.partial, counted);
      } else if (t.s.request.agent == Agent::command || p.split) {
        // Command output, or an agent line too long to be one of its JSON messages.
        std::string_view rest = p.text;
        do {
          std::size_t n = utf8_cut(rest, kMaxLine);
          bool last = n == rest.size();
          bool partial = !last || p.partial;
          emit_output(t, "stdout", rest.substr(0, n), partial, n + (partial ? 0 : 1));
          rest.remove_prefix(n);
        } while (!rest.empty());
      } else {
        run->parser->on_line(p.text, events);
        emit_agent_events(t, events);
      }
    }
    pieces.clear();
  };
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), nothrow);
    if (n > 0) {
      std::string_view chunk(buf.data(), n);
      t.journal->append_log(chunk);
      splitter.feed(chunk, pieces);
      handle();
    }
    if (ec) break;
  }
  splitter.finish(pieces);
  handle();
  boost::system::error_code ignored;
  stream.close(ignored);
  (is_stdout ? run->out_done : run->err_done) = true;
  run->changed.notify();
}

asio::awaitable<void> TaskManager::stream_events(Task& t, std::uint64_t since, EventSink& sink) {
  std::shared_ptr<Journal> journal = t.journal;
  Fd file;
  std::uint64_t offset = 0;
  std::uint64_t to_skip = since;
  auto last_write = steady::now();
  std::string path = journal->events_path();
  for (;;) {
    if (t.done_emitted && to_skip >= t.s.last_event_id) co_return;  // nothing left to send
    if (offset < journal->written_bytes()) {
      if (file.fd < 0) {
        auto open_job = [path] {
          return ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        };
        file.fd = co_await offload(ctx_.pool, open_job);
        if (file.fd < 0) co_return;
      }
      std::uint64_t limit = std::min<std::uint64_t>(journal->written_bytes(), offset + kStreamRead);
      int fd = file.fd;
      auto read_job = [fd, offset, limit] {
        std::string data(limit - offset, '\0');
        std::size_t got = 0;
        while (got < data.size()) {
          ssize_t n = ::pread(fd, data.data() + got, data.size() - got,
                              static_cast<off_t>(offset + got));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) break;
          got += static_cast<std::size_t>(n);
        }
        data.resize(got);
        return data;
      };
      std::string data = co_await offload(ctx_.pool, read_job);
      if (data.empty()) co_return;
      offset += data.size();
      std::string_view send = data;
      // Skipping counts line ends; a line cut by the read size is skipped across reads.
      while (to_skip > 0 && !send.empty()) {
        std::size_t nl = send.find('\n');
        if (nl == std::string_view::npos) {
          send = {};
          break;
        }
        send.remove_prefix(nl + 1);
        --to_skip;
      }
      if (!send.empty()) {
        if (!co_await sink.write(send)) co_return;
        last_write = steady::now();
      }
      continue;
    }
    if (t.done_emitted && journal->written_events() >= t.s.last_event_id) co_return;
    auto now = steady::now();
    if (now - last_write >= kHeartbeat) {
      if (!co_await sink.write("\n")) co_return;
      last_write = now;
      continue;
    }
    co_await journal->changed().wait(kHeartbeat - (now - last_write));
  }
}

void TaskManager::begin_shutdown() {
  stopping_ = true;
  queue_changed_.notify();
  if (running_ && running_->run) running_->run->changed.notify();
}

asio::awaitable<void> TaskManager::wait_stopped(steady::time_point deadline) {
  while ((loop_running_ || unfinished_journals_ > 0) && steady::now() < deadline) {
    co_await stopped_changed_.wait(deadline - steady::now());
  }
}

}  // namespace sandboxd::runtimed
