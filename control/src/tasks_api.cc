#include "tasks_api.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/ulid.h"
#include "blocking_pool.h"
#include "files.h"
#include "requests.h"
#include "router.h"
#include "text_util.h"

namespace sandboxd::control {

namespace json = boost::json;
using namespace boost::asio::experimental::awaitable_operators;

// The query of GET …/logs (SPEC §2.6.9), one parser for both sources.
struct LogQuery {
  bool container = true;  // source=container, else dev_server
  int tail = 200;
  std::optional<std::int64_t> since_ms;
  bool follow = false;
  bool ndjson = false;
};

namespace {

constexpr log::Logger kLog{"tasks"};
constexpr std::size_t kMaxPrompt = 256 * 1024;
constexpr std::size_t kMaxArgvItems = 256;
constexpr std::size_t kMaxArgvBytes = 64 * 1024;
constexpr std::size_t kMaxModel = 1024;
constexpr int kMaxTail = 10000;
constexpr std::uint64_t kMaxLogRead = 16 * 1024 * 1024;  // the log rotates at 8 MiB (§6.7)
constexpr std::chrono::milliseconds kFollowPoll{500};

Actor actor_of(const Request& r) { return Actor{r.actor, r.peer_ip, r.request_id}; }

// A decimal integer in [lo, hi].
std::optional<std::int64_t> parse_int(std::string_view t, std::int64_t lo, std::int64_t hi) {
  if (t.empty() || t.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || end != t.data() + t.size() || v < lo || v > hi) return std::nullopt;
  return v;
}

ApiResult<std::string> parse_task_id(std::string_view text) {
  auto id = Ulid::parse(text);
  if (!id) return ApiError::invalid_id("task id: " + id.error().detail);
  return id->str();
}

std::string rfc3339(std::int64_t unix_ms) {
  return format_rfc3339(Clock::WallTime(std::chrono::milliseconds(unix_ms)));
}

std::string_view agent_name(config::Agent a) {
  switch (a) {
    case config::Agent::opencode:
      return "opencode";
    case config::Agent::claude_code:
      return "claude-code";
    case config::Agent::command:
      return "command";
  }
  return "opencode";
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// The last `tail` lines of `text` (a trailing line end does not make an empty line).
std::string last_lines(std::string_view text, int tail) {
  if (tail <= 0 || text.empty()) return {};
  std::size_t end = text.size();
  if (text.back() == '\n') --end;
  std::size_t start = end;
  int seen = 0;
  while (start > 0) {
    if (text[start - 1] == '\n' && ++seen == tail) break;
    --start;
  }
  std::string out(text.substr(start));
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out;
}

// `{"stream":"stdout","line":…}` per line (the dev-server log keeps no times per line).
std::string ndjson_lines(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    json::object o;
    o["stream"] = "stdout";
    o["line"] = std::string(line);
    out += json::serialize(o);
    out += '\n';
  }
  return out;
}

ApiResult<LogQuery> parse_log_query(const Request& r) {
  auto source = query_string(r, "source");
  auto tail_text = query_string(r, "tail");
  auto since = query_string(r, "since");
  auto follow_text = query_string(r, "follow");
  auto format = query_string(r, "format");
  for (auto* q : {&source, &tail_text, &since, &follow_text, &format}) {
    if (!*q) return q->error();
  }
  LogQuery out;
  std::string src = source->value_or("container");
  if (src != "container" && src != "dev_server") {
    return ApiError::invalid("source: must be container or dev_server");
  }
  out.container = src == "container";
  if (*tail_text) {
    auto n = parse_int(**tail_text, 0, kMaxTail);
    if (!n) return ApiError::invalid("tail: must be an integer from 0 to 10000");
    out.tail = static_cast<int>(*n);
  }
  if (*since) {
    if (auto ms = parse_time_ms(**since)) {
      out.since_ms = *ms;
    } else if (auto secs = parse_int(**since, 0, std::int64_t{1} << 40)) {
      out.since_ms = *secs * 1000;
    } else {
      return ApiError::invalid("since: must be RFC 3339 or unix seconds");
    }
  }
  if (*follow_text) {
    auto b = parse_query_bool(**follow_text);
    if (!b) return ApiError::invalid("follow: expected true, false, 1 or 0");
    out.follow = *b;
  }
  std::string fmt = format->value_or("text");
  if (fmt != "text" && fmt != "ndjson") return ApiError::invalid("format: must be text or ndjson");
  out.ndjson = fmt == "ndjson";
  return out;
}

// Cuts Docker's timestamped log output ("<RFC 3339> <text>" per line) into lines per stream
// and formats them as the answer's text (the text as produced) or ndjson lines. A line the
// json-file driver split (over 16 KiB) keeps the inner timestamps of its later pieces.
class ContainerLines {
 public:
  explicit ContainerLines(bool ndjson) : ndjson_(ndjson) {}

