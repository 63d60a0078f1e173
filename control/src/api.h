// The control API: the route table of SPEC §2 (legacy and v1) bound to the sandbox service,
// and the checks that run on a request head before its body is read (SPEC §2.3 order:
// sandbox-network 403 → authentication → 404/405 → read-only 403 → 413/415).
#pragma once

#include "auth.h"
#include "http.h"
#include "metrics.h"
#include "objects.h"
#include "router.h"
#include "sandbox_service.h"

#include "http_server.h"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <optional>

namespace sandboxd::control {

struct ReadyCheck {
  std::string name;    // "store", "docker", "reconcile"
  bool ok = false;
  std::string detail;  // why not; shown to the prober, so no secrets
};

class ReadinessSource {
 public:
  virtual ~ReadinessSource() = default;
  virtual std::vector<ReadyCheck> readiness() = 0;
};

// The text of GET /metrics (SPEC §11), rendered on the control thread at scrape time.
class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  virtual std::string metrics_text() = 0;
};

class FilesApi;
class CertificateSource;
class TaskService;
class TasksApi;
class AuditApi;
class EventsApi;
class LifecycleEvents;

class Api final : public HttpHandler {
 public:
  Api(SandboxService& service, const config::Config& config, const Authenticator& auth,
      ReadinessSource& readiness, ObjectContext objects);
  ~Api() override;

  // Runs on the complete head. An answer means: send it and do not read the body (which
  // also means no `100 Continue`). Sets request.route and request.params otherwise.
  std::optional<Response> check_head(Request& request,
                                     std::optional<std::uint64_t> content_length) override;

  // The body limit for the matched route.
  std::uint64_t body_limit(const Request& request) const override;

  boost::asio::awaitable<Response> handle(Request& request) override;

  // GET /v1/certificates and POST /v1/certificates/renew answer from `source` (which must
  // outlive the Api); without it they say tls.mode is off.
  void set_certificates(CertificateSource& source) { certs_ = &source; }

  // The keys POST …/preview-token signs with (auth.preview.secrets; SIGHUP replaces them).
  void set_preview_keys(std::vector<config::PreviewKey> keys) { preview_keys_ = std::move(keys); }

  // Preview URLs name the edge's bound port, known only once the edge listens.
  void set_edge_port(std::uint16_t port) { objects_.edge_port = port; }

  // Counts requests into `metrics` and serves GET /metrics from `source`; both must outlive
  // the Api. Call before serving. Without it nothing is counted and /metrics answers 404.
  void set_metrics(Metrics& metrics, MetricsSource& source);

  // Adds the task and log routes (SPEC §2.7.1-2.7.5, §2.6.9) served by `tasks`, which must
  // outlive the Api; GET of a v1 sandbox then asks runtimed for `runtime` and the preview
  // status, and a stop refuses a running task unless forced. Call before set_metrics.
  void set_tasks(TaskService& tasks);

  // Adds GET /v1/audit (audit_api.h), read from `store`, which must outlive the Api. Call
  // before set_metrics.
  void set_audit(store::Store& store);
  // GET /v1/events over `events` (SPEC §2.7.12).
  void set_events(LifecycleEvents& events);

 private:
  void add_routes();
  ApiResult<store::SandboxRow> legacy_row(const Request& r) const;
  void add_route(Route route);
  std::optional<Response> check_owner(const Request& request) const;
  std::optional<Response> check_head(Request& request, std::optional<std::uint64_t> content_length,
                                     RouteMatch& match);
  // sandboxd_api_requests_total; `route` null for unknown paths and methods.
  void count(const Request& request, const Route* route, int status) const;
  boost::asio::awaitable<Response> metrics(Request& r);

  // legacy
  boost::asio::awaitable<Response> legacy_create(Request& r);
  boost::asio::awaitable<Response> legacy_list(Request& r);
  boost::asio::awaitable<Response> legacy_get(Request& r);
  boost::asio::awaitable<Response> legacy_destroy(Request& r);
  boost::asio::awaitable<Response> legacy_exec(Request& r);
  boost::asio::awaitable<Response> legacy_keepalive(Request& r);
  boost::asio::awaitable<Response> legacy_wake(Request& r);
  boost::asio::awaitable<Response> legacy_purge(Request& r);
  boost::asio::awaitable<Response> legacy_claim(Request& r);
  boost::asio::awaitable<Response> purge_external_user(Request& r);
  boost::asio::awaitable<Response> purge_external_project(Request& r);
  // Purges every sandbox `f` selects, oldest first, going on past failures (SPEC §2.5.10).
  boost::asio::awaitable<Response> purge_owned(Request& r, store::SandboxFilter f);
  // v1
  boost::asio::awaitable<Response> v1_create(Request& r);
  boost::asio::awaitable<Response> v1_list(Request& r);
  boost::asio::awaitable<Response> v1_get(Request& r);
  boost::asio::awaitable<Response> v1_delete(Request& r);
  boost::asio::awaitable<Response> v1_patch(Request& r);
  boost::asio::awaitable<Response> v1_start(Request& r);
  boost::asio::awaitable<Response> v1_stop(Request& r);
  boost::asio::awaitable<Response> v1_exec(Request& r);

  boost::asio::awaitable<Response> exec_buffered(Request& r, std::string id, ExecRequest exec,
                                                 bool v1);
  boost::asio::awaitable<Response> exec_stream(Request& r, std::string id, ExecRequest exec, bool v1);
  Response exec_stream_response(Request& r, const std::string& id, ExecRequest exec, bool v1);

  SandboxService& service_;
  const config::Config& config_;
  const Authenticator& auth_;
  ReadinessSource& readiness_;
  ObjectContext objects_;
  Router router_;
  std::vector<std::string> route_patterns_;  // distinct patterns, in route order
  Metrics* metrics_ = nullptr;
  MetricsSource* metrics_source_ = nullptr;
  std::unique_ptr<FilesApi> files_;  // SPEC §2.7.6-2.7.10
  TaskService* tasks_ = nullptr;
  std::unique_ptr<TasksApi> tasks_api_;  // SPEC §2.7.1-2.7.5, §2.6.9
  std::unique_ptr<AuditApi> audit_api_;  // GET /v1/audit
  std::unique_ptr<EventsApi> events_api_;  // GET /v1/events
  CertificateSource* certs_ = nullptr;
  std::vector<config::PreviewKey> preview_keys_;
  boost::asio::awaitable<Response> certificates(Request& r);
  boost::asio::awaitable<Response> renew_certificates(Request& r);
  boost::asio::awaitable<Response> mint_preview_token(Request& r);
};

}  // namespace sandboxd::control
