#include "api.h"

#include "audit_api.h"
#include "events_api.h"
#include "llm_txt.h"
#include "base/json.h"
#include "base/log.h"
#include "base/ulid.h"
#include "certificates.h"
#include "edge/preview_auth.h"
#include "files_api.h"
#include "task_service.h"
#include "tasks_api.h"
#include "text_util.h"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <deque>

namespace sandboxd::control {

namespace json = boost::json;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

constexpr log::Logger kLog{"api"};

Actor actor_of(const Request& r) { return Actor{r.actor, r.peer_ip, r.request_id}; }

bool peer_in(const std::vector<config::Cidr>& nets, const std::string& ip) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(ip, ec);
  if (ec) return false;
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, addr.to_v6());
  }
  for (const auto& n : nets) {
    if (addr.is_v4() && !n.v6) {
      auto b = addr.to_v4().to_bytes();
      if (n.contains(false, b.data())) return true;
    } else if (addr.is_v6() && n.v6) {
      auto b = addr.to_v6().to_bytes();
      if (n.contains(true, b.data())) return true;
    }
  }
  return false;
}

// A JSON body; an empty one reads as {} where the route allows it.
ApiResult<json::object> body_object(const Request& r, bool empty_ok) {
  std::string_view body = r.body;
  bool blank = std::all_of(body.begin(), body.end(),
                           [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; });
  if (blank) {
    if (empty_ok) return json::object{};
    return ApiError::invalid("a JSON body is required");
  }
  auto obj = parse_json_object(body);
  if (!obj) return ApiError::invalid(obj.error().detail);
  return std::move(*obj);
}

ApiResult<std::optional<bool>> query_bool(const Request& r, std::string_view name) {
  bool repeated = false;
  auto v = r.query_param(name, &repeated);
  if (repeated) return ApiError::invalid(std::string(name) + ": given more than once");
  if (!v) return std::optional<bool>();
  auto b = parse_query_bool(*v);
  if (!b) return ApiError::invalid(std::string(name) + ": expected true, false, 1 or 0");
  return std::optional<bool>(*b);
}

// Exec output kept for a buffered answer: at most `max` bytes per stream.
struct Captured {
  std::string out, err;
  bool truncated = false;
  std::uint64_t max = 0;
  void add(docker::ExecStream s, std::string_view bytes) {
    std::string& dst = s == docker::ExecStream::err ? err : out;
    std::size_t room = dst.size() < max ? max - dst.size() : 0;
    if (bytes.size() > room) truncated = true;
    dst.append(bytes.substr(0, room));
  }
};

// NDJSON frames of a streaming exec (SPEC §2.6.8). Built outside the coroutines: g++ 12
// miscompiles braced initializers with string literals inside coroutine lambdas.
std::string ndjson(const json::object& o) { return json::serialize(o) + "\n"; }
std::string frame_start(const std::string& exec_id) {
  return ndjson({{"type", "start"}, {"exec_id", exec_id}});
}
std::string frame_output(docker::ExecStream s, const std::string& piece, bool raw) {
  const char* type = s == docker::ExecStream::err ? "stderr" : "stdout";
  if (raw) return ndjson({{"type", type}, {"data_b64", base64_encode(piece)}});
  return ndjson({{"type", type}, {"data", piece}});
}
std::string frame_heartbeat() { return ndjson({{"type", "heartbeat"}}); }
std::string frame_end(const ApiResult<ExecOutput>& result) {
  if (!result) {
    return ndjson({{"type", "error"}, {"code", result.error().code}, {"message", result.error().message}});
  }
  return ndjson({{"type", "exit"},
                 {"exit_code", result->exit_code ? json::value(*result->exit_code) : json::value(nullptr)},
                 {"timed_out", result->timed_out},
                 {"duration_ms", result->duration_ms}});
}

// The subset of a Docker inspect that legacy GET /sandbox/{id} returns (SPEC §2.5.3).
// NetworkSettings.IPAddress is the address on docker.network (Docker's own top-level field
// covers only its default bridge, which sandboxes never join).
json::object live_state(const docker::ContainerInfo& c, const std::string& network) {
  json::object state{{"Status", c.state.status},       {"Running", c.state.running},
                     {"ExitCode", c.state.exit_code},  {"OOMKilled", c.state.oom_killed},
                     {"StartedAt", c.state.started_at}, {"FinishedAt", c.state.finished_at}};
  json::object labels;
  for (const auto& [k, v] : c.labels) labels[k] = v;
  json::object networks;
  for (const auto& [name, endpoint] : c.networks) {
    networks[name] = json::object{{"IPAddress", endpoint.ip_address}};
  }
  json::object settings{{"IPAddress", c.ip_address(network)}, {"Networks", std::move(networks)}};
  return json::object{{"Id", c.id},
                      {"State", std::move(state)},
                      {"Config", json::object{{"Image", c.image}, {"Labels", std::move(labels)}}},
                      {"NetworkSettings", std::move(settings)}};
}

}  // namespace

// Legacy routes read destroyed and purged sandboxes as absent (SPEC §2.5).
ApiResult<store::SandboxRow> Api::legacy_row(const Request& r) const {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) return id.error();
  auto row = service_.get(*id);
  if (!row || row->status == "destroyed" || row->status == "purged") {
    return ApiError::not_found("no such sandbox " + *id);
  }
  return row;
}

Api::Api(SandboxService& service, const config::Config& config, const Authenticator& auth,
         ReadinessSource& readiness, ObjectContext objects)
    : service_(service), config_(config), auth_(auth), readiness_(readiness),
      objects_(std::move(objects)), files_(std::make_unique<FilesApi>(service, config)),
      preview_keys_(config.auth.preview.secrets) {
  add_routes();
}

Api::~Api() = default;

