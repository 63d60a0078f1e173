#include "runtimed/task_request.h"

#include "base/ulid.h"
#include "runtimed/paths.h"

#include <boost/json.hpp>

namespace sandboxd::runtimed {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxPrompt = 256 * 1024;
constexpr std::size_t kMaxArgv = 256;
constexpr std::size_t kMaxArgvBytes = 64 * 1024;
constexpr std::size_t kMaxExtraArgs = 32;
constexpr std::size_t kMaxModel = 256;
constexpr std::size_t kMaxEnvEntries = 128;
constexpr std::size_t kMaxEnvName = 128;
constexpr std::size_t kMaxEnvValue = 32 * 1024;
constexpr std::size_t kMaxEnvBytes = 256 * 1024;

Error invalid(std::string detail) { return Error{Errc::invalid_argument, std::move(detail)}; }

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// A list of strings; `what` names the field in errors.
Result<std::vector<std::string>> read_strings(const json::value& v, std::string_view what) {
  if (!v.is_array()) return invalid(std::string(what) + ": must be an array of strings");
  std::vector<std::string> out;
  std::size_t i = 0;
  for (const json::value& item : v.get_array()) {
    if (!item.is_string()) {
      return invalid(std::string(what) + "[" + std::to_string(i) + "]: must be a string");
    }
    std::string_view s = item.get_string();
    if (has_nul(s)) {
      return invalid(std::string(what) + "[" + std::to_string(i) + "]: contains a NUL byte");
    }
    out.emplace_back(s);
    ++i;
  }
  return out;
}

}  // namespace

std::string_view agent_name(Agent agent) {
  switch (agent) {
    case Agent::opencode: return "opencode";
    case Agent::claude_code: return "claude-code";
    case Agent::command: return "command";
  }
  return "command";
}

std::optional<Agent> parse_agent(std::string_view name) {
  if (name == "opencode") return Agent::opencode;
  if (name == "claude-code") return Agent::claude_code;
  if (name == "command") return Agent::command;
  return std::nullopt;
}

Status check_env_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxEnvName) {
    return invalid("env: a name must be 1 to 128 bytes");
  }
  auto letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!letter(name[0])) {
    return invalid("env: name \"" + std::string(name) + "\" must match [A-Za-z_][A-Za-z0-9_]*");
  }
  for (char c : name) {
    if (!letter(c) && !digit(c)) {
      return invalid("env: a name must match [A-Za-z_][A-Za-z0-9_]*");
    }
  }
  if (name == "HOME" || name.starts_with("SANDBOX_") || name.starts_with("SANDBOXD_")) {
    return invalid("env: name \"" + std::string(name) +
                   "\" is reserved (HOME, SANDBOX_*, SANDBOXD_*)");
  }
  return ok();
}

Result<std::string> parse_task_id(const json::object& body) {
  const json::value* id = body.if_contains("id");
  if (!id) return invalid("id: required");
  if (!id->is_string()) return invalid("id: must be a string");
  auto ulid = Ulid::parse(std::string_view(id->get_string()));
  if (!ulid) return invalid("id: not a valid ULID");
  return ulid->str();
}

