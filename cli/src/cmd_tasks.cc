// task run / ls / watch / cancel (SPEC §12 over §2.7.1–2.7.5).
#include <poll.h>

#include <algorithm>
#include <boost/json/serialize.hpp>

#include "base/json.h"
#include "cli/render.h"
#include "cli/requests.h"
#include "cli/streams.h"
#include "cli/url.h"
#include "commands.h"
#include "local_files.h"

namespace sandboxd::cli {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxPromptFile = 1024 * 1024;

std::string tasks_path(const std::string& sid) { return "/v1/sandboxes/" + sid + "/tasks"; }

bool worth_retrying(const CliError& e) {
  if (e.kind == ErrorKind::unreachable || e.kind == ErrorKind::protocol ||
      e.kind == ErrorKind::deadline)
    return true;
  return e.kind == ErrorKind::api && e.http_status >= 500;
}

// The events of one task until `done`, reconnecting after a drop (SPEC §12: 1 s, 2 s, …
// up to 10 s apart) from the last event id. A first connection that fails is an error, not
// a reason to wait for ever. Returns the `done` event's rendering.
CliResult<EventOutput> watch_events(Context& c, const std::string& sid, const std::string& tid,
                                    std::optional<long long> since) {
  SseParser parser;
  std::string exit_signal;
  int backoff_s = 1;
  bool first = true;
  bool connected = false;  // only a stream that once answered is worth reconnecting to
  for (;;) {
    if (!first) {
      poll(nullptr, 0, backoff_s * 1000);  // the reconnect delay itself, not a synchronisation
      backoff_s = std::min(backoff_s * 2, 10);
    }
    first = false;
    ApiRequest r;
    r.accept = "text/event-stream";
    r.path = tasks_path(sid) + "/" + tid + "/events";
    if (!parser.last_event_id().empty()) {
      r.headers.emplace_back("Last-Event-ID", parser.last_event_id());
    } else if (since) {
      r.path += "?since=" + std::to_string(*since);
    }
    parser.reset();
    auto res = c.api.open(r);
    if (!res) {
      if (connected && worth_retrying(res.error())) {
        if (c.inv.global.verbose) (void)c.err(format_error(res.error()));
        continue;
      }
      return res.error();
    }
    connected = true;
    std::string chunk;
    std::vector<SseEvent> events;
    for (;;) {
      chunk.clear();
      auto more = res->read(chunk, Deadline());
      if (!more) break;  // a drop: reconnect from the last id
      events.clear();
      if (auto st = parser.feed(chunk, events); !st) return st.error();
      for (const auto& ev : events) {
        backoff_s = 1;
        auto v = parse_json(ev.data);
        if (!v || !v->is_object()) return CliError::protocol("a task event is not a JSON object");
        EventOutput o = render_task_event(v->get_object());
        if (c.json()) {
          if (auto st = c.out(json::serialize(*v) + "\n"); !st) return st.error();
        } else {
          if (auto st = c.out(o.out); !st) return st.error();
          if (auto st = c.err(o.err); !st) return st.error();
        }
        if (!o.signal.empty()) exit_signal = o.signal;
        if (o.done) {
          // A command killed by a signal has no exit code: 128+N, as `docker run` gives.
          if (!o.exit_code && !exit_signal.empty()) {
            if (auto n = signal_number(exit_signal)) o.exit_code = exit_code_of_signal(*n);
          }
          return o;
        }
      }
      if (!*more) break;
    }
  }
}

// The exit code of a followed task: the command's own code for agent `command`, else 0 for
// success and exit 1 (a `failed` error) for failure or cancellation.
CliResult<int> task_outcome(const EventOutput& done, const std::string& tid, bool command) {
  if (command) {
    if (done.exit_code) return *done.exit_code;
    if (done.status == "succeeded") return 0;
  } else if (done.status == "succeeded") {
    return 0;
  }
  CliError e;
  e.kind = ErrorKind::failed;
  e.message = "task " + tid + " " + (done.status.empty() ? "ended without a status" : done.status);
  return e;
}

}  // namespace