void Api::add_routes() {
  auto bind = [this](boost::asio::awaitable<Response> (Api::*fn)(Request&)) {
    return [this, fn](Request& r) { return (this->*fn)(r); };
  };
  auto open_text = [](std::string text) {
    return [text](Request&) -> boost::asio::awaitable<Response> {
      Response r;
      r.content_type = "text/plain; charset=utf-8";
      r.body = text;
      co_return r;
    };
  };
  add_route({"GET", "/healthz", open_text("ok\n"), true});
  add_route({"GET", "/readyz",
             [this](Request&) -> boost::asio::awaitable<Response> {
               std::vector<ReadyCheck> checks = readiness_.readiness();
               bool all_ok = std::all_of(checks.begin(), checks.end(),
                                         [](const ReadyCheck& c) { return c.ok; });
               Response r;
               if (all_ok) {
                 r.content_type = "text/plain; charset=utf-8";
                 r.body = "ready\n";
                 co_return r;
               }
               json::object c;
               for (const auto& check : checks) c[check.name] = check.ok ? "ok" : check.detail;
               r = json_answer(503, json::object{{"error", "not ready"}, {"code", "unavailable"},
                                                 {"checks", std::move(c)}});
               r.headers.emplace_back("Retry-After", "5");
               co_return r;
             },
             true});
  add_route({"GET", "/llm.txt",
             [](Request&) -> boost::asio::awaitable<Response> {
               Response r;
               r.content_type = "text/plain; charset=utf-8";
               r.headers.emplace_back("Cache-Control", "public, max-age=300");
               r.body = std::string(llm_txt());
               co_return r;
             },
             true});
  // Snapshots (SPEC §2.8, §2.5.11): routed, authenticated, then 501 with no side effect.
  auto not_yet = [](Request& r) -> boost::asio::awaitable<Response> {
    co_return error_answer(r, ApiError{501, "not_implemented", "snapshots are not available in this version", {}});
  };
  add_route({"POST", "/v1/snapshots", not_yet, false, true});
  add_route({"GET", "/v1/snapshots", not_yet});
  add_route({"GET", "/v1/snapshots/{snapshot}", not_yet});
  add_route({"DELETE", "/v1/snapshots/{snapshot}", not_yet, false, true});
  add_route({"POST", "/sandbox/{id}/snapshots", not_yet, false, true});
  add_route({"GET", "/sandbox/{id}/snapshots", not_yet});
  add_route({"POST", "/sandbox/{id}/restore", not_yet, false, true});
  // Legacy routes (SPEC §2.5).
  add_route({"POST", "/sandbox", bind(&Api::legacy_create), false, true, true});
  add_route({"GET", "/sandboxes", bind(&Api::legacy_list)});
  add_route({"GET", "/sandbox/{id}", bind(&Api::legacy_get)});
  add_route({"DELETE", "/sandbox/{id}", bind(&Api::legacy_destroy), false, true});
  add_route({"POST", "/sandbox/{id}/exec", bind(&Api::legacy_exec), false, true, true});
  add_route({"POST", "/sandbox/{id}/keepalive", bind(&Api::legacy_keepalive), false, true, true});
  add_route({"POST", "/wake/{id}", bind(&Api::legacy_wake), false, true, true});
  add_route({"POST", "/sandbox/{id}/purge", bind(&Api::legacy_purge), false, true, true});
  add_route({"POST", "/sandbox/{id}/claim", bind(&Api::legacy_claim), false, true, true});
  add_route({"POST", "/external-users/{user}/purge", bind(&Api::purge_external_user), false, true});
  add_route({"POST", "/external-projects/{project}/purge", bind(&Api::purge_external_project), false, true});
  // v1 routes (SPEC §2.6).
  add_route({"POST", "/v1/sandboxes", bind(&Api::v1_create), false, true, true});
  add_route({"GET", "/v1/sandboxes", bind(&Api::v1_list)});
  add_route({"GET", "/v1/sandboxes/{id}", bind(&Api::v1_get)});
  add_route({"DELETE", "/v1/sandboxes/{id}", bind(&Api::v1_delete), false, true});
  add_route({"PATCH", "/v1/sandboxes/{id}", bind(&Api::v1_patch), false, true, true});
  add_route({"POST", "/v1/sandboxes/{id}/start", bind(&Api::v1_start), false, true, true});
  add_route({"POST", "/v1/sandboxes/{id}/stop", bind(&Api::v1_stop), false, true, true});
  add_route({"POST", "/v1/sandboxes/{id}/exec", bind(&Api::v1_exec), false, true, true});
  // Files (SPEC §2.7.6-2.7.10); PUT takes the raw body.
  auto files = [this](boost::asio::awaitable<Response> (FilesApi::*fn)(Request&)) {
    return [this, fn](Request& r) { return (files_.get()->*fn)(r); };
  };
  add_route({"GET", "/v1/sandboxes/{id}/files", files(&FilesApi::list)});
  add_route({"PUT", "/v1/sandboxes/{id}/files", files(&FilesApi::write), false, true, false, true});
  add_route({"GET", "/v1/sandboxes/{id}/files/content", files(&FilesApi::read)});
  add_route({"GET", "/v1/sandboxes/{id}/export", files(&FilesApi::export_tar)});
  add_route({"POST", "/v1/sandboxes/{id}/preview-token", bind(&Api::mint_preview_token), false, true, true});
  // Certificates (SPEC §2.7.11, §10.5).
  add_route({"GET", "/v1/certificates", bind(&Api::certificates), false, false, false, false, true});
  add_route({"POST", "/v1/certificates/renew", bind(&Api::renew_certificates), false, true, false, false,
             true});
  // SPEC §2.5.15, §11: authenticated; absent (404) while metrics.enabled is false, which a
  // reload may change, so the handler decides.
  add_route({"GET", "/metrics", bind(&Api::metrics), false, false, false, false, true});
}

