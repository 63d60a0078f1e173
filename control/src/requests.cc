#include "requests.h"

#include "base/clock.h"
#include "base/ulid.h"
#include "config/values.h"

#include <boost/json/value.hpp>

#include <set>

namespace sandboxd::control {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxPorts = 16;
constexpr std::size_t kMaxEnvEntries = 128;
constexpr std::size_t kMaxEnvNameBytes = 128;
constexpr std::size_t kMaxEnvValueBytes = 32 * 1024;
constexpr std::size_t kMaxEnvTotalBytes = 256 * 1024;
constexpr std::size_t kMaxGitUrlBytes = 2048;
constexpr std::size_t kMaxCmdItems = 256;
constexpr std::size_t kMaxCmdBytes = 64 * 1024;

// Reads typed fields from one JSON object and remembers the first problem. Field names in
// messages are full paths ("project.user_id", "ports[2]").
class Reader {
 public:
  Reader(const json::object& obj, std::string prefix, bool strict)
      : obj_(obj), prefix_(std::move(prefix)), strict_(strict) {}

  bool failed() const { return error_.has_value(); }
  ApiError error() const { return *error_; }
  std::string path(std::string_view key) const { return prefix_ + std::string(key); }

  void fail(ApiError e) {
    if (!error_) error_ = std::move(e);
  }
  void fail(std::string_view key, std::string_view message) {
    fail(ApiError::invalid(path(key) + ": " + std::string(message)));
  }

  const json::value* get(std::string_view key) {
    seen_.insert(std::string(key));
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &it->value();
  }

  std::optional<std::string> string(std::string_view key) {
    const json::value* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) {
      fail(key, "must be a string");
      return std::nullopt;
    }
    return std::string(v->get_string());
  }

  std::optional<bool> boolean(std::string_view key) {
    const json::value* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_bool()) {
      fail(key, "must be true or false");
      return std::nullopt;
    }
    return v->get_bool();
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const json::value* v = get(key);
    if (!v) return std::nullopt;
    return integer_value(*v, path(key), min, max);
  }

  std::optional<std::int64_t> integer_value(const json::value& v, const std::string& where,
                                            std::int64_t min, std::int64_t max) {
    std::string range = "must be between " + std::to_string(min) + " and " + std::to_string(max);
    if (v.is_uint64()) {  // above INT64_MAX: out of every range we use
      fail(ApiError::invalid(where + ": " + range));
      return std::nullopt;
    }
    if (!v.is_int64()) {
      fail(ApiError::invalid(where + ": must be an integer"));
      return std::nullopt;
    }
    std::int64_t n = v.get_int64();
    if (n < min || n > max) {
      fail(ApiError::invalid(where + ": " + range));
      return std::nullopt;
    }
    return n;
  }

  const json::object* object(std::string_view key) {
    const json::value* v = get(key);
    if (!v) return nullptr;
    if (!v->is_object()) {
      fail(key, "must be an object");
      return nullptr;
    }
    return &v->get_object();
  }

  const json::array* array(std::string_view key) {
    const json::value* v = get(key);
    if (!v) return nullptr;
    if (!v->is_array()) {
      fail(key, "must be an array");
      return nullptr;
    }
    return &v->get_array();
  }

  // In strict (v1) mode, a field nobody asked for is an error naming it.
  void finish() {
    if (!strict_ || error_) return;
    for (const auto& kv : obj_) {
      if (!seen_.contains(std::string(kv.key()))) {
        fail(ApiError::invalid(path(kv.key()) + ": unknown field"));
        return;
      }
    }
  }

 private:
  const json::object& obj_;
  std::string prefix_;
  bool strict_;
  std::set<std::string> seen_;
  std::optional<ApiError> error_;
};

bool valid_utf8_no_nul(std::string_view s) {
  // The JSON parser already guarantees UTF-8; only NUL remains to refuse.
  return s.find('\0') == std::string_view::npos;
}