  void add(docker::ExecStream stream, std::string_view bytes) {
    std::string& held = partial_[stream == docker::ExecStream::err ? 1 : 0];
    held += bytes;
    std::size_t start = 0;
    for (std::size_t nl = held.find('\n'); nl != std::string::npos; nl = held.find('\n', start)) {
      emit(stream, std::string_view(held).substr(start, nl - start));
      start = nl + 1;
    }
    held.erase(0, start);
  }
  // Emits unterminated lines (the answer ended).
  void finish() {
    if (!partial_[0].empty()) emit(docker::ExecStream::out, partial_[0]);
    if (!partial_[1].empty()) emit(docker::ExecStream::err, partial_[1]);
    partial_[0].clear();
    partial_[1].clear();
  }
  std::string take() { return std::exchange(out_, std::string()); }

 private:
  void emit(docker::ExecStream stream, std::string_view line) {
    std::string_view ts;
    if (auto sp = line.find(' '); sp != std::string_view::npos) {
      ts = line.substr(0, sp);
      line.remove_prefix(sp + 1);
    }
    if (!ndjson_) {
      out_.append(line);
      out_ += '\n';
      return;
    }
    json::object o;
    auto ms = parse_time_ms(ts);
    o["ts"] = ms ? rfc3339(*ms) : std::string(ts);
    o["stream"] = stream == docker::ExecStream::err ? "stderr" : "stdout";
    o["line"] = sanitize_utf8(line);
    out_ += json::serialize(o);
    out_ += '\n';
  }