void Api::set_tasks(TaskService& tasks) {
  tasks_ = &tasks;
  tasks_api_ = std::make_unique<TasksApi>(tasks, service_, config_);
  auto on = [this](boost::asio::awaitable<Response> (TasksApi::*fn)(Request&)) {
    return [this, fn](Request& r) { return (tasks_api_.get()->*fn)(r); };
  };
  add_route({"POST", "/v1/sandboxes/{id}/tasks", on(&TasksApi::submit), false, true, true});
  add_route({"GET", "/v1/sandboxes/{id}/tasks", on(&TasksApi::list)});
  add_route({"GET", "/v1/sandboxes/{id}/tasks/{taskId}", on(&TasksApi::get)});
  add_route({"GET", "/v1/sandboxes/{id}/tasks/{taskId}/events", on(&TasksApi::events)});
  add_route({"POST", "/v1/sandboxes/{id}/tasks/{taskId}/cancel", on(&TasksApi::cancel), false, true, true});
  add_route({"GET", "/v1/sandboxes/{id}/logs", on(&TasksApi::logs)});
}

void Api::set_audit(store::Store& store) {
  audit_api_ = std::make_unique<AuditApi>(store);
  Route route{"GET", "/v1/audit", [this](Request& r) { return audit_api_->list(r); }};
  route.operator_only = true;
  add_route(std::move(route));
}

void Api::set_events(LifecycleEvents& events) {
  events_api_ = std::make_unique<EventsApi>(events);
  add_route({"GET", "/v1/events", [this](Request& r) { return events_api_->stream(r); }});
}

void Api::add_route(Route route) {
  if (std::find(route_patterns_.begin(), route_patterns_.end(), route.pattern) == route_patterns_.end()) {
    route_patterns_.push_back(route.pattern);
  }
  router_.add(std::move(route));
}

void Api::set_metrics(Metrics& metrics, MetricsSource& source) {
  metrics.set_api_routes(route_patterns_);
  metrics_ = &metrics;
  metrics_source_ = &source;
}

void Api::count(const Request& req, const Route* route, int status) const {
  if (!metrics_) return;
  std::size_t index = route_patterns_.size();
  if (route) {
    index = static_cast<std::size_t>(
        std::find(route_patterns_.begin(), route_patterns_.end(), route->pattern) - route_patterns_.begin());
  }
  double seconds = -1;  // not measured
  if (req.received != std::chrono::steady_clock::time_point{}) {
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - req.received).count();
  }
  metrics_->api_request(index, req.method, status, seconds);
}

std::optional<Response> Api::check_head(Request& req, std::optional<std::uint64_t> content_length) {
  RouteMatch m = router_.match(req.method, req.path);
  std::optional<Response> answer = check_head(req, content_length, m);
  if (answer) count(req, m.route, answer->status);
  return answer;
}

std::optional<Response> Api::check_head(Request& req, std::optional<std::uint64_t> content_length,
                                        RouteMatch& m) {
  if (peer_in(service_.sandbox_subnets(), req.peer_ip)) {
    return error_response(req.path, 403, "forbidden", "the control API is not reachable from a sandbox");
  }
  bool open = m.route && m.route->open;
  if (!open) {
    std::optional<std::string_view> authz = req.header("authorization");
    AuthResult a = auth_.check(authz);
    if (a.outcome == AuthOutcome::missing || a.outcome == AuthOutcome::malformed ||
        a.outcome == AuthOutcome::unknown) {
      Response r;
      if (family_of(req.path) == Family::v1) {
        r = error_response(req.path, 401, "unauthorized", "a valid bearer token is required");
      } else {
        r.status = 401;
        r.body = R"({"error":"unauthorized","code":"unauthorized"})";
      }
      r.headers.emplace_back("WWW-Authenticate", a.outcome == AuthOutcome::missing
                                                     ? R"(Bearer realm="sandboxd")"
                                                     : R"(Bearer realm="sandboxd", error="invalid_token")");
      return r;
    }
    req.actor = a.actor();
    if (!a.user_id.empty()) req.tenant = a.user_id;
    if (a.read_only && m.route && m.route->mutating) {
      return error_response(req.path, 403, "forbidden",
                            "token " + a.token_name + " is read-only");
    }
    if (req.tenant && m.route && m.route->operator_only) {
      return error_response(req.path, 403, "forbidden",
                            "token " + a.token_name + " acts for one user; this route is for operators");
    }
  }
  if (!m.route) {
    if (!m.path_known) return error_response(req.path, 404, "not_found", "not found");
    Response r = error_response(req.path, 405, "method_not_allowed", "method not allowed");
    r.headers.emplace_back("Allow", m.allow);
    return r;
  }
  if (m.bad_escape) return error_response(req.path, 400, "invalid_id", "malformed percent-escape in the path");
  if (m.route->raw_body && content_length && *content_length > config_.files.write_max) {
    Response r = error_response(req.path, 413, "payload_too_large",
                                "the body is larger than files.write_max");
    r.close = true;
    return r;
  }
  if (m.route->json_body) {
    if (content_length && *content_length > config_.control.max_json_body) {
      Response r = error_response(req.path, 413, "payload_too_large", "request body too large");
      r.close = true;
      return r;
    }
    if (auto ct = req.header("content-type")) {
      std::string type(ct->substr(0, ct->find(';')));
      type.erase(std::remove(type.begin(), type.end(), ' '), type.end());
      std::transform(type.begin(), type.end(), type.begin(), ::tolower);
      bool merge_patch = req.method == "PATCH" && type == "application/merge-patch+json";
      if (type != "application/json" && !merge_patch) {
        return error_response(req.path, 415, "unsupported_media_type",
                              "request bodies are application/json");
      }
    }
  }
  req.route = m.route;
  req.params = std::move(m.params);
  if (req.tenant) return check_owner(req);
  return std::nullopt;
}

