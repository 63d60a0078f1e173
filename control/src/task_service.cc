#include "task_service.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <ctime>
#include <span>

#include "base/json.h"
#include "base/log.h"
#include "base/ulid.h"
#include "sse.h"
#include "store/audit_repo.h"
#include "store/sandbox_repo.h"

namespace sandboxd::control {

namespace json = boost::json;

namespace {

constexpr log::Logger kLog{"tasks"};
// runtimed listens within 200 ms of its start (SPEC §6.1): ask often at first, then less.
constexpr std::chrono::milliseconds kStatusPollFirst{50};
constexpr std::chrono::milliseconds kStatusPollMax{1000};
constexpr std::chrono::milliseconds kRelayBackoffFirst{200};
constexpr std::chrono::milliseconds kRelayBackoffMax{5000};
constexpr std::chrono::milliseconds kWriteRetry{500};
constexpr std::chrono::seconds kStartingFor{30};  // SPEC §6.8
constexpr std::chrono::milliseconds kHealthCache{1000};
constexpr int kEventPage = 256;
constexpr std::size_t kLogCap = 16 * 1024 * 1024;

bool is_event_type(std::string_view t) {
  return t == "started" || t == "stdout" || t == "stderr" || t == "message" || t == "tool" ||
         t == "file" || t == "exit" || t == "error" || t == "done";
}

bool is_final_status(std::string_view s) {
  return s == "succeeded" || s == "failed" || s == "cancelled";
}

ApiError sandbox_unavailable(std::string message) {
  return {502, "sandbox_unavailable", std::move(message), {{"Retry-After", "1"}}};
}

ApiError runtimed_failure(const Error& e) {
  switch (e.code) {
    case Errc::conflict:
      return sandbox_unavailable("runtimed's socket failed its checks (bad_socket): " + e.detail);
    case Errc::timeout:
      return sandbox_unavailable("runtimed did not answer in time");
    default:
      return sandbox_unavailable("runtimed is unreachable: " + e.detail);
  }
}

// runtimed's error envelope {"error":{"code","message"}}, for messages.
std::string runtimed_error_text(const RuntimedReply& reply) {
  auto body = parse_json_object(reply.body);
  if (body) {
    if (const json::value* err = body->if_contains("error"); err && err->is_object()) {
      const json::object& o = err->get_object();
      std::string code, message;
      if (const json::value* c = o.if_contains("code"); c && c->is_string()) code = c->get_string();
      if (const json::value* m = o.if_contains("message"); m && m->is_string())
        message = m->get_string();
      if (!code.empty()) return code + ": " + message;
    }
  }
  return "HTTP " + std::to_string(reply.status);
}

std::string json_array_text(const std::vector<std::string>& items) {
  json::array a;
  for (const auto& s : items) a.emplace_back(s);
  return json::serialize(a);
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(nothrow);
}

}  // namespace

// ---------------------------------------------------------------------------- times

std::string format_time_ms(std::int64_t unix_ms) {
  std::time_t secs = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  int ms = static_cast<int>(unix_ms - secs * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

// ---------------------------------------------------------------------------- state

struct TaskService::Relay {
  explicit Relay(asio::any_io_executor ex)
      : bell(ex, asio::steady_timer::time_point::max()),
        flushed(std::make_shared<OneShot>(ex)),
        writer_done(std::make_shared<OneShot>(ex)) {}

  store::TaskRow row;             // what the store will hold once `pending` is written
  std::int64_t stored_bytes = 0;  // event data stored for the per-task cap (SPEC §8)
  std::vector<store::TaskEventRow> pending;
  std::int64_t committed_id = 0;  // last_event_id of the last committed batch
  bool dirty = false;             // the row changed without events (a dropped event)
  bool reader_done = false;
  bool gone = false;  // the task row was deleted (purge): nothing more to store
  bool bad_line_logged = false;
  asio::steady_timer bell;           // wakes the writer
  std::shared_ptr<OneShot> flushed;  // fired (and replaced) after each committed batch
  std::shared_ptr<OneShot> writer_done;

  void ring() { bell.cancel(); }
};

struct TaskService::Readiness {
  explicit Readiness(asio::any_io_executor ex, std::string container)
      : container_id(std::move(container)), done(std::make_shared<OneShot>(ex)) {}
  std::string container_id;
  std::shared_ptr<OneShot> done;
  bool ok = false;
  ApiError failure;
};

struct TaskService::State {
  std::map<std::string, std::shared_ptr<Relay>> relays;         // task id
  std::map<std::string, std::shared_ptr<Readiness>> readiness;  // sandbox id
  std::map<std::string, std::shared_ptr<OneShot>> watchers;     // task id
  struct CachedHealth {
    Clock::MonoTime at;
    RuntimeHealth health;
  };
  std::map<std::string, CachedHealth> health;              // sandbox id
  std::map<std::string, std::string> bad_socket_reported;  // sandbox id → container id
  // The status last stored for each open task (task.state events say what changed); read
  // from the store once per task and process, and dropped when the task is final.
  std::map<std::string, std::string> stored_status;  // task id
};

TaskService::TaskService(asio::any_io_executor executor, const config::Config& config,
                         store::Store& store, SandboxService& sandboxes, const RuntimedLink& link,
                         const Clock& clock)
    : executor_(std::move(executor)),
      config_(config),
      store_(store),
      sandboxes_(sandboxes),
      link_(link),
      clock_(clock),
      client_(link),
      state_(std::make_shared<State>()) {}

TaskService::~TaskService() = default;

RuntimedTarget TaskService::target_for(const store::SandboxRow& row) const {
  return RuntimedTarget{row.id, link_.secret(row.id, row.runtimed_secret_gen)};
}

void TaskService::report_bad_socket(const store::SandboxRow& row, const Error& error) {
  if (error.code != Errc::conflict) return;
  std::string container = row.container_id.value_or("");
  auto& reported = state_->bad_socket_reported[row.id];
  if (reported == container) return;
  reported = container;
  kLog.warn("runtimed socket failed its checks", {{"id", row.id}, {"error", error.detail}});
  store::AuditRow audit;
  audit.actor = "system";
  audit.action = "runtimed.bad_socket";
  audit.sandbox_id = row.id;
  json::object detail;
  detail["container_id"] = container;
  audit.detail = json::serialize(detail);
  store::WriteJob job = [audit](store::Tx& tx) -> Status {
    if (auto a = store::audit_repo::append(tx, audit); !a) return a.error();
    return ok();
  };
  store_.try_submit(std::move(job), [](Status) {});
}

std::optional<store::SandboxRow> TaskService::sandbox(const std::string& id) const {
  auto row = store::sandbox_repo::get(store_, id);
  if (!row) return std::nullopt;
  return std::move(*row);
}

std::set<std::string> TaskService::busy_sandboxes() const {
  std::set<std::string> ids;
  for (const auto& [id, relay] : state_->relays) {
    if (!relay->row.final()) ids.insert(relay->row.sandbox_id);
  }
  return ids;
}

std::size_t TaskService::tasks_running() const {
  std::size_t n = 0;
  for (const auto& [id, relay] : state_->relays) n += relay->row.status == "running" ? 1 : 0;
  return n;
}

void TaskService::notify(const std::string& task_id) {
  auto it = state_->watchers.find(task_id);
  if (it == state_->watchers.end()) return;
  it->second->fire();
  state_->watchers.erase(it);
}

std::shared_ptr<OneShot> TaskService::watch(const std::string& task_id) {
  auto& w = state_->watchers[task_id];
  if (!w) w = std::make_shared<OneShot>(executor_);
  return w;
}

void TaskService::announce(std::string_view from, const store::TaskRow& row) {
  if (row.final()) {
    state_->stored_status.erase(row.id);
  } else {
    state_->stored_status[row.id] = row.status;
  }
  if (events_ == nullptr || from == row.status) return;
  auto sb = sandbox(row.sandbox_id);
  events_->task_state(row, sb ? sb->external_user_id.value_or("") : std::string());
}

asio::awaitable<Status> TaskService::write_task(const store::TaskRow& row,
                                                std::vector<store::TaskEventRow> events) {
  auto known = state_->stored_status.find(row.id);
  if (known == state_->stored_status.end()) {
    const auto stored = store::task_repo::get(store_, row.id);
    known = state_->stored_status.emplace(row.id, stored ? stored->status : "").first;
  }
  const std::string from = known->second;
  store::WriteJob job = [row, events = std::move(events)](store::Tx& tx) -> Status {
    if (auto st = store::task_repo::insert_events(tx, row.id, events); !st) return st;
    return store::task_repo::update(tx, row);
  };
  Status st = co_await store_write(store_, std::move(job));
  if (st) announce(from, row);
  // SPEC §4.1: a task's start and end are activity, so the idle reaper counts from them.
  if (st && from != row.status && row.status != "queued") co_await sandboxes_.touch(row.sandbox_id);
  co_return st;
}

// ---------------------------------------------------------------------------- readiness

asio::awaitable<ApiResult<void>> TaskService::wait_for_runtimed(const std::string& sandbox_id) {
  auto deadline = clock_.mono() + config_.wake.timeout;
  auto poll = kStatusPollFirst;
  for (;;) {
    auto sb = sandbox(sandbox_id);
    if (!sb || sb->status != "running") {
      co_return sandbox_unavailable("sandbox " + sandbox_id + " is not running");
    }
    RuntimedTarget target = target_for(*sb);
    auto answer = co_await client_.call(target, "GET", "/status", "", kRuntimedStatusTimeout);
    if (answer && answer->status == 200) co_return ApiResult<void>();
    if (answer && answer->status == 401) {
      co_return sandbox_unavailable(
          "runtimed refused sandboxd's secret (unauthorized): the node key changed; a restart "
          "of the sandbox issues a new secret");
    }
    if (!answer && answer.error().code == Errc::conflict) {
      report_bad_socket(*sb, answer.error());
      co_return runtimed_failure(answer.error());
    }
    if (clock_.mono() >= deadline) {
      std::string why = answer ? "HTTP " + std::to_string(answer->status) : answer.error().detail;
      co_return sandbox_unavailable("runtimed did not answer within wake.timeout (" + why + ")");
    }
    co_await pause(poll);
    poll = std::min(poll * 2, kStatusPollMax);
  }
}

void TaskService::container_started(const std::string& sandbox_id) {
  auto sb = sandbox(sandbox_id);
  if (!sb) return;
  auto gate = std::make_shared<Readiness>(executor_, sb->container_id.value_or(""));
  state_->readiness[sandbox_id] = gate;
  state_->health.erase(sandbox_id);
  asio::co_spawn(executor_, reconcile(sandbox_id, gate), asio::detached);
}

asio::awaitable<ApiResult<void>> TaskService::ready(const store::SandboxRow& row) {
  std::shared_ptr<Readiness> gate;
  auto it = state_->readiness.find(row.id);
  if (it != state_->readiness.end() && it->second->container_id == row.container_id.value_or("")) {
    gate = it->second;
  } else {
    gate = std::make_shared<Readiness>(executor_, row.container_id.value_or(""));
    state_->readiness[row.id] = gate;
    asio::co_spawn(executor_, reconcile(row.id, gate), asio::detached);
  }
  std::shared_ptr<OneShot> done = gate->done;
  co_await done->wait();
  if (gate->ok) co_return ApiResult<void>();
  // A failed wait is not kept: the next submit asks runtimed again.
  auto current = state_->readiness.find(row.id);
  if (current != state_->readiness.end() && current->second == gate)
    state_->readiness.erase(current);
  co_return gate->failure;
}

// SPEC §6.8: once runtimed answers after a container start, tasks are reconciled with its
// list before new ones are forwarded.
asio::awaitable<void> TaskService::reconcile(std::string sandbox_id,
                                             std::shared_ptr<Readiness> gate) {
  auto finish = [&gate](std::optional<ApiError> failure) {
    gate->ok = !failure;
    if (failure) gate->failure = std::move(*failure);
    gate->done->fire();
  };
  auto up = co_await wait_for_runtimed(sandbox_id);
  if (!up) {
    kLog.warn("runtimed did not come up", {{"id", sandbox_id}, {"error", up.error().message}});
    finish(up.error());
    co_return;
  }
  auto sb = sandbox(sandbox_id);
  if (!sb) {
    finish(ApiError::not_found("no such sandbox " + sandbox_id));
    co_return;
  }
  RuntimedTarget target = target_for(*sb);
  auto listed = co_await client_.call(target, "GET", "/tasks?limit=200", "", kRuntimedCallTimeout);
  std::map<std::string, std::string> known;  // runtimed's task id → status
  bool list_ok = false;
  if (listed && listed->status == 200) {
    if (auto body = parse_json_object(listed->body)) {
      if (const json::value* tasks = body->if_contains("tasks"); tasks && tasks->is_array()) {
        list_ok = true;
        for (const auto& t : tasks->get_array()) {
          if (!t.is_object()) continue;
          const json::value* id = t.get_object().if_contains("id");
          const json::value* st = t.get_object().if_contains("status");
          if (id && id->is_string() && st && st->is_string()) {
            known[std::string(id->get_string())] = std::string(st->get_string());
          }
        }
      }
    }
  }
  if (!list_ok) {
    std::string why = listed ? runtimed_error_text(*listed) : listed.error().detail;
    kLog.warn("cannot list runtimed's tasks", {{"id", sandbox_id}, {"error", why}});
    finish(sandbox_unavailable("runtimed did not list its tasks: " + why));
    co_return;
  }
  // SQLite's open tasks of this sandbox.
  std::vector<store::TaskRow> open;
  if (auto all = store::task_repo::list_open(store_)) {
    for (auto& t : *all) {
      if (t.sandbox_id == sandbox_id) open.push_back(std::move(t));
    }
  }
  for (const auto& t : open) {
    if (known.contains(t.id)) {
      ensure_relay(t);
    } else if (t.status == "queued") {
      // runtimed lost a queued task (its files were removed): submit it again. The env
      // values were never stored, so it runs without them; say so.
      TaskSubmit again;
      again.agent = t.agent;
      again.prompt = t.prompt;
      if (t.argv) {
        if (auto argv = parse_json(*t.argv); argv && argv->is_array()) {
          for (const auto& a : argv->get_array()) {
            if (a.is_string()) again.argv.emplace_back(a.get_string());
          }
        }
      }
      again.model = t.model;
      again.timeout_s = std::max<std::int64_t>(1, t.timeout_ms / 1000);
      kLog.warn("task submitted again after a restart, without its env",
                {{"id", sandbox_id}, {"task", t.id}});
      auto posted = co_await post_task(*sb, t.id, again);
      if (posted && (posted->status == 200 || posted->status == 202)) {
        ensure_relay(t);
      } else {
        co_await finalize(t.id, "failed", "sandbox_unavailable",
                          "runtimed lost the queued task and refused it again");
      }
    } else {
      co_await finalize(t.id, "failed", "interrupted",
                        "runtimed does not know the task after the sandbox restarted");
    }
  }
  for (const auto& [id, status] : known) {
    if (is_final_status(status)) continue;
    auto row = store::task_repo::get(store_, id);
    if (row && !row->final()) continue;
    // Final in SQLite (or never recorded): nothing may run unrecorded (SPEC §2.7.1, §6.8).
    std::string cancel_path = "/tasks/" + id + "/cancel";
    auto cancelled = co_await client_.call(target, "POST", cancel_path, "", kRuntimedCallTimeout);
    kLog.info("cancelled a task sandboxd holds as final",
              {{"id", sandbox_id}, {"task", id}, {"ok", cancelled.has_value()}});
  }
  finish(std::nullopt);
}

asio::awaitable<void> TaskService::recover() {
  auto open = store::task_repo::list_open(store_);
  if (!open) {
    kLog.warn("cannot read open tasks", {{"error", open.error().message()}});
    co_return;
  }
  std::set<std::string> running_sandboxes;
  for (const auto& t : *open) {
    auto sb = sandbox(t.sandbox_id);
    if (sb && sb->status == "running") {
      running_sandboxes.insert(t.sandbox_id);
    } else if (t.status == "running") {
      co_await finalize(t.id, "failed", "interrupted", "the sandbox stopped while the task ran");
    }
  }
  for (const auto& id : running_sandboxes) {
    auto sb = sandbox(id);
    if (!sb || sb->status != "running") continue;
    asio::co_spawn(executor_, recover_sandbox(std::move(*sb)), asio::detached);
  }
}

asio::awaitable<void> TaskService::recover_sandbox(store::SandboxRow row) {
  auto r = co_await ready(row);
  if (!r) {
    kLog.warn("task recovery waits for the next start",
              {{"id", row.id}, {"error", r.error().message}});
  }
}

// ---------------------------------------------------------------------------- relays

void TaskService::ensure_relay(const store::TaskRow& row) {
  if (row.final() || state_->relays.contains(row.id)) return;
  auto relay = std::make_shared<Relay>(executor_);
  relay->row = row;
  relay->committed_id = row.last_event_id;
  auto bytes = store::task_repo::event_bytes(store_, row.id);
  relay->stored_bytes = bytes ? *bytes : 0;
  state_->relays[row.id] = relay;
  asio::co_spawn(executor_, relay_writer(relay), asio::detached);
  asio::co_spawn(executor_, run_relay(relay), asio::detached);
}

bool TaskService::take_line(Relay& relay, std::string_view line) {
  store::TaskRow& row = relay.row;
  if (row.final() || relay.gone) return false;
  auto parsed = parse_json_object(line);
  std::int64_t id = 0;
  std::string type;
  std::optional<std::int64_t> ts;
  const json::object* data = nullptr;
  if (parsed) {
    const json::value* v = parsed->if_contains("id");
    if (v && v->is_int64()) id = v->get_int64();
    if (const json::value* t = parsed->if_contains("type"); t && t->is_string())
      type = t->get_string();
    if (const json::value* s = parsed->if_contains("ts"); s && s->is_string())
      ts = parse_time_ms(s->get_string());
    if (const json::value* d = parsed->if_contains("data"); d && d->is_object())
      data = &d->get_object();
  }
  if (id < 1 || !is_event_type(type) || !data) {
    if (!relay.bad_line_logged) {
      kLog.warn("runtimed sent a malformed event line; skipped", {{"task", row.id}});
      relay.bad_line_logged = true;
    }
    return true;
  }
  if (id <= row.last_event_id) return true;  // already processed (a replay)
  std::string data_text = json::serialize(*data);
  std::int64_t at = ts.value_or(clock_.unix_ms());
  row.last_event_id = id;
  const bool always = type == "exit" || type == "error" || type == "done";
  auto size = static_cast<std::int64_t>(data_text.size());
  if (always || relay.stored_bytes + size <= static_cast<std::int64_t>(config_.tasks.max_output)) {
    relay.stored_bytes += size;
    relay.pending.push_back(store::TaskEventRow{id, type, at, data_text});
  } else {
    ++row.events_dropped;
    relay.dirty = true;
  }
  if (type == "started") {
    if (row.status == "queued") row.status = "running";
    if (!row.started_at) row.started_at = at;
  } else if (type == "exit") {
    if (const json::value* c = data->if_contains("code"); c && c->is_int64())
      row.exit_code = c->get_int64();
  } else if (type == "done") {
    std::string status = "failed";
    if (const json::value* s = data->if_contains("status");
        s && s->is_string() && is_final_status(s->get_string())) {
      status = s->get_string();
    }
    row.status = status;
    if (const json::value* c = data->if_contains("exit_code"); c && c->is_int64())
      row.exit_code = c->get_int64();
    row.error_code.reset();
    row.error_message.reset();
    if (const json::value* e = data->if_contains("error"); e && e->is_object()) {
      const json::object& err = e->get_object();
      if (const json::value* c = err.if_contains("code"); c && c->is_string())
        row.error_code = std::string(c->get_string());
      if (const json::value* m = err.if_contains("message"); m && m->is_string())
        row.error_message = std::string(m->get_string());
    }
    row.result = data_text;
    row.finished_at = at;
  }
  relay.ring();
  return type != "done";
}

asio::awaitable<void> TaskService::relay_writer(std::shared_ptr<Relay> relay) {
  for (;;) {
    if (relay->pending.empty() && !relay->dirty) {
      if (relay->reader_done) break;
      relay->bell.expires_at(asio::steady_timer::time_point::max());
      co_await relay->bell.async_wait(nothrow);
      continue;
    }
    std::vector<store::TaskEventRow> batch = std::move(relay->pending);
    relay->pending.clear();
    relay->dirty = false;
    store::TaskRow snapshot = relay->row;
    Status st = co_await write_task(snapshot, batch);
    if (!st && (st.error().code == Errc::not_found || st.error().code == Errc::conflict)) {
      // The task row is gone (its sandbox was purged): the relay has nothing left to do.
      kLog.info("task relay ends: the task is gone", {{"task", snapshot.id}});
      relay->gone = true;
      relay->pending.clear();
      relay->dirty = false;
      break;
    }
    if (!st) {
      kLog.warn("cannot store task events; retrying",
                {{"task", snapshot.id}, {"error", st.error().message()}});
      batch.insert(batch.end(), std::make_move_iterator(relay->pending.begin()),
                   std::make_move_iterator(relay->pending.end()));
      relay->pending = std::move(batch);
      relay->dirty = true;
      co_await pause(kWriteRetry);
      continue;
    }
    relay->committed_id = snapshot.last_event_id;
    notify(snapshot.id);
    auto flushed = std::exchange(relay->flushed, std::make_shared<OneShot>(executor_));
    flushed->fire();
  }
  relay->flushed->fire();
  relay->writer_done->fire();
}

asio::awaitable<void> TaskService::run_relay(std::shared_ptr<Relay> relay) {
  const std::string task_id = relay->row.id;
  const std::string sandbox_id = relay->row.sandbox_id;
  auto backoff = kRelayBackoffFirst;
  while (!relay->row.final() && !relay->gone) {
    auto sb = sandbox(sandbox_id);
    const std::string status = sb ? sb->status : "purged";
    if (status == "stopped" || status == "error" || status == "destroyed" || status == "purged") {
      if (relay->row.status == "running") {
        // SPEC §4.6 step 3: the emergency band stops busy sandboxes too; their tasks say why.
        const bool pressure = sb && sb->stop_reason.value_or("") == "pressure";
        co_await finalize(task_id, "failed", pressure ? "memory_pressure" : "interrupted",
                          pressure ? "the sandbox was stopped to free memory"
                                   : "the sandbox stopped while the task ran");
      }
      break;  // a queued task waits for the next start (reconciled then)
    }
    if (status != "running") {  // creating, waking, stopping: wait for it to settle
      co_await pause(backoff);
      backoff = std::min(backoff * 2, kRelayBackoffMax);
      continue;
    }
    RuntimedTarget target = target_for(*sb);
    std::string path =
        "/tasks/" + task_id + "/events?since=" + std::to_string(relay->row.last_event_id);
    Relay* r = relay.get();
    RuntimedClient::LineFn on_line = [this, r](std::string_view line) {
      return take_line(*r, line);
    };
    auto streamed = co_await client_.stream_lines(target, path, on_line);
    if (relay->row.final() || relay->gone) break;
    if (streamed && streamed->status == 200) {
      backoff = kRelayBackoffFirst;  // ended without done (runtimed stopping): look again
      continue;
    }
    if (streamed && streamed->status == 404) {
      if (relay->row.status == "running") {
        co_await finalize(task_id, "failed", "interrupted", "runtimed does not know the task");
      }
      break;  // a queued one is submitted again by the reconciliation after the next start
    }
    std::string why = streamed ? runtimed_error_text(*streamed) : streamed.error().message();
    kLog.debug("task relay retrying",
               {{"task", task_id}, {"error", why}, {"in_ms", backoff.count()}});
    co_await pause(backoff);
    backoff = std::min(backoff * 2, kRelayBackoffMax);
  }
  relay->reader_done = true;
  relay->ring();
  std::shared_ptr<OneShot> writer_done = relay->writer_done;
  co_await writer_done->wait();
  auto it = state_->relays.find(task_id);
  if (it != state_->relays.end() && it->second == relay) state_->relays.erase(it);
  notify(task_id);
  if (relay->row.final()) {
    kLog.info("task finished", {{"id", sandbox_id},
                                {"task", task_id},
                                {"status", relay->row.status},
                                {"events", relay->row.last_event_id}});
  }
}

asio::awaitable<Status> TaskService::finalize(const std::string& task_id,
                                              std::string_view status_view,
                                              std::string_view code_view,
                                              std::string_view message_view) {
  const std::string status(status_view);
  const std::string code(code_view);
  const std::string message(message_view);
  std::shared_ptr<Relay> relay;
  store::TaskRow row;
  if (auto it = state_->relays.find(task_id); it != state_->relays.end()) {
    relay = it->second;
    row = relay->row;
  } else {
    auto loaded = store::task_repo::get(store_, task_id);
    if (!loaded) co_return loaded.error();
    row = std::move(*loaded);
  }
  if (row.final()) co_return ok();
  std::int64_t now = clock_.unix_ms();
  std::vector<store::TaskEventRow> events;
  json::object done;
  done["status"] = status;
  done["exit_code"] = row.exit_code ? json::value(*row.exit_code) : json::value(nullptr);
  if (!code.empty()) {
    json::object err;
    err["code"] = code;
    err["message"] = message;
    events.push_back({row.last_event_id + 1, "error", now, json::serialize(err)});
    done["error"] = std::move(err);
  }
  done["duration_ms"] = now - row.started_at.value_or(row.created_at);
  done["output_dropped_bytes"] = 0;
  std::string done_text = json::serialize(done);
  events.push_back(
      {row.last_event_id + static_cast<std::int64_t>(events.size()) + 1, "done", now, done_text});
  row.status = status;
  row.error_code = code.empty() ? std::nullopt : std::optional<std::string>(code);
  row.error_message = code.empty() ? std::nullopt : std::optional<std::string>(message);
  row.result = done_text;
  row.finished_at = now;
  row.last_event_id = events.back().id;
  kLog.info("task finalized by sandboxd",
            {{"task", task_id}, {"status", status}, {"reason", code}});
  if (relay) {
    // The relay's writer stores them, in order after what it holds already.
    const std::int64_t last = row.last_event_id;
    relay->row = row;
    for (auto& e : events) relay->pending.push_back(std::move(e));
    relay->ring();
    while (relay->committed_id < last && !relay->writer_done->fired()) {
      std::shared_ptr<OneShot> flushed = relay->flushed;
      co_await flushed->wait();
    }
    co_return ok();
  }
  Status st = co_await write_task(row, std::move(events));
  if (st) notify(task_id);
  co_return st;
}

// ---------------------------------------------------------------------------- API

asio::awaitable<Result<RuntimedReply>> TaskService::post_task(const store::SandboxRow& sandbox,
                                                              const std::string& task_id,
                                                              const TaskSubmit& request) {
  json::object body;
  body["id"] = task_id;
  body["agent"] = request.agent;
  if (request.agent == "command") {
    json::array argv;
    for (const auto& a : request.argv) argv.emplace_back(a);
    body["argv"] = std::move(argv);
  } else {
    body["prompt"] = request.prompt.value_or("");
    if (request.model) body["model"] = *request.model;
    if (!request.extra_args.empty()) {
      json::array extra;
      for (const auto& a : request.extra_args) extra.emplace_back(a);
      body["extra_args"] = std::move(extra);
    }
  }
  json::object env;
  for (const auto& [k, v] : request.env) env[k] = v;
  body["env"] = std::move(env);
  body["timeout_s"] = request.timeout_s;
  RuntimedTarget target = target_for(sandbox);
  std::string text = json::serialize(body);
  co_return co_await client_.call(target, "POST", "/tasks", text, kRuntimedCallTimeout);
}

asio::awaitable<ApiResult<store::TaskRow>> TaskService::submit(const std::string& sandbox_id,
                                                               TaskSubmit request, Actor actor) {
  auto sb = sandbox(sandbox_id);
  if (!sb || sb->status == "purged") co_return ApiError::not_found("no such sandbox " + sandbox_id);
  if (sb->status == "destroyed" || sb->status == "error") {
    co_return ApiError::conflict("sandbox " + sandbox_id + " is " + sb->status);
  }
  store::SandboxRow row = std::move(*sb);
  if (row.status != "running") {
    auto woke = co_await sandboxes_.start(sandbox_id, actor);
    if (!woke) co_return woke.error();
    row = std::move(*woke);
  }
  auto up = co_await ready(row);
  if (!up) co_return up.error();
  auto fresh = sandbox(sandbox_id);  // the secret generation of the running container
  if (!fresh || fresh->status != "running") {
    co_return sandbox_unavailable("sandbox " + sandbox_id + " stopped before the task was sent");
  }
  row = std::move(*fresh);

  std::string task_id = new_ulid().str();
  auto posted = co_await post_task(row, task_id, request);
  if (!posted) {
    report_bad_socket(row, posted.error());
    co_return runtimed_failure(posted.error());
  }
  if (posted->status == 429) {
    std::string active = "another task";
    RuntimedTarget target = target_for(row);
    auto status = co_await client_.call(target, "GET", "/status", "", kRuntimedStatusTimeout);
    if (status && status->status == 200) {
      if (auto body = parse_json_object(status->body)) {
        const json::value* tasks = body->if_contains("tasks");
        const json::value* running =
            tasks && tasks->is_object() ? tasks->get_object().if_contains("running") : nullptr;
        if (running && running->is_string()) active = "task " + std::string(running->get_string());
      }
    }
    co_return ApiError{
        409,
        "task_in_progress",
        "the task queue of sandbox " + sandbox_id + " is full; " + active + " is running",
        {}};
  }
  if (posted->status == 400) {
    co_return ApiError::invalid("runtimed refused the task: " + runtimed_error_text(*posted));
  }
  if (posted->status != 202 && posted->status != 200) {
    co_return sandbox_unavailable("runtimed refused the task: " + runtimed_error_text(*posted));
  }
  std::string status = "queued";
  if (auto answer = parse_json_object(posted->body)) {
    if (const json::value* s = answer->if_contains("status");
        s && s->is_string() && s->get_string() == "running") {
      status = "running";
    }
  } else {
    co_return sandbox_unavailable("runtimed's answer to the task is not JSON");
  }

  store::TaskRow task;
  task.id = task_id;
  task.sandbox_id = sandbox_id;
  task.agent = request.agent;
  if (request.agent == "command") {
    task.argv = json_array_text(request.argv);
  } else {
    task.prompt = request.prompt.value_or("");
    task.model = request.model;
  }
  std::vector<std::string> keys;
  for (const auto& [k, v] : request.env) keys.push_back(k);
  task.env_keys = json_array_text(keys);
  task.status = status;
  task.timeout_ms = request.timeout_s * 1000;
  task.actor = actor.name;
  task.created_at = clock_.unix_ms();
  store::AuditRow audit;
  audit.actor = actor.name;
  if (!actor.ip.empty()) audit.actor_ip = actor.ip;
  if (!actor.request_id.empty()) audit.request_id = actor.request_id;
  audit.action = "task.submit";
  audit.sandbox_id = sandbox_id;
  json::object detail;
  detail["task_id"] = task_id;
  detail["agent"] = request.agent;
  audit.detail = json::serialize(detail);
  store::ActivityMark mark{sandbox_id, task.created_at};
  store::WriteJob insert = [task, audit, mark](store::Tx& tx) -> Status {
    if (auto st = store::task_repo::insert(tx, task); !st) return st;
    if (auto a = store::audit_repo::append(tx, audit); !a) return a.error();
    return store::sandbox_repo::touch_activity(tx, std::span(&mark, 1));
  };
  Status stored = co_await store_write(store_, std::move(insert));
  if (!stored) {
    // Nothing may run unrecorded (SPEC §2.7.1).
    RuntimedTarget target = target_for(row);
    std::string cancel_path = "/tasks/" + task_id + "/cancel";
    co_await client_.call(target, "POST", cancel_path, "", kRuntimedCallTimeout);
    kLog.error("task not stored; cancelled in runtimed",
               {{"task", task_id}, {"error", stored.error().message()}});
    co_return ApiError::internal("the task could not be recorded: " + stored.error().detail);
  }
  announce("", task);
  kLog.info("task submitted", {{"id", sandbox_id}, {"task", task_id}, {"agent", request.agent}});
  ensure_relay(task);
  co_return task;
}

ApiResult<store::TaskRow> TaskService::get(const std::string& sandbox_id,
                                           const std::string& task_id) const {
  auto row = store::task_repo::get(store_, task_id);
  if (!row) {
    if (row.error().code == Errc::not_found) return ApiError::not_found("no such task " + task_id);
    return ApiError::from(row.error());
  }
  if (row->sandbox_id != sandbox_id) return ApiError::not_found("no such task " + task_id);
  return std::move(*row);
}

ApiResult<std::vector<store::TaskRow>> TaskService::list(const std::string& sandbox_id,
                                                         const store::TaskFilter& filter) const {
  auto rows = store::task_repo::list(store_, sandbox_id, filter);
  if (!rows) return ApiError::from(rows.error());
  return std::move(*rows);
}

std::vector<store::TaskRow> TaskService::open_tasks(const std::string& sandbox_id) const {
  std::vector<store::TaskRow> out;
  auto open = store::task_repo::list_open(store_);
  if (!open) return out;
  for (auto& t : *open) {
    if (t.sandbox_id == sandbox_id) out.push_back(std::move(t));
  }
  return out;
}

std::vector<std::string> TaskService::files_changed(const std::string& task_id) const {
  std::vector<std::string> out;
  auto events = store::task_repo::events_of_type(store_, task_id, "file");
  if (!events) return out;
  for (const auto& e : *events) {
    auto data = parse_json_object(e.data);
    if (!data) continue;
    const json::value* p = data->if_contains("path");
    if (!p || !p->is_string()) continue;
    std::string path(p->get_string());
    if (std::find(out.begin(), out.end(), path) == out.end()) out.push_back(std::move(path));
  }
  return out;
}

asio::awaitable<ApiResult<CancelOutcome>> TaskService::cancel(const std::string& sandbox_id,
                                                              const std::string& task_id,
                                                              Actor actor) {
  auto task = get(sandbox_id, task_id);
  if (!task) co_return task.error();
  if (task->final()) co_return CancelOutcome{200, task->status};
  store::AuditRow audit;
  audit.actor = actor.name;
  if (!actor.ip.empty()) audit.actor_ip = actor.ip;
  if (!actor.request_id.empty()) audit.request_id = actor.request_id;
  audit.action = "task.cancel";
  audit.sandbox_id = sandbox_id;
  json::object detail;
  detail["task_id"] = task_id;
  audit.detail = json::serialize(detail);
  store::WriteJob record = [audit](store::Tx& tx) -> Status {
    if (auto a = store::audit_repo::append(tx, audit); !a) return a.error();
    return ok();
  };
  co_await store_write(store_, std::move(record));

  auto sb = sandbox(sandbox_id);
  std::optional<Result<RuntimedReply>> answer;
  if (sb && sb->status == "running") {
    if (auto it = state_->relays.find(task_id); it != state_->relays.end()) {
      it->second->row.cancel_requested_at = clock_.unix_ms();
      it->second->dirty = true;
      it->second->ring();
    }
    RuntimedTarget target = target_for(*sb);
    std::string path = "/tasks/" + task_id + "/cancel";
    answer.emplace(co_await client_.call(target, "POST", path, "", kRuntimedCallTimeout));
  }
  if (answer && *answer && (**answer).status == 202) co_return CancelOutcome{202, "cancelling"};
  if (answer && *answer && (**answer).status == 200) {
    std::string status = "cancelling";
    if (auto body = parse_json_object((**answer).body)) {
      if (const json::value* s = body->if_contains("status"); s && s->is_string())
        status = s->get_string();
    }
    if (is_final_status(status)) {
      ensure_relay(*task);  // brings runtimed's final state into the store
      co_return CancelOutcome{200, status};
    }
    co_return CancelOutcome{202, "cancelling"};
  }
  if (answer && *answer && (**answer).status == 404) {
    // runtimed never had it (or lost it): it cannot run any more.
    co_await finalize(task_id, "cancelled", "", "");
    co_return CancelOutcome{200, "cancelled"};
  }
  // SPEC §2.7.5: runtimed cannot be reached — the task is recorded failed/sandbox_unavailable.
  std::string why = !sb || sb->status != "running"
                        ? "the sandbox is not running"
                        : (*answer ? runtimed_error_text(**answer) : (*answer).error().detail);
  std::string message = "cancelled while runtimed could not be reached: " + why;
  Status st = co_await finalize(task_id, "failed", "sandbox_unavailable", message);
  if (!st) co_return ApiError::from(st.error());
  co_return CancelOutcome{200, "failed"};
}

// ---------------------------------------------------------------------------- streams

asio::awaitable<void> TaskService::stream_events(std::string task_id, std::int64_t after,
                                                 BodySink& sink, std::shared_ptr<OneShot> gone) {
  auto ex = co_await asio::this_coro::executor;
  SseWait wait(ex, gone);
  if (!co_await sink.write(kSseHello)) co_return;
  std::int64_t cursor = after;
  // A watcher that only this stream used goes when it ends.
  struct Unwatch {
    State& state;
    const std::string& id;
    ~Unwatch() {
      auto it = state.watchers.find(id);
      if (it != state.watchers.end() && it->second.use_count() == 1) state.watchers.erase(it);
    }
  };
  std::shared_ptr<State> state = state_;
  Unwatch unwatch{*state, task_id};
  for (;;) {
    std::shared_ptr<OneShot> changed = watch(task_id);
    auto events = store::task_repo::events_after(store_, task_id, cursor, kEventPage);
    if (!events) {
      kLog.warn("cannot read task events",
                {{"task", task_id}, {"error", events.error().message()}});
      co_return;
    }
    for (const auto& e : *events) {
      std::string id = std::to_string(e.id);
      std::string frame = "id: " + id + "\nevent: " + e.type + "\ndata: {\"id\":" + id +
                          ",\"type\":\"" + e.type + "\",\"ts\":\"" + format_time_ms(e.ts) +
                          "\",\"data\":" + e.data + "}\n\n";
      if (!co_await sink.write(frame)) co_return;
      cursor = e.id;
      if (e.type == "done") co_return;
    }
    if (static_cast<int>(events->size()) == kEventPage) continue;
    auto row = store::task_repo::get(store_, task_id);
    if (!row) co_return;
    if (row->final() && !state_->relays.contains(task_id)) {
      // Final with everything written: a `done` beyond the cursor was sent above; without
      // one (events removed by retention) the stream ends here.
      auto rest = store::task_repo::events_after(store_, task_id, cursor, 1);
      if (rest && rest->empty()) co_return;
      continue;
    }
    if (!row->final() && !state_->relays.contains(task_id)) {
      // No relay (its sandbox stopped, or sandboxd restarted): one comes back when the
      // sandbox runs; stopped sandboxes are not woken.
      auto sb = sandbox(row->sandbox_id);
      if (sb && sb->status == "running") ensure_relay(*row);
    }
    if (!co_await wait.next(*changed, sink)) co_return;
  }
}

asio::awaitable<Result<std::string>> TaskService::devserver_log(const std::string& sandbox_id,
                                                                int tail) {
  auto sb = sandbox(sandbox_id);
  if (!sb || sb->status != "running")
    co_return Error{Errc::not_found, "the sandbox is not running"};
  RuntimedTarget target = target_for(*sb);
  std::string path = "/devserver/log?tail=" + std::to_string(tail);
  auto answer = co_await client_.call(target, "GET", path, "", kRuntimedCallTimeout, kLogCap);
  if (!answer) co_return answer.error();
  if (answer->status != 200) co_return Error{Errc::unavailable, runtimed_error_text(*answer)};
  co_return std::move(answer->body);
}

asio::awaitable<RuntimeHealth> TaskService::health(const store::SandboxRow& row,
                                                   std::chrono::milliseconds limit) {
  auto now = clock_.mono();
  if (auto it = state_->health.find(row.id);
      it != state_->health.end() && now - it->second.at < kHealthCache) {
    co_return it->second.health;
  }
  RuntimeHealth h;
  RuntimedTarget target = target_for(row);
  auto answer = co_await client_.call(target, "GET", "/status", "", limit);
  if (answer && answer->status == 200) {
    h.runtime = "up";
    if (auto body = parse_json_object(answer->body)) {
      const json::value* dev = body->if_contains("devserver");
      const json::value* st =
          dev && dev->is_object() ? dev->get_object().if_contains("state") : nullptr;
      if (st && st->is_string()) h.devserver_state = std::string(st->get_string());
    }
  } else if (answer && answer->status == 401) {
    h.runtime = "unauthorized";
  } else if (!answer && answer.error().code == Errc::conflict) {
    h.runtime = "bad_socket";
    report_bad_socket(row, answer.error());
  } else {
    bool young = row.started_at &&
                 clock_.unix_ms() - *row.started_at <
                     std::chrono::duration_cast<std::chrono::milliseconds>(kStartingFor).count();
    h.runtime = young ? "starting" : "unreachable";
  }
  state_->health[row.id] = State::CachedHealth{clock_.mono(), h};
  co_return h;
}

}  // namespace sandboxd::control
