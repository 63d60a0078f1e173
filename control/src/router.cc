#include "router.h"

#include "base/json_escape.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace sandboxd::control {

namespace {

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  if (!path.empty() && path[0] == '/') i = 1;
  while (i <= path.size()) {
    std::size_t slash = path.find('/', i);
    if (slash == std::string_view::npos) slash = path.size();
    out.push_back(path.substr(i, slash - i));
    i = slash + 1;
  }
  return out;
}

// Matches `path` against `pattern`; fills raw parameter values.
bool matches(std::string_view pattern, std::string_view path,
             std::vector<std::string_view>& params) {
  auto p = segments(pattern);
  auto s = segments(path);
  if (p.size() != s.size()) return false;
  params.clear();
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i].size() > 2 && p[i].front() == '{' && p[i].back() == '}') {
      if (s[i].empty()) return false;
      params.push_back(s[i]);
    } else if (p[i] != s[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

void Router::add(Route route) { routes_.push_back(std::move(route)); }

RouteMatch Router::match(std::string_view method, std::string_view path) const {
  RouteMatch m;
  std::vector<std::string_view> raw;
  for (const Route& r : routes_) {
    if (!matches(r.pattern, path, raw)) continue;
    m.path_known = true;
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += r.method;
    if (r.method == "GET") m.allow += ", HEAD";
    bool method_ok = r.method == method || (r.method == "GET" && method == "HEAD");
    if (!method_ok || m.route) continue;
    m.route = &r;
    for (auto v : raw) {
      auto decoded = percent_decode(v);
      if (!decoded) m.bad_escape = true;
      m.params.push_back(decoded.value_or(""));
    }
  }
  return m;
}

Family family_of(std::string_view path) {
  return path == "/v1" || path.starts_with("/v1/") ? Family::v1 : Family::legacy;
}

Response error_response(std::string_view path, int status, std::string_view code,
                        std::string_view message) {
  Response r;
  r.status = status;
  if (family_of(path) == Family::v1) {
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

Response error_answer(const Request& req, const ApiError& e) {
  Response r = error_response(req.path, e.status, e.code, e.message);
  if (!e.legacy_body.empty() && family_of(req.path) == Family::legacy) r.body = e.legacy_body;
  for (const auto& h : e.headers) r.headers.push_back(h);
  return r;
}

Response json_answer(int status, const boost::json::value& v) {
  Response r;
  r.status = status;
  r.body = boost::json::serialize(v);
  return r;
}

ApiResult<std::optional<std::string>> query_string(const Request& r, std::string_view name) {
  bool repeated = false;
  auto v = r.query_param(name, &repeated);
  if (repeated) return ApiError::invalid(std::string(name) + ": given more than once");
  return v;
}

std::optional<ApiError> tenant_mismatch(const Request& r, std::string_view user) {
  if (!r.tenant || *r.tenant == user) return std::nullopt;
  return ApiError{403, "forbidden", "this token acts for one user only and may not act for another", {}};
}

std::optional<ApiError> scope_to_tenant(const Request& r, std::optional<std::string>& user_filter) {
  if (!r.tenant) return std::nullopt;
  if (user_filter) {
    if (auto e = tenant_mismatch(r, *user_filter)) return e;
  }
  user_filter = *r.tenant;
  return std::nullopt;
}

}  // namespace sandboxd::control