// A tenant's token sees its own sandboxes only: any other sandbox reads as absent, so an
// id never tells one tenant that another's sandbox exists (SPEC §5.7). Unknown ids go on
// to the handler (a create may use them; everything else answers 404 there).
std::optional<Response> Api::check_owner(const Request& req) const {
  if (req.route->pattern.find("{id}") == std::string::npos) return std::nullopt;
  auto id = parse_sandbox_id(req.params[0]);
  if (!id) return std::nullopt;  // the handler answers 400
  auto row = service_.get(*id);
  if (!row || row->status == "purged") return std::nullopt;
  if (row->external_user_id.value_or("local") == *req.tenant) return std::nullopt;
  // The answer each route gives an unknown id.
  if (req.route->pattern == "/sandbox/{id}/purge") {
    return json_answer(200, json::object{{"purged", true}, {"freed_bytes", 0}});
  }
  if (req.route->pattern == "/wake/{id}") return json_answer(404, json::object{{"error", "not_found"}});
  if (req.method == "DELETE" && req.route->pattern == "/v1/sandboxes/{id}") {
    Response gone;
    gone.status = 204;
    return gone;
  }
  return error_response(req.path, 404, "not_found", "no such sandbox " + *id);
}

std::uint64_t Api::body_limit(const Request& req) const {
  if (req.route && req.route->raw_body) return config_.files.write_max;
  return req.route && req.route->json_body ? config_.control.max_json_body : 0;
}

boost::asio::awaitable<Response> Api::handle(Request& req) {
  Response res = co_await req.route->handler(req);
  count(req, req.route, res.status);
  co_return res;
}

boost::asio::awaitable<Response> Api::metrics(Request& r) {
  if (!metrics_source_ || !config_.metrics.enabled) {
    co_return error_answer(r, ApiError::not_found("metrics are not available"));
  }
  Response res;
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.body = metrics_source_->metrics_text();
  co_return res;
}

// ---------------------------------------------------------------------------- legacy

boost::asio::awaitable<Response> Api::legacy_create(Request& r) {
  auto body = body_object(r, true);
  if (!body) co_return error_answer(r, body.error());
  RequestLimits limits{config_.preview.allowed_ports, config_.exec.timeout, config_.exec.max_timeout};
  auto req = parse_legacy_create(*body, limits);
  if (!req) co_return error_answer(r, req.error());
  if (r.tenant && !req->user_id_given) req->user_id = *r.tenant;
  if (auto e = tenant_mismatch(r, req->user_id)) co_return error_answer(r, *e);
  Actor actor = actor_of(r);
  CreateRequest request = std::move(*req);
  auto made = co_await service_.create(std::move(request), false, true, actor);
  if (!made) co_return error_answer(r, made.error());
  co_return json_answer(201, legacy_object(made->row, objects_));
}

boost::asio::awaitable<Response> Api::legacy_list(Request& r) {
  store::SandboxFilter f;
  for (auto [param, field] : {std::pair{"external_user_id", &f.external_user_id},
                              std::pair{"external_project_id", &f.external_project_id},
                              std::pair{"status", &f.status}}) {
    auto v = query_string(r, param);
    if (!v) co_return error_answer(r, v.error());
    *field = *v;
  }
  if (auto e = scope_to_tenant(r, f.external_user_id)) co_return error_answer(r, *e);
  auto rows = service_.list(f);
  if (!rows) co_return error_answer(r, rows.error());
  json::array out;
  for (const auto& row : *rows) {
    if (row.status == "destroyed" || row.status == "purged") continue;
    out.push_back(legacy_object(row, objects_));
  }
  co_return json_answer(200, out);
}

boost::asio::awaitable<Response> Api::legacy_get(Request& r) {
  auto row = legacy_row(r);
  if (!row) co_return error_answer(r, row.error());
  auto info = co_await service_.inspect_container(*row);
  json::value live = info ? live_state(*info, config_.docker.network) : json::value(nullptr);
  json::object o{{"row", legacy_object(*row, objects_)}, {"live_state", std::move(live)}};
  co_return json_answer(200, o);
}

boost::asio::awaitable<Response> Api::legacy_destroy(Request& r) {
  auto row = legacy_row(r);
  if (!row) co_return error_answer(r, row.error());
  Actor actor = actor_of(r);
  auto done = co_await service_.destroy(row->id, actor);
  if (!done) co_return error_answer(r, done.error());
  Response res;
  res.status = 204;
  co_return res;
}

boost::asio::awaitable<Response> Api::legacy_exec(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto body = body_object(r, false);
  if (!body) co_return error_answer(r, body.error());
  RequestLimits limits{config_.preview.allowed_ports, config_.exec.timeout, config_.exec.max_timeout};
  auto exec = parse_exec(*body, limits, false);
  if (!exec) co_return error_answer(r, exec.error());
  auto row = legacy_row(r);
  if (!row) co_return error_answer(r, row.error());
  if (exec->stream) co_return co_await exec_stream(r, *id, std::move(*exec), false);
  co_return co_await exec_buffered(r, *id, *exec, false);
}

boost::asio::awaitable<Response> Api::legacy_keepalive(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto body = body_object(r, true);
  if (!body) co_return error_answer(r, body.error());
  auto ka = parse_keepalive(*body);
  if (!ka) co_return error_answer(r, ka.error());
  std::optional<std::int64_t> until_ms;
  if (ka->until_unix_s) until_ms = *ka->until_unix_s * 1000;
  Actor actor = actor_of(r);
  auto row = co_await service_.keepalive(*id, until_ms, actor);
  if (!row) co_return error_answer(r, row.error());
  co_return json_answer(200, json::object{{"id", row->id},
                                          {"keepalive_until", row->keepalive_until.value_or(0) / 1000}});
}

boost::asio::awaitable<Response> Api::legacy_wake(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto row = service_.get(*id);
  if (!row || row->status == "destroyed" || row->status == "purged") {
    co_return json_answer(404, json::object{{"error", "not_found"}});
  }
  auto begin = std::chrono::steady_clock::now();
  Actor actor = actor_of(r);
  auto woke = co_await service_.start(*id, actor);
  if (!woke) {
    const ApiError& e = woke.error();
    // SPEC §2.5.7: an admission refusal answers with the body of §2.5.1.
    if (e.code == "sandbox_capacity") co_return error_answer(r, e);
    std::string reason = e.status == 504 ? "timeout" : e.status == 503 ? "unavailable" : "start_failed";
    Response res = json_answer(e.status >= 500 && e.status != 504 && e.status != 503 ? 503 : e.status,
                               json::object{{"error", reason}});
    for (const auto& h : e.headers) res.headers.push_back(h);
    co_return res;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - begin);
  co_return json_answer(200, json::object{{"id", woke->id}, {"status", "running"},
                                          {"wake_duration_ms", ms.count()}});
}

