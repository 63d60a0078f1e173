#include "runtimed/settings.h"

#include "base/json.h"
#include "base/ulid.h"
#include "runtimed/paths.h"

#include <boost/json.hpp>

namespace sandboxd::runtimed {

namespace json = boost::json;

namespace {

Error invalid(std::string detail) { return Error{Errc::invalid_argument, std::move(detail)}; }

// An integer field within [lo, hi]; absent keeps *out.
Status read_int(const json::object& o, std::string_view key, std::string_view path,
                std::int64_t lo, std::int64_t hi, std::int64_t* out) {
  const json::value* v = o.if_contains(key);
  if (!v) return ok();
  std::int64_t n;
  if (v->is_int64()) {
    n = v->as_int64();
  } else if (v->is_uint64()) {
    return invalid(std::string(path) + ": out of range");
  } else {
    return invalid(std::string(path) + ": must be an integer");
  }
  if (n < lo || n > hi) {
    return invalid(std::string(path) + ": must be between " + std::to_string(lo) + " and " +
                   std::to_string(hi));
  }
  *out = n;
  return ok();
}

const json::object* read_object(const json::object& o, std::string_view key, Status* st) {
  const json::value* v = o.if_contains(key);
  if (!v) return nullptr;
  if (!v->is_object()) {
    *st = invalid(std::string(key) + ": must be an object");
    return nullptr;
  }
  return &v->get_object();
}

bool is_hex(std::string_view s) {
  for (char c : s) {
    bool digit = c >= '0' && c <= '9';
    bool lower = c >= 'a' && c <= 'f';
    bool upper = c >= 'A' && c <= 'F';
    if (!digit && !lower && !upper) return false;
  }
  return true;
}

}  // namespace

Result<Settings> parse_settings(std::string_view text) {
  auto parsed = parse_json_object(text);
  if (!parsed) return parsed.error();
  const json::object& root = *parsed;
  Settings s;

  const json::value* version = root.if_contains("version");
  if (!version) return invalid("version: required");
  if (!version->is_int64() || version->as_int64() != 1) {
    return invalid("version: unsupported (this runtimed reads version 1)");
  }

  const json::value* id = root.if_contains("sandbox_id");
  if (!id || !id->is_string()) return invalid("sandbox_id: required string");
  auto ulid = Ulid::parse(std::string_view(id->get_string()));
  if (!ulid) return invalid("sandbox_id: not a valid id");
  s.sandbox_id = ulid->str();

  const json::value* secret = root.if_contains("secret");
  if (!secret || !secret->is_string()) return invalid("secret: required string");
  std::string_view secret_text = secret->get_string();
  if (secret_text.size() != 64 || !is_hex(secret_text)) {
    return invalid("secret: must be 64 hexadecimal characters");
  }
  s.secret = std::string(secret_text);

  if (const json::value* pd = root.if_contains("project_dir")) {
    if (!pd->is_string()) return invalid("project_dir: must be a string");
    auto normalized = normalize_relative_path(std::string_view(pd->get_string()), "project_dir");
    if (!normalized) return normalized.error();
    s.project_dir = *normalized;
  }

  Status st = ok();
  if (const json::object* dev = read_object(root, "dev", &st)) {
    if (const json::value* cmd = dev->if_contains("command")) {
      if (!cmd->is_string()) return invalid("dev.command: must be a string");
      std::string_view c = cmd->get_string();
      if (c.find('\0') != std::string_view::npos) return invalid("dev.command: contains a NUL byte");
      s.dev.command = std::string(c);
    }
    std::int64_t port = s.dev.port;
    if (Status r = read_int(*dev, "port", "dev.port", 1, 65535, &port); !r) return r.error();
    s.dev.port = static_cast<int>(port);
  }
  if (!st) return st.error();

  if (const json::object* tasks = read_object(root, "tasks", &st)) {
    std::int64_t timeout = s.tasks.timeout_s;
    std::int64_t queued = s.tasks.max_queued;
    std::int64_t grace = s.tasks.cancel_grace_ms;
    auto output = static_cast<std::int64_t>(s.tasks.max_output_bytes);
    if (Status r = read_int(*tasks, "timeout_s", "tasks.timeout_s", 1, 86400, &timeout); !r)
      return r.error();
    if (Status r = read_int(*tasks, "max_queued", "tasks.max_queued", 0, 10000, &queued); !r)
      return r.error();
    if (Status r = read_int(*tasks, "cancel_grace_ms", "tasks.cancel_grace_ms", 0, 600000, &grace);
        !r)
      return r.error();
    if (Status r = read_int(*tasks, "max_output_bytes", "tasks.max_output_bytes", 1024,
                            std::int64_t{1} << 40, &output);
        !r)
      return r.error();
    s.tasks.timeout_s = static_cast<int>(timeout);
    s.tasks.max_queued = static_cast<int>(queued);
    s.tasks.cancel_grace_ms = static_cast<int>(grace);
    s.tasks.max_output_bytes = static_cast<std::uint64_t>(output);
  }
  if (!st) return st.error();
  return s;
}

}  // namespace sandboxd::runtimed
