#include "cli/requests.h"

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <cmath>

#include "base/ulid.h"

namespace sandboxd::cli {

namespace json = boost::json;

namespace {

CliResult<json::object> env_object(const Invocation& inv) {
  json::object env;
  for (const auto& text : inv.values("env")) {
    auto kv = parse_env_pair(text);
    if (!kv) return CliError::usage("--env expects K=V, got \"" + text + "\"");
    env[kv->first] = kv->second;  // a later --env of the same name wins
  }
  return env;
}

// A strictly positive decimal number ("1", "0.5", "2.25").
std::optional<double> parse_positive(std::string_view text) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  double whole = 0, scale = 0;
  bool dot = false, digit = false;
  for (char c : text) {
    if (c == '.' && !dot) {
      dot = true;
      scale = 1;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    digit = true;
    if (dot) {
      scale /= 10;
      whole += (c - '0') * scale;
    } else {
      whole = whole * 10 + (c - '0');
    }
  }
  if (!digit || !(whole > 0)) return std::nullopt;
  return whole;
}

CliResult<std::optional<std::int64_t>> timeout_seconds(const Invocation& inv) {
  auto t = inv.value("timeout");
  if (!t) return std::optional<std::int64_t>();
  auto d = parse_duration(*t);
  if (!d)
    return CliError::usage("invalid --timeout \"" + *t + "\": expected a duration like 90s or 5m");
  // The API takes whole seconds; a part of a second rounds up (never to 0).
  return std::optional<std::int64_t>((d->count() + 999) / 1000);
}

}  // namespace

CliResult<std::string> id_arg(std::string_view text, std::string_view what) {
  auto id = Ulid::parse(text);
  if (!id) {
    CliError e = CliError::usage("invalid " + std::string(what) + " \"" + std::string(text) +
                                 "\": expected 26 characters of Crockford base32 (a ULID)");
    return e;
  }
  return id->str();
}

CliResult<std::optional<int>> port_flag(const Invocation& inv, std::string_view flag) {
  auto v = inv.value(flag);
  if (!v) return std::optional<int>();
  auto n = parse_int(*v, 1, 65535);
  if (!n)
    return CliError::usage("--" + std::string(flag) + " expects a port from 1 to 65535, got \"" +
                           *v + "\"");
  return std::optional<int>(static_cast<int>(*n));
}

CliResult<json::object> create_body(const Invocation& inv, std::string_view fresh_project_id) {
  json::object body;
  json::object project;
  project["id"] = inv.value("project-id").value_or(std::string(fresh_project_id));
  project["user_id"] = inv.value("user-id").value_or("local");
  for (const char* f : {"project-id", "user-id"}) {
    if (auto v = inv.value(f); v && v->empty())
      return CliError::usage("--" + std::string(f) + " must not be empty");
  }
  body["project"] = std::move(project);
  if (inv.has("port")) {
    json::array ports;
    for (const auto& p : inv.values("port")) {
      auto n = parse_int(p, 1, 65535);
      if (!n) return CliError::usage("--port expects a port from 1 to 65535, got \"" + p + "\"");
      for (const auto& seen : ports) {
        if (seen.as_int64() == *n) return CliError::usage("--port " + p + " given twice");
      }
      ports.push_back(*n);
    }
    body["ports"] = std::move(ports);
  }
  auto env = env_object(inv);
  if (!env) return env.error();
  if (!env->empty()) body["env"] = std::move(*env);
  if (inv.has("private")) body["visibility"] = "private";
  if (auto p = inv.value("idle-policy")) {
    if (*p != "sleep" && *p != "always_on") {
      return CliError::usage("--idle-policy must be sleep or always_on, got \"" + *p + "\"");
    }
    body["idle_policy"] = *p;
  }
  json::object resources;
  if (auto m = inv.value("memory")) {
    if (m->empty()) return CliError::usage("--memory expects a size like 2GiB");
    resources["memory"] = *m;
  }
  if (auto c = inv.value("cpus")) {
    auto n = parse_positive(*c);
    if (!n || *n > 1024)
      return CliError::usage("--cpus expects a number above 0, got \"" + *c + "\"");
    if (*n == std::floor(*n)) {
      resources["cpus"] = static_cast<std::int64_t>(*n);
    } else {
      resources["cpus"] = *n;
    }
  }
  if (!resources.empty()) body["resources"] = std::move(resources);
  json::object dev;
  if (auto c = inv.value("dev-command")) {
    if (c->empty()) return CliError::usage("--dev-command must not be empty");
    dev["command"] = *c;
  }
  if (auto p = port_flag(inv, "dev-port"); !p) {
    return p.error();
  } else if (*p) {
    dev["port"] = **p;
  }
  if (!dev.empty()) body["dev"] = std::move(dev);
  return body;
}

CliResult<std::vector<std::pair<std::string, std::string>>> list_params(const Invocation& inv) {
  std::vector<std::pair<std::string, std::string>> q;
  if (auto s = inv.value("status")) {
    if (s->empty()) return CliError::usage("--status expects states like running,stopped");
    q.emplace_back("status", *s);
  }
  if (auto u = inv.value("user")) q.emplace_back("user_id", *u);
  if (auto p = inv.value("project")) q.emplace_back("project_id", *p);
  return q;
}

CliResult<json::object> exec_body(const Invocation& inv) {
  if (inv.argv.empty()) return CliError::usage("missing CMD (after --)");
  json::object body;
  json::array cmd;
  for (const auto& a : inv.argv) cmd.push_back(json::string(a));
  body["cmd"] = std::move(cmd);
  auto env = env_object(inv);
  if (!env) return env.error();
  if (!env->empty()) body["env"] = std::move(*env);
  if (auto w = inv.value("workdir")) {
    if (w->empty() || w->front() != '/')
      return CliError::usage("--workdir must be an absolute path");
    body["cwd"] = *w;
  }
  auto t = timeout_seconds(inv);
  if (!t) return t.error();
  if (*t) body["timeout_s"] = **t;
  if (inv.has("detach")) {
    body["detach"] = true;
  } else {
    body["stream"] = true;
  }
  return body;
}

CliResult<json::object> task_body(const Invocation& inv,
                                  const std::optional<std::string>& prompt_from_file) {
  int sources =
      (inv.has("prompt") ? 1 : 0) + (inv.has("prompt-file") ? 1 : 0) + (inv.argv.empty() ? 0 : 1);
  if (sources != 1)
    return CliError::usage("give exactly one of --prompt, --prompt-file or -- ARGV…");
  json::object body;
  std::optional<std::string> agent = inv.value("agent");
  if (agent && *agent != "opencode" && *agent != "claude-code" && *agent != "command") {
    return CliError::usage("--agent must be opencode, claude-code or command, got \"" + *agent +
                           "\"");
  }
  if (!inv.argv.empty()) {
    if (agent && *agent != "command")
      return CliError::usage("-- ARGV… runs a command: it goes with --agent command");
    body["agent"] = "command";
    json::array cmd;
    for (const auto& a : inv.argv) cmd.push_back(json::string(a));
    body["command"] = std::move(cmd);
  } else {
    if (agent && *agent == "command") return CliError::usage("--agent command needs -- ARGV…");
    if (agent) body["agent"] = *agent;
    std::string prompt =
        inv.has("prompt") ? inv.value("prompt").value_or("") : prompt_from_file.value_or("");
    if (prompt.empty()) return CliError::usage("the prompt is empty");
    body["prompt"] = prompt;
  }
  if (auto m = inv.value("model")) {
    if (!inv.argv.empty()) return CliError::usage("--model is for agents, not -- ARGV…");
    body["model"] = *m;
  }
  auto env = env_object(inv);
  if (!env) return env.error();
  if (!env->empty()) body["env"] = std::move(*env);
  auto t = timeout_seconds(inv);
  if (!t) return t.error();
  if (*t) body["timeout_s"] = **t;
  return body;
}

CliResult<std::vector<std::pair<std::string, std::string>>> logs_params(const Invocation& inv) {
  std::vector<std::pair<std::string, std::string>> q{{"source", "dev_server"}};
  std::string tail = "200";
  if (auto t = inv.value("tail")) {
    auto n = parse_int(*t, 0, 10000);
    if (!n)
      return CliError::usage("--tail expects a number of lines from 0 to 10000, got \"" + *t +
                             "\"");
    tail = std::to_string(*n);
  }
  q.emplace_back("tail", tail);
  if (inv.has("follow")) q.emplace_back("follow", "true");
  if (inv.global.json) q.emplace_back("format", "ndjson");
  return q;
}

CliResult<std::vector<std::pair<std::string, std::string>>> export_params(const Invocation& inv) {
  std::vector<std::pair<std::string, std::string>> q;
  if (inv.args.size() > 1) q.emplace_back("path", inv.args[1]);
  if (inv.has("all")) q.emplace_back("all", "true");
  if (auto o = inv.value("output"); o && (o->ends_with(".tar.gz") || o->ends_with(".tgz"))) {
    q.emplace_back("gzip", "true");
  }
  for (const auto& e : inv.values("exclude")) {
    if (e.empty()) return CliError::usage("--exclude expects a pattern");
    q.emplace_back("exclude", e);
  }
  return q;
}

}  // namespace sandboxd::cli