boost::asio::awaitable<Response> Api::legacy_purge(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  Actor actor = actor_of(r);
  auto purged = co_await service_.purge(*id, actor);
  if (!purged) co_return json_answer(500, json::object{{"error", purged.error().message}});
  co_return json_answer(200, json::object{{"purged", true}, {"freed_bytes", purged->freed_bytes}});
}

boost::asio::awaitable<Response> Api::legacy_claim(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto body = body_object(r, false);
  if (!body) co_return error_answer(r, body.error());
  auto claim = parse_claim(*body);
  if (!claim) co_return error_answer(r, claim.error());
  if (auto e = tenant_mismatch(r, claim->user_id)) co_return error_answer(r, *e);
  Actor actor = actor_of(r);
  auto row = co_await service_.claim(*id, std::move(*claim), actor);
  if (!row) co_return error_answer(r, row.error());
  co_return json_answer(200, json::object{{"id", row->id},
                                          {"external_user_id", row->external_user_id.value_or("")},
                                          {"claimed", true}});
}

boost::asio::awaitable<Response> Api::purge_external_user(Request& r) {
  const std::string& user = r.params[0];
  if (auto problem = external_id_problem(user)) {
    co_return error_answer(r, ApiError::invalid("external user id: " + *problem));
  }
  if (auto e = tenant_mismatch(r, user)) co_return error_answer(r, *e);
  store::SandboxFilter f;
  // Legacy creates without an owner belong to `local` (SPEC §1.6): purging `local` purges
  // them, since their stored owner is `local` too.
  f.external_user_id = user;
  co_return co_await purge_owned(r, std::move(f));
}

boost::asio::awaitable<Response> Api::purge_external_project(Request& r) {
  const std::string& project = r.params[0];
  if (auto problem = external_id_problem(project)) {
    co_return error_answer(r, ApiError::invalid("external project id: " + *problem));
  }
  store::SandboxFilter f;
  f.external_project_id = project;
  if (r.tenant) f.external_user_id = *r.tenant;  // a tenant purges its own part of a project
  co_return co_await purge_owned(r, std::move(f));
}

boost::asio::awaitable<Response> Api::purge_owned(Request& r, store::SandboxFilter f) {
  auto rows = service_.list(f);
  if (!rows) co_return error_answer(r, rows.error());
  std::vector<store::SandboxRow> targets;
  for (auto& row : *rows) {
    if (row.status != "purged") targets.push_back(std::move(row));
  }
  std::sort(targets.begin(), targets.end(), [](const auto& a, const auto& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
  });
  Actor actor = actor_of(r);
  std::uint64_t count = 0;
  std::uint64_t freed = 0;
  json::array failed;
  std::string first_error;
  for (const auto& row : targets) {
    auto purged = co_await service_.purge(row.id, actor);
    if (!purged) {
      failed.emplace_back(row.id);
      if (first_error.empty()) first_error = purged.error().message;
      continue;
    }
    if (purged->existed) ++count;
    freed += purged->freed_bytes;
  }
  if (!failed.empty()) {
    co_return json_answer(500, json::object{{"error", first_error},
                                            {"code", "internal"},
                                            {"purged_count", count},
                                            {"freed_bytes", freed},
                                            {"failed", std::move(failed)}});
  }
  co_return json_answer(200, json::object{{"purged_count", count}, {"freed_bytes", freed}});
}

// ---------------------------------------------------------------------------- v1

boost::asio::awaitable<Response> Api::v1_create(Request& r) {
  auto wait = query_bool(r, "wait");
  if (!wait) co_return error_answer(r, wait.error());
  auto body = body_object(r, false);
  if (!body) co_return error_answer(r, body.error());
  RequestLimits limits{config_.preview.allowed_ports, config_.exec.timeout, config_.exec.max_timeout};
  auto req = parse_v1_create(*body, limits);
  if (!req) co_return error_answer(r, req.error());
  if (auto e = tenant_mismatch(r, req->user_id)) co_return error_answer(r, *e);
  Actor actor = actor_of(r);
  CreateRequest request = std::move(*req);
  auto made = co_await service_.create(std::move(request), true, wait->value_or(true), actor);
  if (!made) co_return error_answer(r, made.error());
  Response res = json_answer(made->status, v1_object(made->row, objects_));
  res.headers.emplace_back("Location", "/v1/sandboxes/" + made->row.id);
  co_return res;
}

boost::asio::awaitable<Response> Api::v1_list(Request& r) {
  store::SandboxFilter f;
  auto user = query_string(r, "user_id");
  auto project = query_string(r, "project_id");
  auto status = query_string(r, "status");
  auto limit_text = query_string(r, "limit");
  auto cursor = query_string(r, "cursor");
  for (auto* q : {&user, &project, &status, &limit_text, &cursor}) {
    if (!*q) co_return error_answer(r, q->error());
  }
  f.external_user_id = *user;
  f.external_project_id = *project;
  if (auto e = scope_to_tenant(r, f.external_user_id)) co_return error_answer(r, *e);
  std::vector<std::string> statuses;
  if (*status) {
    std::string_view s = **status;
    while (!s.empty()) {
      auto comma = s.find(',');
      statuses.emplace_back(s.substr(0, comma));
      s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    }
  }
  std::size_t limit = 100;
  if (*limit_text) {
    const std::string& t = **limit_text;
    bool digits = !t.empty() && t.size() <= 4 && std::all_of(t.begin(), t.end(), ::isdigit);
    if (!digits || std::stoul(t) < 1 || std::stoul(t) > 1000) {
      co_return error_answer(r, ApiError::invalid("limit: must be an integer from 1 to 1000"));
    }
    limit = std::stoul(t);
  }
  auto rows = service_.list(f);
  if (!rows) co_return error_answer(r, rows.error());
  // Newest first: created_at, then id, both descending. The cursor is the last id served.
  std::vector<store::SandboxRow> visible;
  for (auto& row : *rows) {
    if (row.status == "purged") continue;
    if (!statuses.empty() && std::find(statuses.begin(), statuses.end(), row.status) == statuses.end()) continue;
    visible.push_back(std::move(row));
  }
  std::sort(visible.begin(), visible.end(), [](const auto& a, const auto& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
  });
  std::size_t start = 0;
  if (*cursor) {
    auto it = std::find_if(visible.begin(), visible.end(), [&](const auto& row) { return row.id == **cursor; });
    if (it == visible.end()) co_return error_answer(r, ApiError::invalid("cursor: unknown cursor"));
    start = static_cast<std::size_t>(it - visible.begin()) + 1;
  }
  json::array items;
  std::size_t end = std::min(visible.size(), start + limit);
  for (std::size_t i = start; i < end; ++i) items.push_back(v1_object(visible[i], objects_));
  json::object o{{"sandboxes", std::move(items)}};
  if (end < visible.size() && end > start) o["next_cursor"] = visible[end - 1].id;
  co_return json_answer(200, o);
}

