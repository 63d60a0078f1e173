// exec (SPEC §12 over §2.6.8's streaming exec) and logs (§2.6.9).
#include <boost/json/serialize.hpp>

#include "base/json.h"
#include "cli/render.h"
#include "cli/requests.h"
#include "cli/streams.h"
#include "cli/url.h"
#include "commands.h"

namespace sandboxd::cli {

namespace json = boost::json;

namespace {

// One output frame as `exec --json` writes it: {"stream","data"} (or "data_b64" for bytes
// that are not UTF-8, as the server sent them).
std::string json_output_line(const ExecFrame& f, std::string_view raw_line) {
  json::object o;
  o["stream"] = f.type == ExecFrame::Type::stdout_ ? "stdout" : "stderr";
  if (f.binary) {
    // Re-read the server's base64 instead of encoding the bytes again.
    if (auto v = parse_json(raw_line); v && v->is_object()) {
      if (auto it = v->get_object().find("data_b64"); it != v->get_object().end())
        o["data_b64"] = it->value();
    }
  } else {
    o["data"] = f.data;
  }
  return json::serialize(o) + "\n";
}

struct ExecState {
  std::optional<ExecFrame> exit;
  std::optional<ExecFrame> error;
};

CliStatus handle_frame(Context& c, std::string_view line, ExecState& st) {
  if (line.empty()) return {};
  auto f = parse_exec_frame(line);
  if (!f) return f.error();
  switch (f->type) {
    case ExecFrame::Type::stdout_:
    case ExecFrame::Type::stderr_:
      if (c.json()) return c.out(json_output_line(*f, line));
      return f->type == ExecFrame::Type::stdout_ ? c.out(f->data) : c.err(f->data);
    case ExecFrame::Type::exit:
      st.exit = std::move(*f);
      return {};
    case ExecFrame::Type::error:
      st.error = std::move(*f);
      return {};
    case ExecFrame::Type::start:
    case ExecFrame::Type::heartbeat:
    case ExecFrame::Type::unknown:
      return {};
  }
  return {};
}

// An older server may ignore `stream` and answer one JSON object.
CliResult<int> buffered_answer(Context& c, HttpResponse& res) {
  auto body = res.read_all(256 * 1024 * 1024, Deadline());
  if (!body) return body.error();
  auto v = parse_json(*body);
  if (!v || !v->is_object())
    return CliError::protocol("the exec answer is neither NDJSON nor a JSON object");
  const json::object& o = v->get_object();
  std::string out = str_field(o, "stdout"), err = str_field(o, "stderr");
  auto code = o.find("exit_code");
  if (code == o.end() || !code->value().is_int64())
    return CliError::protocol("the server did not report the command's exit code");
  std::int64_t reported = code->value().get_int64();
  if (reported < 0 || reported > 255) {
    return CliError::protocol("the server reported exit code " + std::to_string(reported) +
                              ", outside 0-255");
  }
  int exit = static_cast<int>(reported);
  if (c.json()) {
    std::string lines;
    if (!out.empty())
      lines += json::serialize(json::object{{"stream", "stdout"}, {"data", out}}) + "\n";
    if (!err.empty())
      lines += json::serialize(json::object{{"stream", "stderr"}, {"data", err}}) + "\n";
    lines += json::serialize(json::object{{"exit_code", exit}}) + "\n";
    if (auto st = c.out(lines); !st) return st.error();
    return exit;
  }
  if (auto st = c.out(out); !st) return st.error();
  if (auto st = c.err(err); !st) return st.error();
  return exit;
}

}  // namespace

CliResult<int> cmd_exec(Context& c) {
  auto id = c.id(0);
  if (!id) return id.error();
  auto body = exec_body(c.inv);
  if (!body) return body.error();
  ApiRequest r;
  r.method = "POST";
  r.path = "/v1/sandboxes/" + *id + "/exec";
  r.json = json::serialize(*body);
  if (c.inv.has("detach")) {
    auto reply = c.api.call(r);
    if (!reply) return reply.error();
    if (c.json()) {
      if (auto st = c.out_document(reply->body); !st) return st.error();
      return 0;
    }
    auto obj = c.object_of(*reply);
    if (!obj) return obj.error();
    if (auto st = c.out(str_field(*obj, "exec_id") + "\n"); !st) return st.error();
    return 0;
  }
  r.accept = "application/x-ndjson";
  auto res = c.api.open(r);
  if (!res) return res.error();
  std::string type = res->head().header("content-type").value_or("");
  if (type.starts_with("application/json")) return buffered_answer(c, *res);
  LineSplitter lines;
  ExecState state;
  std::string chunk;
  std::vector<std::string> complete;
  for (;;) {
    chunk.clear();
    auto more = res->read(chunk, Deadline());  // a stream has no deadline
    if (!more) return more.error();
    complete.clear();
    if (auto st = lines.feed(chunk, complete); !st) return st.error();
    for (const auto& l : complete) {
      if (auto st = handle_frame(c, l, state); !st) return st.error();
    }
    if (!*more) break;
  }
  if (auto last = lines.finish()) {
    if (auto st = handle_frame(c, *last, state); !st) return st.error();
  }
  if (state.error) {
    std::string code = state.error->code.empty() ? "" : " (" + state.error->code + ")";
    return CliError::local("exec failed: " + state.error->message + code);
  }
  if (!state.exit) return CliError::protocol("the exec stream ended before the command exited");
  if (!state.exit->exit_code)
    return CliError::protocol("the server did not report the command's exit code");
  int code = *state.exit->exit_code;
  if (code < 0 || code > 255) {
    return CliError::protocol("the server reported exit code " + std::to_string(code) +
                              ", outside 0-255");
  }
  if (state.exit->timed_out) {
    if (auto st = c.err("sandboxctl: the command passed its timeout and was killed\n"); !st)
      return st.error();
  }
  if (c.json()) {
    if (auto st = c.out(json::serialize(json::object{{"exit_code", code}}) + "\n"); !st)
      return st.error();
  }
  return code;
}

CliResult<int> cmd_logs(Context& c) {
  auto id = c.id(0);
  if (!id) return id.error();
  auto params = logs_params(c.inv);
  if (!params) return params.error();
  bool follow = c.inv.has("follow");
  ApiRequest r;
  r.path = "/v1/sandboxes/" + *id + "/logs" + query_string(*params);
  r.accept = c.json() ? "application/x-ndjson" : "text/plain";
  auto res = c.api.open(r);
  if (!res) return res.error();
  // Without -f the whole answer is bounded by --timeout; -f streams until the server ends.
  Deadline d = follow ? Deadline() : Deadline(c.api.deadline());
  std::string chunk;
  for (;;) {
    chunk.clear();
    auto more = res->read(chunk, d);
    if (!more) return more.error();
    if (auto st = c.out(chunk); !st) return st.error();
    if (!*more) return 0;
  }
}

}  // namespace sandboxd::cli
