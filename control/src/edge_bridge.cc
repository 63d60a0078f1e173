#include "edge_bridge.h"

#include "base/log.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>

namespace sandboxd::control {

namespace {

constexpr log::Logger kLog{"control"};

std::optional<edge::RouteState> route_state(std::string_view status) {
  if (status == "creating") return edge::RouteState::creating;
  if (status == "running") return edge::RouteState::running;
  if (status == "stopping") return edge::RouteState::stopping;
  if (status == "stopped") return edge::RouteState::stopped;
  if (status == "waking") return edge::RouteState::waking;
  if (status == "error") return edge::RouteState::error;
  return std::nullopt;  // destroyed, purged: no route
}

// §11 names no `gone`: a sandbox destroyed during its wake counts as a failed wake.
WakeResult wake_result(edge::WakeOutcome::Kind kind) {
  switch (kind) {
    case edge::WakeOutcome::Kind::ok: return WakeResult::ok;
    case edge::WakeOutcome::Kind::timeout: return WakeResult::timeout;
    case edge::WakeOutcome::Kind::refused: return WakeResult::refused;
    case edge::WakeOutcome::Kind::failed:
    case edge::WakeOutcome::Kind::gone: return WakeResult::failed;
  }
  return WakeResult::failed;
}

}  // namespace

std::shared_ptr<const edge::RouteTable> build_routes(const std::vector<store::SandboxRow>& rows,
                                                     const std::set<std::string>& handing_over) {
  std::vector<edge::Route> routes;
  routes.reserve(rows.size());
  for (const auto& row : rows) {
    auto state = route_state(row.status);
    auto id = Ulid::parse(row.id);
    if (!state || !id) continue;
    edge::Route r;
    r.id = *id;
    r.state = *state;
    if (r.state == edge::RouteState::running && handing_over.contains(row.id)) {
      r.state = edge::RouteState::stopping;
    }
    if (row.container_ip && r.state == edge::RouteState::running) {
      if (auto ip = edge::IpAddress::parse(*row.container_ip)) r.address = *ip;
    }
    for (int p : row.ports) r.ports.push_back(static_cast<std::uint16_t>(p));
    r.visibility = row.visibility == "private" ? edge::Visibility::private_ : edge::Visibility::public_;
    r.error_reason = row.error_reason.value_or("");
    r.generation = static_cast<std::uint64_t>(row.updated_at);
    routes.push_back(std::move(r));
  }
  auto table = edge::RouteTable::build(std::move(routes));
  if (!table) {
    kLog.error("route table build failed", {{"error", table.error().message()}});
    return edge::RouteTable::empty();
  }
  return *table;
}

edge::EdgeOptions edge_options(const config::Config& c) {
  edge::EdgeOptions o;
  o.listen_host = c.edge.http.listen.host;
  o.listen_port = c.edge.http.listen.port;
  o.https = false;
  o.workers = c.edge.workers;
  o.preview_suffix = c.preview_suffix();
  o.ports.allow_undeclared = c.preview.undeclared_ports == config::UndeclaredPorts::allow;
  for (const auto& range : c.preview.allowed_ports) o.ports.allowed.push_back({range.first, range.last});
  for (const auto& cidr : c.edge.trusted_proxies) {
    if (auto net = edge::IpNetwork::parse(cidr.str())) o.trusted_proxies.push_back(*net);
  }
  o.forwarded_header = c.edge.forwarded_header;
  o.hsts_max_age = std::chrono::duration_cast<std::chrono::seconds>(c.edge.hsts_max_age);
  const auto& l = c.edge.limits;
  o.max_connections = l.max_connections;
  o.max_connections_per_client = l.max_connections_per_client;
  o.max_header_bytes = l.max_header_bytes;
  o.max_request_body = l.max_request_body;
  o.max_connections_per_sandbox = l.max_connections_per_sandbox;
  o.max_held_requests_per_sandbox = l.max_held_requests_per_sandbox;
  o.max_held_requests_total = l.max_held_requests_total;
  const auto& t = c.edge.timeouts;
  o.header_read = t.header_read;
  o.keepalive_idle = t.keepalive_idle;
  o.body_idle = t.body_idle;
  o.upstream_connect = t.upstream_connect;
  o.upstream_response_header = t.upstream_response_header;
  o.websocket_idle = t.websocket_idle;
  o.upstream_idle_timeout = c.edge.upstream.idle_timeout;
  o.max_idle_per_backend = c.edge.upstream.max_idle_per_backend;
  o.wake_timeout = c.wake.timeout;
  o.probe_interval = c.wake.probe_interval;
  return o;
}

ServiceWaker::ServiceWaker(asio::any_io_executor executor, SandboxService& service,
                           std::chrono::milliseconds timeout, Metrics* metrics)
    : executor_(std::move(executor)), service_(service), timeout_(timeout), metrics_(metrics) {}

void ServiceWaker::wake(const Ulid& id, std::function<void(edge::WakeOutcome)> done) {
  // Whichever comes first, the start's outcome or the deadline, answers; the other is
  // dropped. Both run on the control thread, so a plain flag would do; the atomic keeps the
  // rule obvious.
  struct Call {
    std::function<void(edge::WakeOutcome)> done;
    Metrics* metrics = nullptr;
    std::atomic<bool> answered{false};
    void answer(edge::WakeOutcome o) {
      if (answered.exchange(true)) return;
      if (metrics) metrics->wake(wake_result(o.kind));
      done(std::move(o));
    }
  };
  auto call = std::make_shared<Call>();
  call->done = std::move(done);
  call->metrics = metrics_;
  std::string sid = id.str();
  auto timer = std::make_shared<asio::steady_timer>(executor_, timeout_);
  timer->async_wait([call](const boost::system::error_code& ec) {
    if (!ec) call->answer(edge::WakeOutcome::timeout());
  });
  asio::co_spawn(
      executor_,
      [this, call, sid, timer]() -> asio::awaitable<void> {
        Actor actor;
        actor.name = "system";
        auto row = co_await service_.start(sid, actor);
        timer->cancel();
        if (row) {
          call->answer(edge::WakeOutcome::ok());
        } else if (row.error().status == 404 || row.error().status == 409) {
          call->answer(edge::WakeOutcome::gone());
        } else if (row.error().status == 503 && row.error().code == "sandbox_capacity") {
          call->answer(edge::WakeOutcome::refused(30));
        } else if (row.error().status == 504) {
          call->answer(edge::WakeOutcome::timeout());
        } else {
          call->answer(edge::WakeOutcome::failed(row.error().message));
        }
      },
      asio::detached);
}

}  // namespace sandboxd::control