boost::asio::awaitable<Response> Api::v1_patch(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto body = body_object(r, false);
  if (!body) co_return error_answer(r, body.error());
  RequestLimits limits{config_.preview.allowed_ports, config_.exec.timeout, config_.exec.max_timeout};
  auto patch = parse_patch(*body, limits);
  if (!patch) co_return error_answer(r, patch.error());
  Actor actor = actor_of(r);
  auto row = co_await service_.patch(*id, std::move(*patch), actor);
  if (!row) co_return error_answer(r, row.error());
  co_return json_answer(200, v1_object(*row, objects_));
}

boost::asio::awaitable<Response> Api::v1_get(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto row = service_.get(*id);
  if (!row) co_return error_answer(r, row.error());
  if (row->status == "purged") co_return error_answer(r, ApiError::not_found("no such sandbox " + *id));
  json::object o = v1_object(*row, objects_);
  if (tasks_) {
    // SPEC §2.4, §6.8: runtimed's health and the dev server's state, asked with 1 s.
    if (row->status == "running") {
      RuntimeHealth health = co_await tasks_->health(*row, std::chrono::seconds(1));
      o["runtime"] = health.runtime;
      std::string_view dev = health.devserver_state.value_or("starting");
      std::string_view preview = dev == "ready" ? "ready"
                                 : (dev == "backoff" || dev == "loopback_only") ? "error"
                                                                                : "starting";
      if (json::value* p = o.if_contains("preview"); p && p->is_object()) p->as_object()["status"] = preview;
    }
    for (const auto& task : tasks_->open_tasks(*id)) {
      if (task.status == "running") o["active_task_id"] = task.id;
    }
  }
  co_return json_answer(200, o);
}

boost::asio::awaitable<Response> Api::v1_delete(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto keep = query_bool(r, "keep_workspace");
  if (!keep) co_return error_answer(r, keep.error());
  Response res;
  res.status = 204;
  if (keep->value_or(false)) {
    auto row = service_.get(*id);
    if (!row || row->status == "purged") co_return res;
    Actor actor = actor_of(r);
    auto done = co_await service_.destroy(*id, actor);
    if (!done) co_return error_answer(r, done.error());
    co_return res;
  }
  Actor actor = actor_of(r);
  auto done = co_await service_.purge(*id, actor);
  if (!done) co_return error_answer(r, done.error());
  co_return res;
}

boost::asio::awaitable<Response> Api::v1_start(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto wait = query_bool(r, "wait");
  if (!wait) co_return error_answer(r, wait.error());
  const auto deadline = std::chrono::steady_clock::now() + config_.wake.timeout;
  auto port_text = query_string(r, "port");
  if (!port_text) co_return error_answer(r, port_text.error());
  std::optional<int> port;
  if (*port_text) {
    auto known = service_.get(*id);
    const std::string& t = **port_text;
    const bool digits = !t.empty() && t.size() <= 5 && std::all_of(t.begin(), t.end(), ::isdigit);
    if (!digits || !known ||
        std::find(known->ports.begin(), known->ports.end(), std::stoi(t)) == known->ports.end()) {
      co_return error_answer(r, ApiError::invalid("port: must be one of the sandbox's declared ports"));
    }
    port = std::stoi(t);
  }
  Actor actor = actor_of(r);
  auto woke = co_await service_.start(*id, actor, wait->value_or(true));
  if (!woke) co_return error_answer(r, woke.error());
  // Without wait the wake goes on in the background: 202 in `waking` (SPEC §2.6.6).
  if (woke->status != "running") co_return json_answer(202, v1_object(*woke, objects_));
  if (port) {
    const std::string ip = woke->container_ip.value_or("");
    if (!co_await tcp_answers(ip, *port, deadline)) {
      co_return error_answer(r, ApiError::timeout("port " + std::to_string(*port) +
                                                  " did not accept a connection within wake.timeout"));
    }
  }
  co_return json_answer(200, v1_object(*woke, objects_));
}

boost::asio::awaitable<Response> Api::v1_stop(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto wait = query_bool(r, "wait");
  if (!wait) co_return error_answer(r, wait.error());
  auto body = body_object(r, true);
  if (!body) co_return error_answer(r, body.error());
  auto req = parse_stop(*body);
  if (!req) co_return error_answer(r, req.error());
  auto current = service_.get(*id);
  if (tasks_ && current && current->status == "running") {
    // SPEC §2.6.7: a running task blocks the stop unless `force`, which cancels it first.
    std::vector<store::TaskRow> open = tasks_->open_tasks(*id);
    for (const auto& task : open) {
      if (task.status != "running") continue;
      if (!req->force) {
        co_return error_answer(r, ApiError{409, "task_in_progress",
                                           "task " + task.id + " is running; stop with force to cancel it",
                                           {}});
      }
      Actor canceller = actor_of(r);
      co_await tasks_->cancel(*id, task.id, canceller);
    }
  }
  Actor actor = actor_of(r);
  std::string reason = "api";
  auto stopped = co_await service_.stop(*id, *req, reason, actor, wait->value_or(true));
  if (!stopped) co_return error_answer(r, stopped.error());
  // Without wait the stop goes on in the background: 202 in `stopping` (SPEC §2.6.7).
  co_return json_answer(stopped->status == "stopped" ? 200 : 202, v1_object(*stopped, objects_));
}