  bool ndjson_;
  std::array<std::string, 2> partial_;  // stdout, stderr
  std::string out_;
};

struct LogRead {
  std::string bytes;
  std::uint64_t end = 0;  // file offset after `bytes`
  bool ok = true;
};

// Reads `.sandboxd/devserver.log` of the workspace from `from` (nullopt: the last
// kMaxLogRead bytes) without following any symlink (SPEC §7). A missing file reads empty.
LogRead read_devserver_log(const std::string& workspaces_dir, const std::string& id,
                           std::optional<std::uint64_t> from) {
  LogRead out;
  auto ws = files::Workspace::open(workspaces_dir, id);
  if (!ws) return out;
  files::FsIdentity as_owner(ws->owner_uid(), ws->owner_gid());
  files::FilePath path;
  path.parts = {".sandboxd", "devserver.log"};
  files::Fd fd(ws->open(path, O_RDONLY | O_NONBLOCK));
  if (!fd.valid()) return out;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return out;
  auto size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t start = 0;
  if (from) {
    start = *from <= size ? *from : 0;  // shorter than before: rotated, read the new file
  } else if (size > kMaxLogRead) {
    start = size - kMaxLogRead;
  }
  std::uint64_t want = std::min<std::uint64_t>(size - start, kMaxLogRead);
  out.bytes.resize(want);
  std::size_t got = 0;
  while (got < want) {
    ssize_t n =
        ::pread(fd.get(), out.bytes.data() + got, want - got, static_cast<off_t>(start + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.bytes.resize(got);
  out.end = start + got;
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------- parsing

ApiResult<TaskSubmit> parse_task_submit(const json::object& body, const config::Config& config) {
  static const std::vector<std::string_view> kKnown = {"agent", "prompt", "command",
                                                       "model", "env",    "timeout_s"};
  for (const auto& kv : body) {
    if (std::find(kKnown.begin(), kKnown.end(), kv.key()) == kKnown.end()) {
      return ApiError::invalid(std::string(kv.key()) + ": unknown field");
    }
  }
  TaskSubmit t;
  t.agent = agent_name(config.tasks.default_agent);
  if (const json::value* a = body.if_contains("agent")) {
    if (!a->is_string()) return ApiError::invalid("agent: must be a string");
    std::string_view name = a->get_string();
    if (name != "opencode" && name != "claude-code" && name != "command") {
      return ApiError::invalid("agent: must be \"opencode\", \"claude-code\" or \"command\"");
    }
    t.agent = std::string(name);
  }
  const bool command = t.agent == "command";
  if (const json::value* p = body.if_contains("prompt")) {
    if (command) return ApiError::invalid("prompt: not allowed for agent command (give command)");
    if (!p->is_string()) return ApiError::invalid("prompt: must be a string");
    std::string_view text = p->get_string();
    if (text.empty() || text.size() > kMaxPrompt)
      return ApiError::invalid("prompt: must be 1 byte to 256 KiB");
    if (has_nul(text)) return ApiError::invalid("prompt: contains a NUL byte");
    t.prompt = std::string(text);
  } else if (!command) {
    return ApiError::invalid("prompt: is required for agent " + t.agent);
  }
  if (const json::value* c = body.if_contains("command")) {
    if (!command) return ApiError::invalid("command: only for agent command");
    if (!c->is_array()) return ApiError::invalid("command: must be an array of strings");
    const json::array& items = c->get_array();
    if (items.empty() || items.size() > kMaxArgvItems)
      return ApiError::invalid("command: must have 1 to 256 items");
    std::size_t total = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      std::string where = "command[" + std::to_string(i) + "]";
      if (!items[i].is_string()) return ApiError::invalid(where + ": must be a string");
      std::string_view s = items[i].get_string();
      if (has_nul(s)) return ApiError::invalid(where + ": contains a NUL byte");
      total += s.size();
      t.argv.emplace_back(s);
    }
    if (total > kMaxArgvBytes) return ApiError::invalid("command: over 64 KiB in total");
  } else if (command) {
    return ApiError::invalid("command: is required for agent command");
  }
  if (const json::value* m = body.if_contains("model")) {
    if (command) return ApiError::invalid("model: not allowed for agent command");
    if (!m->is_string()) return ApiError::invalid("model: must be a string");
    std::string_view model = m->get_string();
    if (model.empty() || model.size() > kMaxModel || has_nul(model)) {
      return ApiError::invalid("model: must be 1 to 1024 bytes without NUL");
    }
    t.model = std::string(model);
  }
  if (!command) {
    const config::AgentConfig& agent =
        t.agent == "opencode" ? config.tasks.agents.opencode : config.tasks.agents.claude_code;
    if (!t.model && !agent.model.empty()) t.model = agent.model;
    t.extra_args = agent.extra_args;
  }
  if (const json::value* e = body.if_contains("env")) {
    if (!e->is_object()) return ApiError::invalid("env: must be an object");
    for (const auto& kv : e->get_object()) {
      if (!kv.value().is_string()) {
        return ApiError::invalid("env." + std::string(kv.key()) + ": must be a string");
      }
      t.env.emplace(std::string(kv.key()), std::string(kv.value().get_string()));
    }
    if (auto problem = env_problem(t.env)) return ApiError::invalid("env: " + *problem);
  }
  t.timeout_s = std::chrono::duration_cast<std::chrono::seconds>(config.tasks.timeout).count();
  if (const json::value* s = body.if_contains("timeout_s")) {
    if (!s->is_int64() || s->get_int64() < 1 || s->get_int64() > 86400) {
      return ApiError::invalid("timeout_s: must be an integer from 1 to 86400");
    }
    t.timeout_s = s->get_int64();
  }
  return t;
}

// ---------------------------------------------------------------------------- objects

json::object task_object(const store::TaskRow& t, bool list_item,
                         const std::vector<std::string>& files_changed) {
  json::object o;
  o["id"] = t.id;
  o["sandbox_id"] = t.sandbox_id;
  o["agent"] = t.agent;
  o["status"] = t.status;
  if (t.status == "running") o["phase"] = t.started_at ? "agent_running" : "starting";
  if (t.status == "failed") o["failure_reason"] = t.error_code.value_or("internal");
  if (t.status == "cancelled") o["failure_reason"] = "cancelled";
  o["created_at"] = rfc3339(t.created_at);
  if (t.started_at) o["started_at"] = rfc3339(*t.started_at);
  if (t.finished_at) o["finished_at"] = rfc3339(*t.finished_at);
  if (list_item) return o;
  if (t.error_message) o["error_message"] = *t.error_message;
  std::optional<json::object> done;
  if (t.result) {
    if (auto parsed = parse_json_object(*t.result)) done = std::move(*parsed);
  }
  if (done) {
    if (const json::value* m = done->if_contains("final_message"); m && m->is_string()) {
      o["agent_message_final"] = m->get_string();
    }
  }
  json::array files;
  for (const auto& f : files_changed) files.emplace_back(f);
  o["files_changed"] = std::move(files);
  if (done) {
    const json::value* dev = done->if_contains("devserver");
    const json::value* state =
        dev && dev->is_object() ? dev->get_object().if_contains("state") : nullptr;
    if (state && state->is_string()) o["preview_status_after"] = state->get_string();
  }
  if (t.agent == "command" && t.exit_code) o["exit_code"] = *t.exit_code;
  if (done) {
    if (const json::value* d = done->if_contains("duration_ms"); d && d->is_int64()) {
      o["duration_ms"] = d->get_int64();
    }
    if (const json::value* u = done->if_contains("usage"); u && u->is_object()) {
      const json::object& usage = u->get_object();
      auto count = [&usage](std::string_view key) -> std::int64_t {
        const json::value* v = usage.if_contains(key);
        return v && v->is_int64() ? v->get_int64() : 0;
      };
      json::object tokens;
      tokens["input"] = count("input_tokens");
      tokens["output"] = count("output_tokens");
      tokens["reasoning"] = count("reasoning_tokens");
      tokens["cache_read"] = count("cache_read_tokens");
      tokens["cache_write"] = count("cache_write_tokens");
      tokens["total"] = count("input_tokens") + count("output_tokens") + count("reasoning_tokens") +
                        count("cache_read_tokens") + count("cache_write_tokens");
      const json::value* cost = usage.if_contains("cost_usd");
      if (cost && cost->is_number()) tokens["cost"] = cost->to_number<double>();
      o["tokens"] = std::move(tokens);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------- routes

TasksApi::TasksApi(TaskService& tasks, SandboxService& sandboxes, const config::Config& config)
    : tasks_(tasks),
      sandboxes_(sandboxes),
      config_(config),
      workspaces_dir_(config.data_dir + "/workspaces"),
      pool_(std::make_unique<BlockingPool>(1)) {}

TasksApi::~TasksApi() = default;

boost::asio::awaitable<Response> TasksApi::submit(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto body = parse_json_object(r.body);
  if (!body) co_return error_answer(r, ApiError::invalid(body.error().detail));
  auto request = parse_task_submit(*body, config_);
  if (!request) co_return error_answer(r, request.error());
  Actor actor = actor_of(r);
  TaskSubmit submit = std::move(*request);
  auto task = co_await tasks_.submit(*id, std::move(submit), actor);
  if (!task) co_return error_answer(r, task.error());
  std::string location = "/v1/sandboxes/" + *id + "/tasks/" + task->id;
  json::object o;
  o["id"] = task->id;
  o["sandbox_id"] = task->sandbox_id;
  o["status"] = task->status;
  o["agent"] = task->agent;
  o["events_url"] = location + "/events";
  o["created_at"] = rfc3339(task->created_at);
  Response res = json_answer(202, o);
  res.headers.emplace_back("Location", location);
  co_return res;
}

boost::asio::awaitable<Response> TasksApi::list(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto status = query_string(r, "status");
  auto limit_text = query_string(r, "limit");
  auto cursor = query_string(r, "cursor");
  for (auto* q : {&status, &limit_text, &cursor}) {
    if (!*q) co_return error_answer(r, q->error());
  }
  auto row = sandboxes_.get(*id);
  if (!row || row->status == "purged")
    co_return error_answer(r, ApiError::not_found("no such sandbox " + *id));
  store::TaskFilter filter;
  if (*status) {
    const std::string& s = **status;
    if (s != "queued" && s != "running" && s != "succeeded" && s != "failed" && s != "cancelled") {
      co_return error_answer(
          r, ApiError::invalid("status: must be queued, running, succeeded, failed or cancelled"));
    }
    filter.status = s;
  }
  if (*limit_text) {
    auto n = parse_int(**limit_text, 1, 1000);
    if (!n)
      co_return error_answer(r, ApiError::invalid("limit: must be an integer from 1 to 1000"));
    filter.limit = static_cast<int>(*n);
  }
  if (*cursor) {
    auto after = parse_task_id(**cursor);
    if (!after) co_return error_answer(r, ApiError::invalid("cursor: unknown cursor"));
    auto known = tasks_.get(*id, *after);
    if (!known) co_return error_answer(r, ApiError::invalid("cursor: unknown cursor"));
    filter.after_id = *after;
  }
  const int limit = filter.limit;
  filter.limit = limit + 1;  // one more tells whether there is a next page
  auto rows = tasks_.list(*id, filter);
  if (!rows) co_return error_answer(r, rows.error());
  json::array items;
  for (std::size_t i = 0; i < rows->size() && static_cast<int>(i) < limit; ++i) {
    items.push_back(task_object((*rows)[i], true));
  }
  json::object o;
  o["tasks"] = std::move(items);
  if (static_cast<int>(rows->size()) > limit)
    o["next_cursor"] = (*rows)[static_cast<std::size_t>(limit) - 1].id;
  co_return json_answer(200, o);
}

boost::asio::awaitable<Response> TasksApi::get(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto task_id = parse_task_id(r.params[1]);
  if (!task_id) co_return error_answer(r, task_id.error());
  auto row = sandboxes_.get(*id);
  if (!row || row->status == "purged")
    co_return error_answer(r, ApiError::not_found("no such sandbox " + *id));
  auto task = tasks_.get(*id, *task_id);
  if (!task) co_return error_answer(r, task.error());
  std::vector<std::string> files = tasks_.files_changed(task->id);
  co_return json_answer(200, task_object(*task, false, files));
}

boost::asio::awaitable<Response> TasksApi::events(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto task_id = parse_task_id(r.params[1]);
  if (!task_id) co_return error_answer(r, task_id.error());
  auto since = query_string(r, "since");
  if (!since) co_return error_answer(r, since.error());
  constexpr std::int64_t kMaxId = std::int64_t{1} << 53;
  std::int64_t after = 0;
  if (*since) {
    auto n = parse_int(**since, 1, kMaxId);
    if (!n)
      co_return error_answer(r, ApiError::invalid("since: must be an event id (an integer >= 1)"));
    after = *n - 1;
  } else if (auto last = r.header("last-event-id")) {
    auto n = parse_int(*last, 0, kMaxId);
    if (!n)
      co_return error_answer(r, ApiError::invalid("Last-Event-ID: must be a non-negative integer"));
    after = *n;
  }
  auto row = sandboxes_.get(*id);
  if (!row || row->status == "purged")
    co_return error_answer(r, ApiError::not_found("no such sandbox " + *id));
  auto task = tasks_.get(*id, *task_id);
  if (!task) co_return error_answer(r, task.error());
  Response res;
  res.content_type = "text/event-stream";
  res.headers.emplace_back("Cache-Control", "no-cache");
  res.headers.emplace_back("X-Accel-Buffering", "no");
  TaskService* tasks = &tasks_;
  std::string tid = *task_id;
  std::shared_ptr<OneShot> gone = r.client_gone;
  res.stream = [tasks, tid, after, gone](BodySink& sink) -> boost::asio::awaitable<void> {
    co_await tasks->stream_events(tid, after, sink, gone);
  };
  co_return res;
}

boost::asio::awaitable<Response> TasksApi::cancel(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto task_id = parse_task_id(r.params[1]);
  if (!task_id) co_return error_answer(r, task_id.error());
  auto row = sandboxes_.get(*id);
  if (!row || row->status == "purged")
    co_return error_answer(r, ApiError::not_found("no such sandbox " + *id));
  Actor actor = actor_of(r);
  auto outcome = co_await tasks_.cancel(*id, *task_id, actor);
  if (!outcome) co_return error_answer(r, outcome.error());
  json::object o;
  o["id"] = *task_id;
  o["status"] = outcome->state;
  co_return json_answer(outcome->status, o);
}

// SPEC §2.6.9. The container's output comes from Docker's log API; the dev-server log from
// runtimed while the sandbox runs, else from the workspace copy.
boost::asio::awaitable<Response> TasksApi::logs(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto query = parse_log_query(r);
  if (!query) co_return error_answer(r, query.error());
  const int tail = query->tail;
  const bool follow = query->follow;
  const bool ndjson = query->ndjson;
  auto row = sandboxes_.get(*id);
  if (!row || row->status == "purged")
    co_return error_answer(r, ApiError::not_found("no such sandbox " + *id));
  Response res;
  res.content_type = ndjson ? "application/x-ndjson" : "text/plain; charset=utf-8";
  if (row->status == "destroyed") co_return res;  // no container: an empty body
  if (query->container) co_return co_await container_logs(r, *row, *query);
  // `since` selects nothing here: the dev-server log has no time per line.
  std::string text;
  bool from_runtimed = false;
  if (row->status == "running") {
    auto answer = co_await tasks_.devserver_log(*id, tail);
    if (answer) {
      text = std::move(*answer);
      from_runtimed = true;
    } else {
      kLog.debug("dev-server log from the workspace",
                 {{"id", *id}, {"why", answer.error().message()}});
    }
  }
  std::uint64_t offset = 0;
  if (!from_runtimed || follow) {
    std::string dir = workspaces_dir_;
    std::string sid = *id;
    auto job = [dir, sid] { return read_devserver_log(dir, sid, std::nullopt); };
    LogRead read = co_await pool_->run(job);
    offset = read.end;
    if (!from_runtimed) text = last_lines(read.bytes, tail);
  }
  if (!follow) {
    res.body = ndjson ? ndjson_lines(text) : std::move(text);
    co_return res;
  }
  // follow=true: the tail, then what the log gains, until the client leaves or the sandbox
  // stops running.
  std::string first = ndjson ? ndjson_lines(text) : std::move(text);
  SandboxService* sandboxes = &sandboxes_;
  BlockingPool* pool = pool_.get();
  std::string dir = workspaces_dir_;
  std::string sid = *id;
  std::shared_ptr<OneShot> gone = r.client_gone;
  res.stream = [first, sandboxes, pool, dir, sid, offset, ndjson,
                gone](BodySink& sink) -> boost::asio::awaitable<void> {
    auto ex = co_await boost::asio::this_coro::executor;
    if (!first.empty() && !co_await sink.write(first)) co_return;
    std::uint64_t at = offset;
    std::string partial;
    boost::asio::steady_timer timer(ex);
    for (;;) {
      if (gone && gone->fired()) co_return;
      auto current = sandboxes->get(sid);
      if (!current || current->status != "running") co_return;
      timer.expires_after(kFollowPoll);
      co_await timer.async_wait(nothrow);
      std::optional<std::uint64_t> from = at;
      auto job = [dir, sid, from] { return read_devserver_log(dir, sid, from); };
      LogRead more = co_await pool->run(job);
      at = more.end;
      partial += more.bytes;
      std::size_t cut = partial.rfind('\n');
      if (cut == std::string::npos) continue;
      std::string lines = partial.substr(0, cut + 1);
      partial.erase(0, cut + 1);
      std::string out = ndjson ? ndjson_lines(lines) : lines;
      if (!co_await sink.write(out)) co_return;
    }
  };
  co_return res;
}

// source=container: Docker's log API with timestamps, cut into lines here.
boost::asio::awaitable<Response> TasksApi::container_logs(Request& r, const store::SandboxRow& row,
                                                          const LogQuery& query) {
  Response res;
  res.content_type = query.ndjson ? "application/x-ndjson" : "text/plain; charset=utf-8";
  docker::LogsOptions options;
  options.tail = query.tail;
  options.since_ms = query.since_ms;
  options.follow = query.follow;
  options.timestamps = true;
  if (!query.follow) {
    if (query.tail == 0) co_return res;
    auto lines = std::make_shared<ContainerLines>(query.ndjson);
    options.on_output = [lines](docker::ExecStream s, std::string_view b) { lines->add(s, b); };
    auto done = co_await sandboxes_.container_logs(row, std::move(options), r.client_gone);
    if (!done) co_return error_answer(r, done.error());
    lines->finish();
    res.body = lines->take();
    co_return res;
  }
  // follow=true: Docker's answer is relayed as it arrives until the container stops (Docker
  // ends it) or the client leaves (`hangup` ends the Docker call).
  SandboxService* sandboxes = &sandboxes_;
  store::SandboxRow snapshot = row;
  const bool ndjson = query.ndjson;
  std::shared_ptr<OneShot> gone = r.client_gone;
  res.stream = [sandboxes, snapshot, options, ndjson,
                gone](BodySink& sink) -> boost::asio::awaitable<void> {
    auto ex = co_await boost::asio::this_coro::executor;
    std::shared_ptr<OneShot> hangup = gone ? gone : std::make_shared<OneShot>(ex);
    struct Shared {
      ContainerLines lines;
      bool done = false;
      boost::asio::steady_timer bell;
      Shared(bool nd, boost::asio::any_io_executor e)
          : lines(nd), bell(e, boost::asio::steady_timer::time_point::max()) {}
    };
    auto shared = std::make_shared<Shared>(ndjson, ex);
    auto producer = [sandboxes, shared, &snapshot, &options,
                     hangup]() -> boost::asio::awaitable<void> {
      docker::LogsOptions opts = options;
      opts.on_output = [shared](docker::ExecStream s, std::string_view b) {
        shared->lines.add(s, b);
        shared->bell.cancel();
      };
      auto done = co_await sandboxes->container_logs(snapshot, std::move(opts), hangup);
      if (!done) {
        kLog.info("container log stream failed",
                  {{"id", snapshot.id}, {"error", done.error().message}});
      }
      shared->lines.finish();
      shared->done = true;
      shared->bell.cancel();
    };
    auto consumer = [&]() -> boost::asio::awaitable<void> {
      for (;;) {
        std::string out = shared->lines.take();
        if (!out.empty()) {
          if (!co_await sink.write(out)) {
            hangup->fire();
            co_return;
          }
          continue;  // more may have arrived during the write
        }
        if (shared->done) co_return;
        shared->bell.expires_at(boost::asio::steady_timer::time_point::max());
        co_await shared->bell.async_wait(nothrow);
      }
    };
    try {
      co_await (producer() && consumer());
    } catch (const std::exception& e) {
      kLog.info("container log stream ended early", {{"id", snapshot.id}, {"reason", e.what()}});
    }
  };
  co_return res;
}

}  // namespace sandboxd::control
