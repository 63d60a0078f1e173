#include "api.h"

#include "base/json.h"
#include "base/ulid.h"
#include "runtimed/text.h"
#include "workspace_fs.h"

#include <boost/json.hpp>

#include <sys/statvfs.h>
#include <unistd.h>

#include <charconv>

namespace sandboxd::runtimed {

namespace json = boost::json;

namespace {

enum class Route {
  status,
  devserver,
  devserver_restart,
  devserver_log,
  tasks,
  task,
  task_events,
  task_cancel,
};

struct Match {
  Route route;
  std::string id;  // the raw {id} segment
};

// The route for a path, and the methods it allows.
std::optional<Match> match(std::string_view path, std::string_view* allow) {
  auto exact = [&](std::string_view p, Route r, std::string_view methods) -> std::optional<Match> {
    if (path != p) return std::nullopt;
    *allow = methods;
    return Match{r, {}};
  };
  if (auto m = exact("/status", Route::status, "GET")) return m;
  if (auto m = exact("/devserver", Route::devserver, "GET")) return m;
  if (auto m = exact("/devserver/restart", Route::devserver_restart, "POST")) return m;
  if (auto m = exact("/devserver/log", Route::devserver_log, "GET")) return m;
  if (auto m = exact("/tasks", Route::tasks, "GET, POST")) return m;
  constexpr std::string_view kPrefix = "/tasks/";
  if (!path.starts_with(kPrefix)) return std::nullopt;
  std::string_view rest = path.substr(kPrefix.size());
  std::size_t slash = rest.find('/');
  std::string id(rest.substr(0, slash));
  if (id.empty()) return std::nullopt;
  if (slash == std::string_view::npos) {
    *allow = "GET";
    return Match{Route::task, id};
  }
  std::string_view tail = rest.substr(slash);
  if (tail == "/events") {
    *allow = "GET";
    return Match{Route::task_events, id};
  }
  if (tail == "/cancel") {
    *allow = "POST";
    return Match{Route::task_cancel, id};
  }
  return std::nullopt;
}

HttpResponse json_answer(int status, const json::object& body) {
  HttpResponse r;
  r.status = status;
  r.body = json::serialize(body);
  return r;
}

HttpResponse error_answer(int status, std::string_view code, std::string_view message) {
  json::object err;
  err["code"] = code;
  err["message"] = valid_utf8(message);
  json::object body;
  body["error"] = std::move(err);
  return json_answer(status, body);
}

HttpResponse invalid(std::string_view message) { return error_answer(400, "invalid_request", message); }

// Query parameters; a repeated one is an error (SPEC §13), unknown ones are ignored.
Result<std::map<std::string, std::string>> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    std::string key(pair.substr(0, eq));
    std::string value(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!out.emplace(key, value).second) {
      return Error{Errc::invalid_argument, "query parameter " + key + " is repeated"};
    }
  }
  return out;
}

// A decimal integer within [lo, hi] from a query value or header.
std::optional<std::uint64_t> parse_uint(std::string_view text, std::uint64_t lo, std::uint64_t hi) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

// The optional integer parameter `name`; `*out` keeps its default when absent.
std::optional<HttpResponse> int_param(const std::map<std::string, std::string>& q,
                                      const std::string& name, std::uint64_t lo, std::uint64_t hi,
                                      std::uint64_t* out) {
  auto it = q.find(name);
  if (it == q.end()) return std::nullopt;
  auto v = parse_uint(it->second, lo, hi);
  if (!v) {
    return invalid(name + ": must be an integer between " + std::to_string(lo) + " and " +
                   std::to_string(hi));
  }
  *out = *v;
  return std::nullopt;
}

}  // namespace

Api::Api(Context& ctx, TaskManager& tasks, DevServer& devserver)
    : ctx_(ctx), tasks_(tasks), devserver_(devserver) {}