boost::asio::awaitable<Response> Api::v1_exec(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto body = body_object(r, false);
  if (!body) co_return error_answer(r, body.error());
  RequestLimits limits{config_.preview.allowed_ports, config_.exec.timeout, config_.exec.max_timeout};
  auto exec = parse_exec(*body, limits, true);
  if (!exec) co_return error_answer(r, exec.error());
  auto row = service_.get(*id);
  if (!row || row->status == "purged") co_return error_answer(r, ApiError::not_found("no such sandbox " + *id));
  if (exec->detach) {
    Actor actor = actor_of(r);
    auto exec_id = co_await service_.exec_detached(*id, *exec, actor);
    if (!exec_id) co_return error_answer(r, exec_id.error());
    co_return json_answer(202, json::object{{"exec_id", *exec_id}, {"status", "running"}});
  }
  auto accept = r.header("accept");
  if (exec->stream || (accept && accept->find("application/x-ndjson") != std::string_view::npos)) {
    co_return co_await exec_stream(r, *id, std::move(*exec), true);
  }
  co_return co_await exec_buffered(r, *id, *exec, true);
}

// A non-streaming exec (SPEC §2.5.5, §2.6.8): each stream kept up to exec.max_output, bytes
// that are not UTF-8 replaced; v1 adds the exec id and the duration.
boost::asio::awaitable<Response> Api::exec_buffered(Request& r, std::string id, ExecRequest exec,
                                                    bool v1) {
  Captured cap;
  cap.max = config_.exec.max_output;
  std::string exec_id = new_ulid().str();
  docker::OutputFn capture = [&cap](docker::ExecStream s, std::string_view b) { cap.add(s, b); };
  Actor actor = actor_of(r);
  auto out = co_await service_.exec(id, exec, exec_id, capture, actor, r.client_gone);
  if (!out) co_return error_answer(r, out.error());
  json::object o{{"stdout", sanitize_utf8(cap.out)},
                 {"stderr", sanitize_utf8(cap.err)},
                 {"exit_code", out->exit_code ? json::value(*out->exit_code) : json::value(nullptr)},
                 {"timed_out", out->timed_out},
                 {"truncated", cap.truncated}};
  if (v1) {
    o["exec_id"] = out->exec_id;
    o["duration_ms"] = out->duration_ms;
  }
  co_return json_answer(200, o);
}

// Streams exec output as it arrives: v1 as NDJSON frames (SPEC §2.6.8), legacy as text with
// stderr after a `---stderr---` line (SPEC §2.5.5).
// A state that refuses the exec (409) or a refused wake (503) answers before the stream
// starts; the sandbox is running (woken if need be) when its 200 goes out.
boost::asio::awaitable<Response> Api::exec_stream(Request& r, std::string id, ExecRequest exec, bool v1) {
  Actor actor = actor_of(r);
  auto ready = co_await service_.runnable_row(id, actor);
  if (!ready) co_return error_answer(r, ready.error());
  co_return exec_stream_response(r, id, std::move(exec), v1);
}

Response Api::exec_stream_response(Request& r, const std::string& id, ExecRequest exec, bool v1) {
  Response res;
  res.content_type = v1 ? "application/x-ndjson" : "text/plain; charset=utf-8";
  Actor actor = actor_of(r);
  std::uint64_t max_output = config_.exec.max_output;
  std::shared_ptr<OneShot> gone = r.client_gone;
  res.stream = [this, id, exec = std::move(exec), actor, v1, max_output, gone](
                   BodySink& sink) -> boost::asio::awaitable<void> {
    auto ex = co_await boost::asio::this_coro::executor;
    // A failed write means the client left: the command is cancelled through `hangup`
    // (killed in the sandbox), and the producer's end is awaited, not abandoned.
    std::shared_ptr<OneShot> hangup = gone ? gone : std::make_shared<OneShot>(ex);
    struct Shared {
      std::deque<std::pair<docker::ExecStream, std::string>> chunks;
      bool done = false;
      std::optional<ApiResult<ExecOutput>> result;
      boost::asio::steady_timer bell;
      explicit Shared(boost::asio::any_io_executor e) : bell(e) {}
    };
    auto shared = std::make_shared<Shared>(ex);
    std::string exec_id = new_ulid().str();
    auto producer = [this, shared, &id, &exec, &actor, &exec_id, hangup]() -> boost::asio::awaitable<void> {
      docker::OutputFn forward = [shared](docker::ExecStream s, std::string_view b) {
        shared->chunks.emplace_back(s, std::string(b));
        shared->bell.cancel();
      };
      auto out = co_await service_.exec(id, exec, exec_id, forward, actor, hangup);
      shared->result.emplace(std::move(out));
      shared->done = true;
      shared->bell.cancel();
    };
    std::array<std::string, 3> pending;  // per stream: bytes held back to cut on a character boundary
    std::string legacy_err;
    bool legacy_truncated = false;
    auto consumer = [&]() -> boost::asio::awaitable<void> {
      std::string start = frame_start(exec_id);
      if (v1 && !co_await sink.write(start)) co_return;
      for (;;) {
        while (!shared->chunks.empty()) {
          docker::ExecStream stream = shared->chunks.front().first;
          std::string bytes = std::move(shared->chunks.front().second);
          shared->chunks.pop_front();
          std::string out;
          if (!v1) {
            if (stream == docker::ExecStream::err) {
              std::size_t room = legacy_err.size() < max_output ? max_output - legacy_err.size() : 0;
              legacy_truncated = legacy_truncated || bytes.size() > room;
              legacy_err.append(bytes.substr(0, room));
              continue;
            }
            out = bytes;
          } else {
            std::string& held = pending[static_cast<std::size_t>(stream)];
            held += bytes;
            std::size_t cut = utf8_complete_prefix(held);
            std::string piece = held.substr(0, cut);
            held.erase(0, cut);
            if (piece.empty()) continue;
            out = frame_output(stream, piece, !is_valid_utf8(piece));
          }
          if (!co_await sink.write(out)) {
            hangup->fire();
            co_return;
          }
        }
        if (shared->done) break;
        shared->bell.expires_after(std::chrono::seconds(15));
        auto waited = co_await shared->bell.async_wait(nothrow);
        if (!std::get<0>(waited) && v1 && shared->chunks.empty() && !shared->done) {
          std::string beat = frame_heartbeat();
          if (!co_await sink.write(beat)) {
            hangup->fire();
            co_return;
          }
        }
      }
    };
    try {
      co_await (producer() && consumer());
    } catch (const std::exception& e) {
      kLog.info("exec stream ended early", {{"id", id}, {"reason", e.what()}});
      co_return;
    }
    const auto& result = *shared->result;
    if (v1) {
      for (auto s : {docker::ExecStream::out, docker::ExecStream::err}) {
        const std::string& rest = pending[static_cast<std::size_t>(s)];
        std::string last = frame_output(s, rest, true);
        if (!rest.empty()) co_await sink.write(last);
      }
      std::string end = frame_end(result);
      co_await sink.write(end);
      co_return;
    }
    if (!result) {
      std::string failed = "internal-error: " + result.error().message + "\n";
      co_await sink.write(failed);
      co_return;
    }
    std::string tail = "---stderr---\n" + legacy_err;
    if (!legacy_err.empty() && legacy_err.back() != '\n') tail += '\n';
    if (result->timed_out) tail += "timed_out: true\n";
    tail += "exit_code: " + std::to_string(result->exit_code.value_or(-1)) + "\n";
    co_await sink.write(tail);
  };
  return res;
}