bool env_name_ok(std::string_view name) {
  if (name.empty() || name.size() > kMaxEnvNameBytes) return false;
  auto first = [](char c) { return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  if (!first(name[0])) return false;
  for (char c : name) {
    if (!first(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::optional<std::map<std::string, std::string>> read_env(Reader& r, std::string_view key) {
  const json::object* obj = r.object(key);
  std::map<std::string, std::string> env;
  if (!obj) return env;
  for (const auto& kv : *obj) {
    if (!kv.value().is_string()) {
      r.fail(r.path(key) + "." + std::string(kv.key()), "must be a string");
      return std::nullopt;
    }
    env.emplace(std::string(kv.key()), std::string(kv.value().get_string()));
  }
  if (auto problem = env_problem(env)) {
    r.fail(key, *problem);
    return std::nullopt;
  }
  return env;
}

void read_ports(Reader& r, const RequestLimits& limits, std::vector<std::uint16_t>& out) {
  const json::array* arr = r.array("ports");
  if (!arr) return;
  if (arr->size() > kMaxPorts) {
    r.fail("ports", "at most 16 ports");
    return;
  }
  out.clear();
  for (std::size_t i = 0; i < arr->size(); ++i) {
    std::string where = r.path("ports") + "[" + std::to_string(i) + "]";
    auto port = r.integer_value((*arr)[i], where, 1, 65535);
    if (!port) return;
    auto p = static_cast<std::uint16_t>(*port);
    bool allowed = false;
    for (const auto& range : limits.allowed_ports) allowed = allowed || range.contains(p);
    if (!allowed) {
      r.fail(ApiError::invalid(where + ": port " + std::to_string(p) +
                               " is not in preview.allowed_ports"));
      return;
    }
    for (auto existing : out) {
      if (existing == p) {
        r.fail(ApiError::invalid(where + ": duplicate port " + std::to_string(p)));
        return;
      }
    }
    out.push_back(p);
  }
}

std::optional<std::string> read_external(Reader& r, std::string_view key) {
  auto v = r.string(key);
  if (!v) return std::nullopt;
  if (auto problem = external_id_problem(*v)) {
    r.fail(key, *problem);
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> git_url_problem(std::string_view url) {
  if (url.size() > kMaxGitUrlBytes) return "at most 2048 bytes";
  if (!url.starts_with("https://")) return "must be an https:// URL";
  std::string_view rest = url.substr(8);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty()) return "must name a host";
  if (authority.find('@') != std::string_view::npos) return "must not contain credentials";
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) return "must not contain spaces or control characters";
  }
  return std::nullopt;
}

bool template_name_ok(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// Fields shared by legacy and v1 creates.
void read_common_create(Reader& r, const RequestLimits& limits, CreateRequest& req) {
  if (auto id = r.string("id")) {
    auto parsed = parse_sandbox_id(*id);
    if (!parsed) {
      r.fail(parsed.error());
    } else {
      req.id = *parsed;
    }
  }
  read_ports(r, limits, req.ports);
  if (auto v = r.string("visibility")) {
    if (*v == "public") req.visibility = Visibility::public_;
    else if (*v == "private") req.visibility = Visibility::private_;
    else r.fail("visibility", "must be \"public\" or \"private\"");
  }
  if (auto v = r.string("idle_policy")) {
    if (*v == "sleep") req.idle_policy = IdlePolicy::sleep;
    else if (*v == "always_on") req.idle_policy = IdlePolicy::always_on;
    else r.fail("idle_policy", "must be \"sleep\" or \"always_on\"");
  }
  if (auto url = r.string("git_remote_url")) {
    if (auto problem = git_url_problem(*url)) r.fail("git_remote_url", *problem);
    else req.git_remote_url = *url;
  }
  if (auto env = read_env(r, "env")) req.env = std::move(*env);
  if (auto t = r.string("template")) {
    if (!template_name_ok(*t)) r.fail("template", "must match [a-z0-9-]{1,64}");
    else req.template_name = *t;
  }
}

}  // namespace

std::string_view to_string(Visibility v) { return v == Visibility::private_ ? "private" : "public"; }
std::string_view to_string(IdlePolicy p) { return p == IdlePolicy::always_on ? "always_on" : "sleep"; }

ApiResult<std::string> parse_sandbox_id(std::string_view text) {
  auto id = Ulid::parse(text);
  if (!id) return ApiError::invalid_id("invalid sandbox id: " + id.error().detail);
  return id->str();
}

std::optional<std::string> external_id_problem(std::string_view value) {
  if (value.empty() || value.size() > 256) return "must be 1 to 256 bytes";
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return "must not contain control characters";
    if (c == ',') return "must not contain a comma";
  }
  return std::nullopt;
}

std::optional<std::string> env_problem(const std::map<std::string, std::string>& env) {
  if (env.size() > kMaxEnvEntries) return "at most 128 variables";
  std::size_t total = 0;
  for (const auto& [name, value] : env) {
    if (!env_name_ok(name)) return "invalid variable name \"" + name.substr(0, 130) + "\"";
    if (name == "HOME" || name.starts_with("SANDBOX_") || name.starts_with("SANDBOXD_")) {
      return "variable name " + name + " is reserved";
    }
    if (value.size() > kMaxEnvValueBytes) return "value of " + name + " is over 32 KiB";
    if (!valid_utf8_no_nul(value)) return "value of " + name + " contains NUL";
    total += name.size() + value.size();
  }
  if (total > kMaxEnvTotalBytes) return "over 256 KiB in total";
  return std::nullopt;
}

ApiResult<CreateRequest> parse_legacy_create(const json::object& body,
                                             const RequestLimits& limits) {
  Reader r(body, "", false);
  CreateRequest req;
  req.user_id = "local";
  read_common_create(r, limits, req);
  if (r.get("template_path")) r.fail("template_path", "is not supported; use template");
  r.get("memory_high");  // accepted and ignored (SPEC §2.5.1)
  if (const json::object* ext = r.object("external")) {
    Reader e(*ext, "external.", false);
    if (auto u = read_external(e, "user_id")) {
      req.user_id = *u;
      req.user_id_given = true;
    }
    req.project_id = read_external(e, "project_id");
    req.workspace_id = read_external(e, "workspace_id");
    if (e.failed()) r.fail(e.error());
  }
  r.finish();
  if (r.failed()) return r.error();
  return req;
}

ApiResult<CreateRequest> parse_v1_create(const json::object& body, const RequestLimits& limits) {
  Reader r(body, "", true);
  CreateRequest req;
  req.ports = {3000};
  if (r.get("from_snapshot")) {
    return ApiError{501, "not_implemented", "snapshots are not available in this version", {}};
  }
  const json::object* project = r.object("project");
  if (!project && !r.failed()) r.fail("project", "is required");
  if (project) {
    Reader p(*project, "project.", true);
    auto id = read_external(p, "id");
    auto user = read_external(p, "user_id");
    req.workspace_id = read_external(p, "workspace_id");
    if (!p.failed() && !id) p.fail("id", "is required");
    if (!p.failed() && !user) p.fail("user_id", "is required");
    p.finish();
    if (p.failed()) r.fail(p.error());
    if (id) req.project_id = *id;
    if (user) req.user_id = *user;
    req.user_id_given = user.has_value();
  }
  read_common_create(r, limits, req);
  if (const json::object* res = r.object("resources")) {
    Reader x(*res, "resources.", true);
    if (auto mem = x.string("memory")) {
      auto bytes = config::parse_size(*mem);
      if (!bytes || *bytes == 0) x.fail("memory", "expected a size like 1GiB");
      else req.memory_bytes = *bytes;
    }
    if (const json::value* cpus = x.get("cpus")) {
      double c = cpus->is_number() ? cpus->to_number<double>() : -1;
      if (!cpus->is_number() || !(c > 0) || c > 1024) x.fail("cpus", "must be a number above 0");
      else req.cpus_milli = static_cast<std::uint32_t>(c * 1000 + 0.5);
    }
    if (auto pids = x.integer("pids", 1, 1'000'000)) req.pids = static_cast<std::uint32_t>(*pids);
    x.finish();
    if (x.failed()) r.fail(x.error());
  }
  if (const json::object* dev = r.object("dev")) {
    Reader d(*dev, "dev.", true);
    if (auto cmd = d.string("command")) {
      if (cmd->empty() || cmd->size() > 4096 || !valid_utf8_no_nul(*cmd)) {
        d.fail("command", "must be 1 to 4096 bytes without NUL");
      } else {
        req.dev_command = *cmd;
      }
    }
    if (auto port = d.integer("port", 1, 65535)) req.dev_port = static_cast<std::uint16_t>(*port);
    d.finish();
    if (d.failed()) r.fail(d.error());
  }
  r.finish();
  if (r.failed()) return r.error();
  return req;
}

ApiResult<ClaimRequest> parse_claim(const json::object& body) {
  Reader r(body, "", false);
  ClaimRequest req;
  auto user = read_external(r, "external_user_id");
  if (!r.failed() && !user) r.fail("external_user_id", "is required");
  if (user) req.user_id = *user;
  // Optional owner fields: absent keeps, null clears, a string replaces.
  auto optional_external = [&r](std::string_view key) -> std::optional<std::optional<std::string>> {
    const json::value* v = r.get(key);
    if (!v) return std::nullopt;
    if (v->is_null()) return std::optional<std::string>();
    auto value = read_external(r, key);
    if (!value) return std::nullopt;
    return std::optional<std::string>(*value);
  };
  req.project_id = optional_external("external_project_id");
  req.workspace_id = optional_external("external_workspace_id");
  r.finish();
  if (r.failed()) return r.error();
  return req;
}

ApiResult<PatchRequest> parse_patch(const json::object& body, const RequestLimits& limits) {
  Reader r(body, "", true);
  PatchRequest req;
  auto is_null = [&r](std::string_view key) {
    const json::value* v = r.get(key);
    return v && v->is_null();
  };
  if (is_null("visibility")) {
    req.visibility = Visibility::public_;
  } else if (auto v = r.string("visibility")) {
    if (*v == "public") req.visibility = Visibility::public_;
    else if (*v == "private") req.visibility = Visibility::private_;
    else r.fail("visibility", "must be \"public\" or \"private\"");
  }
  if (is_null("idle_policy")) {
    req.idle_policy = IdlePolicy::sleep;
  } else if (auto v = r.string("idle_policy")) {
    if (*v == "sleep") req.idle_policy = IdlePolicy::sleep;
    else if (*v == "always_on") req.idle_policy = IdlePolicy::always_on;
    else r.fail("idle_policy", "must be \"sleep\" or \"always_on\"");
  }
  if (is_null("ports")) {
    req.ports = std::vector<std::uint16_t>{3000};
  } else if (r.get("ports")) {
    std::vector<std::uint16_t> ports;
    read_ports(r, limits, ports);
    req.ports = std::move(ports);
  }
  if (is_null("git_remote_url")) {
    req.git_remote_url = std::optional<std::string>();
  } else if (auto url = r.string("git_remote_url")) {
    if (auto problem = git_url_problem(*url)) r.fail("git_remote_url", *problem);
    else req.git_remote_url = std::optional<std::string>(*url);
  }
  if (is_null("keepalive_until")) {
    req.keepalive_until_ms = std::optional<std::int64_t>();
  } else if (auto t = r.string("keepalive_until")) {
    auto ms = parse_rfc3339_ms(*t);
    if (!ms) r.fail("keepalive_until", "must be an RFC 3339 UTC time like 2026-11-22T15:02:07Z");
    else req.keepalive_until_ms = std::optional<std::int64_t>(*ms);
  }
  r.finish();
  if (r.failed()) return r.error();
  return req;
}

ApiResult<ExecRequest> parse_exec(const json::object& body, const RequestLimits& limits,
                                  bool v1) {
  Reader r(body, "", v1);
  ExecRequest req;
  const json::array* cmd = r.array("cmd");
  if (!cmd && !r.failed()) r.fail("cmd", "is required");
  if (cmd) {
    if (cmd->empty() || cmd->size() > kMaxCmdItems) r.fail("cmd", "must have 1 to 256 items");
    std::size_t total = 0;
    for (std::size_t i = 0; i < cmd->size() && !r.failed(); ++i) {
      const json::value& item = (*cmd)[i];
      std::string where = "cmd[" + std::to_string(i) + "]";
      if (!item.is_string()) {
        r.fail(ApiError::invalid(where + ": must be a string"));
        break;
      }
      std::string s(item.get_string());
      if (!valid_utf8_no_nul(s)) r.fail(ApiError::invalid(where + ": contains NUL"));
      total += s.size();
      req.cmd.push_back(std::move(s));
    }
    if (total > kMaxCmdBytes) r.fail("cmd", "over 64 KiB in total");
  }
  if (auto env = read_env(r, "env")) req.env = std::move(*env);
  if (auto cwd = r.string("cwd")) {
    if (cwd->empty() || cwd->front() != '/' || !valid_utf8_no_nul(*cwd) || cwd->size() > 4096) {
      r.fail("cwd", "must be an absolute path");
    } else {
      req.cwd = *cwd;
    }
  }
  auto max_s = std::chrono::duration_cast<std::chrono::seconds>(limits.exec_max_timeout).count();
  if (auto t = r.integer("timeout_s", 1, max_s)) {
    req.timeout = std::chrono::seconds(*t);
    req.timeout_given = true;
  } else {
    req.timeout = limits.exec_timeout;
  }
  if (v1) {
    if (auto d = r.boolean("detach")) req.detach = *d;
  }
  if (auto s = r.boolean("stream")) req.stream = *s;
  r.finish();
  if (r.failed()) return r.error();
  return req;
}

ApiResult<StopRequest> parse_stop(const json::object& body) {
  Reader r(body, "", true);
  StopRequest req;
  if (auto f = r.boolean("force")) req.force = *f;
  if (auto t = r.integer("timeout_s", 1, 120)) req.timeout = std::chrono::seconds(*t);
  r.finish();
  if (r.failed()) return r.error();
  return req;
}

ApiResult<KeepaliveRequest> parse_keepalive(const json::object& body) {
  Reader r(body, "", false);
  KeepaliveRequest req;
  if (auto until = r.integer("until", 0, INT64_MAX)) req.until_unix_s = *until;
  r.finish();
  if (r.failed()) return r.error();
  return req;
}

}  // namespace sandboxd::control
