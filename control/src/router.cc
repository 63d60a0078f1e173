#include "router.h"

#include "base/json_escape.h"

#include <array>

namespace sandboxd::control {

namespace {

bool is_v1(std::string_view path) { return path == "/v1" || path.starts_with("/v1/"); }

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

Response text(std::string body) {
  Response r;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

Response healthz() { return text("ok\n"); }

Response readyz(ReadinessSource& readiness) {
  std::vector<ReadyCheck> checks = readiness.readiness();
  bool all_ok = true;
  for (const auto& c : checks) all_ok = all_ok && c.ok;
  if (all_ok) return text("ready\n");
  Response r;
  r.status = 503;
  r.body = R"({"error":"not ready","code":"unavailable","checks":{)";
  for (std::size_t i = 0; i < checks.size(); ++i) {
    if (i > 0) r.body += ',';
    append_json_string(r.body, checks[i].name);
    r.body += ':';
    append_json_string(r.body, checks[i].ok ? std::string_view("ok") : checks[i].detail);
  }
  r.body += "}}";
  r.headers.emplace_back("Retry-After", "5");
  return r;
}

struct Route {
  std::string_view path;
  Response (*handler)(ReadinessSource&);
};

const std::array<Route, 2> kRoutes{{
    {"/healthz", [](ReadinessSource&) { return healthz(); }},
    {"/readyz", [](ReadinessSource& r) { return readyz(r); }},
}};

}  // namespace

Response error_response(std::string_view path, int status, std::string_view code,
                        std::string_view message) {
  Response r;
  r.status = status;
  if (is_v1(path)) {
    bool retryable = status == 429 || status == 502 || status == 503 || status == 504;
    r.body = R"({"error":{"code":)";
    append_json_string(r.body, code);
    r.body += R"(,"message":)";
    append_json_string(r.body, message);
    r.body += retryable ? R"(,"retryable":true}})" : R"(,"retryable":false}})";
  } else {
    r.body = R"({"error":)";
    append_json_string(r.body, message);
    r.body += R"(,"code":)";
    append_json_string(r.body, code);
    r.body += '}';
  }
  return r;
}

Response route(const Request& request, ReadinessSource& readiness) {
  std::string_view path = path_of(request.target);
  for (const Route& rt : kRoutes) {
    if (rt.path != path) continue;
    if (request.method == "GET" || request.method == "HEAD") return rt.handler(readiness);
    Response r = error_response(path, 405, "method_not_allowed", "method not allowed");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  return error_response(path, 404, "not_found", "not found");
}

}  // namespace sandboxd::control