// SPEC §10.5: the certificate state; `{"mode":"off","certificates":[]}` without TLS.
boost::asio::awaitable<Response> Api::certificates(Request&) {
  Response r;
  r.body = certs_ != nullptr ? certs_->status_json()
                             : std::string(R"({"mode":"off","certificates":[]})");
  co_return r;
}

// SPEC §10.2: an attempt now, skipping a backoff but not a rate-limit wait.
boost::asio::awaitable<Response> Api::renew_certificates(Request& req) {
  std::chrono::seconds retry_after{0};
  const RenewOutcome o = certs_ != nullptr ? certs_->renew_now(&retry_after) : RenewOutcome::not_acme;
  switch (o) {
    case RenewOutcome::started:
      co_return json_answer(202, json::object{{"started", true}});
    case RenewOutcome::in_progress:
      co_return error_response(req.path, 409, "conflict", "a certificate attempt is already running");
    case RenewOutcome::rate_limited: {
      Response r = error_response(req.path, 429, "rate_limited",
                                  "the CA asked to wait before the next attempt");
      r.headers.emplace_back("Retry-After", std::to_string(std::max<std::int64_t>(retry_after.count(), 1)));
      co_return r;
    }
    case RenewOutcome::not_acme:
      break;
  }
  co_return error_response(req.path, 400, "invalid_request", "tls.mode is not acme");
}

// SPEC §2.7.13: a preview token for a private sandbox, signed with the first preview key.
// Never wakes anything.
boost::asio::awaitable<Response> Api::mint_preview_token(Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) co_return error_answer(r, id.error());
  auto body = body_object(r, true);
  if (!body) co_return error_answer(r, body.error());
  const auto& keys = preview_keys_;
  if (keys.empty()) {
    co_return error_answer(r, ApiError::invalid("auth.preview.secrets is empty: no key to sign with"));
  }
  std::optional<std::int64_t> port;
  std::int64_t ttl = 3600;
  for (const auto& [key, value] : *body) {
    if (key == "port") {
      if (!value.is_int64()) co_return error_answer(r, ApiError::invalid("port: must be an integer"));
      port = value.get_int64();
    } else if (key == "ttl_s") {
      if (!value.is_int64() || value.get_int64() < 60 || value.get_int64() > 86400) {
        co_return error_answer(r, ApiError::invalid("ttl_s: must be an integer from 60 to 86400"));
      }
      ttl = value.get_int64();
    } else {
      co_return error_answer(r, ApiError::invalid(std::string(key) + ": unknown field"));
    }
  }
  auto row = service_.get(*id);
  if (!row || row->status == "purged") co_return error_answer(r, ApiError::not_found("no such sandbox " + *id));
  if (port && std::find(row->ports.begin(), row->ports.end(), *port) == row->ports.end()) {
    co_return error_answer(r, ApiError::invalid("port: " + std::to_string(*port) + " is not a declared port"));
  }
  const int url_port = port ? static_cast<int>(*port) : (row->ports.empty() ? 0 : row->ports.front());
  const auto ulid = Ulid::parse(*id);
  if (!ulid) co_return error_answer(r, ApiError::invalid_id("not a sandbox id: " + *id));
  const std::int64_t now = system_clock().unix_ms() / 1000;
  const edge::PreviewKey key{keys.front().kid, keys.front().secret.reveal()};
  std::optional<std::uint16_t> token_port;
  if (port) token_port = static_cast<std::uint16_t>(*port);
  const std::string token = edge::make_preview_token(key, *ulid, token_port, now, now + ttl);
  json::object out{{"token", token},
                   {"expires_at", format_rfc3339(std::chrono::system_clock::from_time_t(now + ttl))}};
  if (url_port != 0) out["url"] = preview_url(*id, url_port, objects_) + "?sandbox_token=" + token;
  co_return json_answer(200, out);
}

}  // namespace sandboxd::control
