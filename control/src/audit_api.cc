#include "audit_api.h"

#include "api_error.h"
#include "base/clock.h"
#include "requests.h"
#include "router.h"
#include "store/audit_repo.h"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include <charconv>

namespace sandboxd::control {

namespace json = boost::json;

namespace {

constexpr int kDefaultLimit = 100;
constexpr int kMaxLimit = 1000;

std::optional<std::int64_t> parse_decimal(std::string_view t) {
  std::int64_t v = 0;
  if (t.empty() || t.size() > 18 || t.front() == '-' || t.front() == '+') return std::nullopt;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || end != t.data() + t.size()) return std::nullopt;
  return v;
}

// The cursor is the position of the last row served, "<ts>.<id>": self-contained, so a
// page stays valid when the retention sweep deletes the row it names.
std::string make_cursor(const store::AuditRow& row) {
  return std::to_string(row.ts) + "." + std::to_string(row.id);
}

std::optional<std::pair<std::int64_t, std::int64_t>> parse_cursor(std::string_view t) {
  const auto dot = t.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto ts = parse_decimal(t.substr(0, dot));
  auto id = parse_decimal(t.substr(dot + 1));
  if (!ts || !id) return std::nullopt;
  return std::pair{*ts, *id};
}

json::object entry(const store::AuditRow& row) {
  json::object o;
  o["id"] = row.id;
  o["ts"] = format_rfc3339(Clock::WallTime(std::chrono::milliseconds(row.ts)));
  o["actor"] = row.actor;
  if (row.actor_ip) o["actor_ip"] = *row.actor_ip;
  if (row.request_id) o["request_id"] = *row.request_id;
  o["action"] = row.action;
  if (row.sandbox_id) o["sandbox_id"] = *row.sandbox_id;
  // The column holds valid JSON (a CHECK); rows written by sandboxd hold objects. Anything
  // else is shown under "value" so that `detail` is always an object.
  boost::system::error_code ec;
  json::value detail = json::parse(row.detail, ec);
  if (ec) detail = json::object{};
  if (!detail.is_object()) detail = json::object{{"value", std::move(detail)}};
  o["detail"] = std::move(detail);
  return o;
}

// The query of GET /v1/audit as a store filter; every problem is a 400 naming the parameter.
ApiResult<store::AuditFilter> parse_filter(const Request& r) {
  store::AuditFilter f;
  f.limit = kDefaultLimit;
  for (const char* name : {"sandbox_id", "action", "actor", "since", "limit", "cursor"}) {
    auto given = query_string(r, name);
    if (!given) return given.error();
    const std::optional<std::string>& v = *given;
    if (!v) continue;
    const std::string_view key = name;
    if (key == "sandbox_id") {
      auto id = parse_sandbox_id(*v);
      if (!id) return ApiError::invalid("sandbox_id: " + id.error().message);
      f.sandbox_id = *id;
    } else if (key == "action" || key == "actor") {
      if (v->empty() || v->size() > 256) {
        return ApiError::invalid(std::string(key) + ": must be 1-256 characters");
      }
      (key == "action" ? f.action : f.actor) = *v;
    } else if (key == "since") {
      auto ms = parse_rfc3339_ms(*v);
      if (!ms) return ApiError::invalid("since: expected an RFC 3339 UTC time like 2026-11-22T15:02:07Z");
      f.since_ms = *ms;
    } else if (key == "limit") {
      auto n = parse_decimal(*v);
      if (!n || *n < 1 || *n > kMaxLimit) {
        return ApiError::invalid("limit: must be an integer from 1 to 1000");
      }
      f.limit = static_cast<int>(*n);
    } else {
      auto after = parse_cursor(*v);
      if (!after) return ApiError::invalid("cursor: unknown cursor");
      f.after = *after;
    }
  }
  return f;
}

}  // namespace

boost::asio::awaitable<Response> AuditApi::list(Request& r) {
  auto filter = parse_filter(r);
  if (!filter) co_return error_answer(r, filter.error());
  const int limit = filter->limit;
  filter->limit = limit + 1;  // one more tells whether there is a next page
  auto rows = store::audit_repo::list(store_, *filter);
  if (!rows) co_return error_answer(r, ApiError::from(rows.error()));
  json::array entries;
  const std::size_t shown = std::min(rows->size(), static_cast<std::size_t>(limit));
  for (std::size_t i = 0; i < shown; ++i) entries.push_back(entry((*rows)[i]));
  json::object o;
  o["entries"] = std::move(entries);
  if (rows->size() > shown) o["next_cursor"] = make_cursor((*rows)[shown - 1]);
  co_return json_answer(200, o);
}

}  // namespace sandboxd::control
