#include "access_log.h"

#include "base/json_escape.h"

#include <ctime>

namespace sandboxd::edge::detail {

namespace {

constexpr std::size_t kMaxTarget = 2048;
constexpr std::size_t kMaxAgent = 512;

void append_ts(std::string& out, std::int64_t unix_ms) {
  std::time_t secs = unix_ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  out.push_back('"');
  out.append(buf);
  out.push_back('"');
}

// `sandbox_token=<value>` in a query becomes `sandbox_token=REDACTED`; the result is cut.
std::string redact(std::string_view text, std::size_t limit) {
  std::string out;
  const std::size_t q = text.find('?');
  if (q == std::string_view::npos) {
    out.assign(text.substr(0, limit));
    return out;
  }
  out.assign(text.substr(0, q + 1));
  std::string_view query = text.substr(q + 1);
  bool first = true;
  while (true) {
    const std::size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    if (!first) out.push_back('&');
    first = false;
    if (param.starts_with("sandbox_token=")) {
      out.append("sandbox_token=REDACTED");
    } else {
      out.append(param);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  if (out.size() > limit) out.resize(limit);
  return out;
}

void key(std::string& out, std::string_view k) {
  out.push_back(',');
  out.push_back('"');
  out.append(k);
  out.append("\":");
}

void string_or_null(std::string& out, std::string_view k, std::string_view v) {
  key(out, k);
  if (v.empty()) {
    out.append("null");
  } else {
    append_json_string(out, v);
  }
}

}  // namespace

void format_access_line(const AccessRecord& r, std::string& out) {
  out.clear();
  out.append("{\"ts\":");
  append_ts(out, r.ts_ms);
  key(out, "request_id");
  append_json_string(out, r.request_id);
  key(out, "client_ip");
  append_json_string(out, r.client_ip);
  key(out, "client_port");
  out.append(std::to_string(r.client_port));
  key(out, "listener");
  out.append(r.https ? "\"https\"" : "\"http\"");
  key(out, "tls");
  append_json_string(out, r.tls);
  key(out, "method");
  append_json_string(out, r.method);
  key(out, "host");
  append_json_string(out, r.host);
  key(out, "target");
  append_json_string(out, redact(r.target, kMaxTarget));
  key(out, "proto");
  append_json_string(out, r.proto);
  key(out, "status");
  out.append(std::to_string(r.status));
  key(out, "bytes_in");
  out.append(std::to_string(r.bytes_in));
  key(out, "bytes_out");
  out.append(std::to_string(r.bytes_out));
  key(out, "duration_ms");
  out.append(std::to_string(r.duration_ms));
  key(out, "upstream_ms");
  out.append(r.upstream_ms ? std::to_string(*r.upstream_ms) : "null");
  key(out, "sandbox_id");
  if (r.sandbox_id) {
    append_json_string(out, *r.sandbox_id);
    key(out, "port");
    out.append(std::to_string(r.port));
  } else {
    out.append("null");
    key(out, "port");
    out.append("null");
  }
  string_or_null(out, "route", r.route);
  string_or_null(out, "error", r.error);
  string_or_null(out, "wake", r.wake);
  key(out, "held_ms");
  out.append(std::to_string(r.held_ms));
  key(out, "retried");
  out.append(r.retried ? "true" : "false");
  key(out, "auth");
  out.append("\"public\"");
  string_or_null(out, "user_agent", redact(r.user_agent, kMaxAgent));
  string_or_null(out, "referer", redact(r.referer, kMaxAgent));
  out.push_back('}');
}

}  // namespace sandboxd::edge::detail