std::optional<HttpResponse> Api::check_head(const HttpRequest& head) {
  auto auth = head.headers.find("authorization");
  bool authorized = false;
  if (auth != head.headers.end()) {
    std::string_view value = auth->second;
    constexpr std::string_view kScheme = "bearer ";
    if (value.size() > kScheme.size()) {
      std::string scheme(value.substr(0, kScheme.size()));
      for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      authorized = scheme == kScheme &&
                   equal_constant_time(value.substr(kScheme.size()), ctx_.settings.secret);
    }
  }
  if (!authorized) {
    HttpResponse r = error_answer(401, "unauthorized", "missing or wrong bearer secret");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"runtimed\"");
    return r;
  }
  std::string_view allow;
  auto m = match(head.path, &allow);
  if (!m) return error_answer(404, "not_found", "no such path");
  bool allowed = false;
  for (std::string_view rest = allow; !rest.empty();) {
    std::size_t comma = rest.find(", ");
    if (rest.substr(0, comma) == head.method) allowed = true;
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
  }
  if (!allowed) {
    HttpResponse r = error_answer(405, "method_not_allowed", "method not allowed on this path");
    r.headers.emplace_back("Allow", std::string(allow));
    return r;
  }
  return std::nullopt;
}

asio::awaitable<HttpResponse> Api::handle(const HttpRequest& request) {
  std::string_view allow;
  auto m = match(request.path, &allow);
  if (!m) co_return error_answer(404, "not_found", "no such path");
  switch (m->route) {
    case Route::status:
      co_return status();
    case Route::devserver:
      co_return json_answer(200, devserver_.to_json());
    case Route::devserver_restart:
      co_return restart(request);
    case Route::devserver_log: {
      HttpResponse r = co_await log_tail(request);
      co_return r;
    }
    case Route::tasks:
      if (request.method == "POST") {
        HttpResponse r = co_await submit(request);
        co_return r;
      }
      co_return list(request);
    case Route::task:
    case Route::task_events:
    case Route::task_cancel:
      break;
  }
  auto id = Ulid::parse(m->id);
  Task* task = id ? tasks_.find(id->str()) : nullptr;
  if (!task) {
    co_return error_answer(404, "no_such_task",
                           id ? "no task with this id" : "no such task: not a valid task id");
  }
  if (m->route == Route::task) co_return json_answer(200, tasks_.task_json(*task));
  if (m->route == Route::task_cancel) {
    int code = tasks_.cancel(*task);
    co_return json_answer(code, tasks_.task_json(*task));
  }
  co_return events(request, *task);
}

HttpResponse Api::status() {
  auto now = ctx_.clock->wall();
  json::object rt;
  rt["version"] = kRuntimedVersion;
  rt["pid"] = static_cast<std::int64_t>(::getpid());
  rt["booted_at"] = format_time_ms(ctx_.booted_at);
  rt["uptime_s"] = std::chrono::duration_cast<std::chrono::seconds>(now - ctx_.booted_at).count();
  json::object tasks;
  auto running = tasks_.running_id();
  tasks["running"] = running ? json::value(*running) : json::value(nullptr);
  tasks["queued"] = tasks_.queued_count();
  json::object ws;
  struct statvfs vfs {};
  if (::statvfs(ctx_.workspace.c_str(), &vfs) == 0) {
    ws["free_bytes"] = vfs.f_bavail * vfs.f_frsize;
  } else {
    ws["free_bytes"] = nullptr;
  }
  json::object o;
  o["runtimed"] = std::move(rt);
  o["sandbox_id"] = ctx_.settings.sandbox_id;
  o["devserver"] = devserver_.to_json();
  o["tasks"] = std::move(tasks);
  o["workspace"] = std::move(ws);
  return json_answer(200, o);
}

HttpResponse Api::restart(const HttpRequest& request) {
  std::optional<std::string> command;
  std::optional<int> port;
  bool blank = request.body.find_first_not_of(" \t\r\n") == std::string::npos;
  if (!blank) {
    auto body = parse_json_object(request.body);
    if (!body) return invalid(body.error().detail);
    if (const json::value* c = body->if_contains("command"); c && !c->is_null()) {
      if (!c->is_string()) return invalid("command: must be a string");
      std::string_view text = c->get_string();
      if (text.size() > 64 * 1024) return invalid("command: longer than 64 KiB");
      if (text.find('\0') != std::string_view::npos) return invalid("command: contains a NUL byte");
      command = std::string(text);
    }
    if (const json::value* p = body->if_contains("port"); p && !p->is_null()) {
      if (!p->is_int64() || p->get_int64() < 1 || p->get_int64() > 65535) {
        return invalid("port: must be an integer between 1 and 65535");
      }
      port = static_cast<int>(p->get_int64());
    }
  }
  devserver_.restart(std::move(command), port);
  return json_answer(202, devserver_.to_json());
}