CliResult<int> cmd_task_run(Context& c) {
  auto sid = c.id(0);
  if (!sid) return sid.error();
  std::optional<std::string> prompt;
  if (auto f = c.inv.value("prompt-file")) {
    auto text = read_small_file(*f, kMaxPromptFile);
    if (!text) return text.error();
    prompt = std::move(*text);
  }
  auto body = task_body(c.inv, prompt);
  if (!body) return body.error();
  ApiRequest r;
  r.method = "POST";
  r.path = tasks_path(*sid);
  r.json = json::serialize(*body);
  auto reply = c.api.call(r);
  if (!reply) return reply.error();
  auto obj = c.object_of(*reply);
  if (!obj) return obj.error();
  std::string tid = str_field(*obj, "id");
  bool follow = c.inv.has("follow");
  if (!follow) {
    if (c.json()) {
      if (auto st = c.out_document(reply->body); !st) return st.error();
    } else if (auto st = c.out(tid + "\n"); !st) {
      return st.error();
    }
    return 0;
  }
  if (tid.empty()) return CliError::protocol("the server's answer has no task id");
  // The task's own output goes to stdout and stderr: its id goes to stderr.
  if (!c.json()) {
    if (auto st = c.err("task " + tid + "\n"); !st) return st.error();
  }
  auto done = watch_events(c, *sid, tid, std::nullopt);
  if (!done) return done.error();
  return task_outcome(*done, tid, !c.inv.argv.empty());
}

CliResult<int> cmd_task_ls(Context& c) {
  auto sid = c.id(0);
  if (!sid) return sid.error();
  json::array all;
  std::string single;
  int pages = 0;
  std::string cursor;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> q{{"limit", "1000"}};
    if (!cursor.empty()) q.emplace_back("cursor", cursor);
    ApiRequest r;
    r.path = tasks_path(*sid) + query_string(q);
    auto reply = c.api.call(r);
    if (!reply) return reply.error();
    auto obj = c.object_of(*reply);
    if (!obj) return obj.error();
    ++pages;
    single = reply->body;
    auto it = obj->find("tasks");
    if (it == obj->end() || !it->value().is_array())
      return CliError::protocol("the server's answer has no tasks array");
    for (auto& t : it->value().get_array()) all.push_back(t);
    cursor = str_field(*obj, "next_cursor");
    if (cursor.empty()) break;
  }
  if (c.json()) {
    std::string doc = pages == 1 ? single : json::serialize(json::object{{"tasks", all}});
    if (auto st = c.out_document(doc); !st) return st.error();
    return 0;
  }
  // List items stop at finished_at (SPEC §2.4): the EXIT column of a finished command
  // task comes from its own object, read for the first kExitLookups rows.
  constexpr std::size_t kExitLookups = 100;
  std::size_t looked = 0;
  for (auto& item : all) {
    if (looked == kExitLookups) break;
    if (!item.is_object()) continue;
    json::object& t = item.get_object();
    const std::string status = str_field(t, "status");
    if (str_field(t, "agent") != "command" || status == "queued" || status == "running" ||
        t.contains("exit_code")) {
      continue;
    }
    ++looked;
    ApiRequest one;
    one.path = tasks_path(*sid) + "/" + str_field(t, "id");
    auto reply = c.api.call(one);
    if (!reply || reply->status != 200) continue;  // the row keeps "-"
    auto full = c.object_of(*reply);
    if (!full) continue;
    for (const char* key : {"exit_code", "duration_ms"}) {
      if (auto it = full->find(key); it != full->end()) t[key] = it->value();
    }
  }
  if (auto st = c.out(render_task_table(all, c.now())); !st) return st.error();
  return 0;
}

CliResult<int> cmd_task_watch(Context& c) {
  auto sid = c.id(0);
  if (!sid) return sid.error();
  auto tid = c.id(1, "task id");
  if (!tid) return tid.error();
  std::optional<long long> since;
  if (auto s = c.inv.value("since")) {
    auto n = parse_int(*s, 1, 1LL << 53);
    if (!n) return CliError::usage("--since expects an event id (1 or more), got \"" + *s + "\"");
    since = *n;
  }
  auto done = watch_events(c, *sid, *tid, since);
  if (!done) return done.error();
  return task_outcome(*done, *tid, false);
}

CliResult<int> cmd_task_cancel(Context& c) {
  auto sid = c.id(0);
  if (!sid) return sid.error();
  auto tid = c.id(1, "task id");
  if (!tid) return tid.error();
  ApiRequest r;
  r.method = "POST";
  r.path = tasks_path(*sid) + "/" + *tid + "/cancel";
  auto reply = c.api.call(r);
  if (!reply) return reply.error();
  if (c.json()) {
    if (auto st = c.out_document(reply->body); !st) return st.error();
    return 0;
  }
  auto obj = c.object_of(*reply);
  if (!obj) return obj.error();
  if (auto st = c.out(str_field(*obj, "status") + "\n"); !st) return st.error();
  return 0;
}

}  // namespace sandboxd::cli