Result<TaskRequest> parse_task_request(const json::object& body, const RequestDefaults& defaults) {
  TaskRequest r;
  auto id = parse_task_id(body);
  if (!id) return id.error();
  r.id = *id;

  const json::value* agent = body.if_contains("agent");
  if (!agent) return invalid("agent: required");
  if (!agent->is_string()) return invalid("agent: must be a string");
  auto kind = parse_agent(std::string_view(agent->get_string()));
  if (!kind) return invalid("agent: must be one of opencode, claude-code, command");
  r.agent = *kind;
  bool is_command = r.agent == Agent::command;

  const json::value* prompt = body.if_contains("prompt");
  if (is_command) {
    if (prompt && !prompt->is_null()) return invalid("prompt: not allowed for agent command");
  } else {
    if (!prompt || prompt->is_null()) return invalid("prompt: required for this agent");
    if (!prompt->is_string()) return invalid("prompt: must be a string");
    std::string_view p = prompt->get_string();
    if (p.empty()) return invalid("prompt: must not be empty");
    if (p.size() > kMaxPrompt) return invalid("prompt: longer than 256 KiB");
    if (has_nul(p)) return invalid("prompt: contains a NUL byte");
    r.prompt = std::string(p);
  }

  const json::value* argv = body.if_contains("argv");
  if (is_command) {
    if (!argv || argv->is_null()) return invalid("argv: required for agent command");
    auto list = read_strings(*argv, "argv");
    if (!list) return list.error();
    if (list->empty() || list->size() > kMaxArgv) return invalid("argv: must have 1 to 256 elements");
    std::size_t total = 0;
    for (const auto& a : *list) total += a.size();
    if (total > kMaxArgvBytes) return invalid("argv: more than 64 KiB in total");
    if ((*list)[0].empty()) return invalid("argv[0]: must not be empty");
    r.argv = std::move(*list);
  } else if (argv && !argv->is_null()) {
    return invalid("argv: only allowed for agent command");
  }

  if (const json::value* model = body.if_contains("model"); model && !model->is_null()) {
    if (is_command) return invalid("model: not allowed for agent command");
    if (!model->is_string()) return invalid("model: must be a string");
    std::string_view m = model->get_string();
    if (m.empty() || m.size() > kMaxModel) return invalid("model: must be 1 to 256 bytes");
    if (has_nul(m)) return invalid("model: contains a NUL byte");
    r.model = std::string(m);
  }

  if (const json::value* extra = body.if_contains("extra_args"); extra && !extra->is_null()) {
    auto list = read_strings(*extra, "extra_args");
    if (!list) return list.error();
    if (is_command && !list->empty()) return invalid("extra_args: not allowed for agent command");
    if (list->size() > kMaxExtraArgs) return invalid("extra_args: at most 32 elements");
    std::size_t total = 0;
    for (const auto& a : *list) total += a.size();
    if (total > kMaxArgvBytes) return invalid("extra_args: more than 64 KiB in total");
    r.extra_args = std::move(*list);
  }

  if (const json::value* env = body.if_contains("env"); env && !env->is_null()) {
    if (!env->is_object()) return invalid("env: must be an object of strings");
    const json::object& vars = env->get_object();
    if (vars.size() > kMaxEnvEntries) return invalid("env: at most 128 entries");
    std::size_t total = 0;
    for (const auto& kv : vars) {
      std::string_view name = kv.key();
      if (Status st = check_env_name(name); !st) return st.error();
      if (!kv.value().is_string()) {
        return invalid("env." + std::string(name) + ": must be a string");
      }
      std::string_view value = kv.value().get_string();
      if (value.size() > kMaxEnvValue) {
        return invalid("env." + std::string(name) + ": value longer than 32 KiB");
      }
      if (has_nul(value)) return invalid("env." + std::string(name) + ": contains a NUL byte");
      total += name.size() + value.size();
      r.env.emplace_back(std::string(name), std::string(value));
    }
    if (total > kMaxEnvBytes) return invalid("env: more than 256 KiB in total");
  }

  r.timeout_s = defaults.timeout_s;
  if (const json::value* t = body.if_contains("timeout_s"); t && !t->is_null()) {
    if (!t->is_int64()) return invalid("timeout_s: must be an integer");
    std::int64_t n = t->as_int64();
    if (n < 1 || n > 86400) return invalid("timeout_s: must be between 1 and 86400");
    r.timeout_s = static_cast<int>(n);
  }

  r.cwd = defaults.project_dir;
  if (const json::value* cwd = body.if_contains("cwd"); cwd && !cwd->is_null()) {
    if (!cwd->is_string()) return invalid("cwd: must be a string");
    auto normalized = normalize_relative_path(std::string_view(cwd->get_string()), "cwd");
    if (!normalized) return normalized.error();
    r.cwd = *normalized;
    r.cwd_given = true;
  }
  return r;
}

json::object task_request_json(const TaskRequest& r) {
  json::object o;
  o["id"] = r.id;
  o["agent"] = agent_name(r.agent);
  if (r.agent == Agent::command) {
    json::array argv;
    for (const auto& a : r.argv) argv.emplace_back(a);
    o["argv"] = std::move(argv);
  } else {
    o["prompt"] = r.prompt;
    if (!r.model.empty()) o["model"] = r.model;
    json::array extra;
    for (const auto& a : r.extra_args) extra.emplace_back(a);
    o["extra_args"] = std::move(extra);
  }
  json::object env;
  for (const auto& [k, v] : r.env) env[k] = v;
  o["env"] = std::move(env);
  o["timeout_s"] = r.timeout_s;
  if (r.cwd_given) o["cwd"] = r.cwd;
  return o;
}

}  // namespace sandboxd::runtimed