asio::awaitable<HttpResponse> Api::log_tail(const HttpRequest& request) {
  auto q = parse_query(request.query);
  if (!q) co_return invalid(q.error().detail);
  std::uint64_t tail = 200;
  if (auto bad = int_param(*q, "tail", 0, 10000, &tail)) co_return *bad;
  std::string path = devserver_.log_path();
  std::size_t lines = tail;
  auto job = [path, lines] { return read_log_tail(path, lines); };
  std::string text = co_await offload(ctx_.pool, job);
  HttpResponse r;
  r.content_type = "text/plain; charset=utf-8";
  r.body = valid_utf8(text);
  co_return r;
}

asio::awaitable<HttpResponse> Api::submit(const HttpRequest& request) {
  auto body = parse_json_object(request.body);
  if (!body) co_return invalid(body.error().detail);
  auto id = parse_task_id(*body);
  if (!id) co_return invalid(id.error().detail);
  if (Task* existing = tasks_.find(*id)) co_return json_answer(200, tasks_.task_json(*existing));

  RequestDefaults defaults{ctx_.settings.tasks.timeout_s, ctx_.settings.project_dir};
  auto req = parse_task_request(*body, defaults);
  if (!req) co_return invalid(req.error().detail);
  if (req->cwd_given) {
    auto dir = open_dir_beneath(ctx_.workspace, req->cwd);
    if (!dir) {
      std::string why = dir.error().code == Errc::not_found
                            ? std::string("cwd: no such directory beneath the workspace")
                            : "cwd: " + dir.error().detail;
      co_return invalid(why);
    }
    ::close(*dir);
  }
  TaskRequest request_value = std::move(*req);
  TaskManager::SubmitResult result = co_await tasks_.submit(request_value);
  switch (result.code) {
    case TaskManager::SubmitCode::accepted:
      co_return json_answer(202, tasks_.task_json(*result.task));
    case TaskManager::SubmitCode::existing:
      co_return json_answer(200, tasks_.task_json(*result.task));
    case TaskManager::SubmitCode::queue_full:
      co_return error_answer(429, "queue_full", result.message);
    case TaskManager::SubmitCode::unavailable: {
      HttpResponse r = error_answer(503, "unavailable", result.message);
      r.headers.emplace_back("Retry-After", "1");
      co_return r;
    }
    case TaskManager::SubmitCode::failed:
      break;
  }
  co_return error_answer(500, "internal", result.message);
}

HttpResponse Api::list(const HttpRequest& request) {
  auto q = parse_query(request.query);
  if (!q) return invalid(q.error().detail);
  std::uint64_t limit = 50;
  if (auto bad = int_param(*q, "limit", 1, 200, &limit)) return *bad;
  json::array items;
  for (const Task* t : tasks_.list(limit)) {
    items.emplace_back(tasks_.task_json(*t));
  }
  json::object o;
  o["tasks"] = std::move(items);
  return json_answer(200, o);
}

HttpResponse Api::events(const HttpRequest& request, Task& task) {
  auto q = parse_query(request.query);
  if (!q) return invalid(q.error().detail);
  std::uint64_t since = 0;
  constexpr std::uint64_t kMaxId = std::uint64_t{1} << 53;
  if (q->count("since")) {
    if (auto bad = int_param(*q, "since", 0, kMaxId, &since)) return *bad;
  } else if (auto h = request.headers.find("last-event-id"); h != request.headers.end()) {
    auto v = parse_uint(h->second, 0, kMaxId);
    if (!v) return invalid("Last-Event-ID: must be a non-negative integer");
    since = *v;
  }
  HttpResponse r;
  r.content_type = "application/x-ndjson";
  Task* t = &task;
  TaskManager* tasks = &tasks_;
  r.stream = [tasks, t, since](EventSink& sink) { return tasks->stream_events(*t, since, sink); };
  return r;
}

}  // namespace sandboxd::runtimed
