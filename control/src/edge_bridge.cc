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

edge::PreviewAuthSettings preview_auth_settings(const config::Config& c) {
  edge::PreviewAuthSettings s;
  for (const auto& k : c.auth.preview.secrets) s.keys.push_back({k.kid, k.secret.reveal()});
  s.cookie_ttl = std::chrono::duration_cast<std::chrono::seconds>(c.auth.preview.cookie_ttl);
  s.redirect_url = c.auth.preview.redirect_url;
  return s;
}

edge::EdgeOptions edge_options(const config::Config& c) {
  edge::EdgeOptions o;
  o.listen_host = c.edge.http.listen.host;
  o.listen_port = c.edge.http.listen.port;
  o.tls = c.tls.mode != config::TlsMode::off;
  o.https_listen_host = c.edge.https.listen.host;
  o.https_listen_port = c.edge.https.listen.port;
  o.redirect_http = c.edge.redirect_http;
  o.tls13_only = c.tls.min_version == config::TlsVersion::v1_3;
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
  o.preview_auth = preview_auth_settings(c);
  o.wake_timeout = c.wake.timeout;
  o.probe_interval = c.wake.probe_interval;
  return o;
}

Result<std::shared_ptr<edge::AccessLogWriter>> open_access_log(const config::Config& c) {
  // Opened also when off (""), so that a reload can turn it on.
  return edge::AccessLogWriter::open(c.log.access_log);
}

void write_edge_metrics(TextWriter& w, const edge::EdgeMetrics& m) {
  auto gauge = [&w](std::string_view name, std::string_view help, double v) {
    w.family(name, "gauge", help);
    w.sample(name, {}, v);
  };
  auto counter = [&w](std::string_view name, std::string_view help, double v) {
    w.family(name, "counter", help);
    w.sample(name, {}, v);
  };
  // One sample per label value, in the list's order.
  auto per_label = [&w](std::string_view name, std::string_view type, std::string_view help,
                        std::string_view label, const auto& names, const auto& values) {
    w.family(name, type, help);
    for (std::size_t i = 0; i < names.size(); ++i) {
      w.sample(name, {{label, names[i]}}, static_cast<double>(values[i]));
    }
  };
  auto histograms = [&w](std::string_view name, std::string_view help, std::string_view label,
                         const auto& names, const auto& values) {
    w.family(name, "histogram", help);
    for (std::size_t i = 0; i < names.size(); ++i) {
      w.histogram(name, {{label, names[i]}}, edge::kDurationBuckets, values[i].counts,
                  values[i].sum);
    }
  };

  per_label("sandboxd_edge_connections_open", "gauge", "Open client connections.", "listener",
            edge::kListenerNames, m.connections_open);
  per_label("sandboxd_edge_connections_total", "counter", "Accepted client connections.",
            "listener", edge::kListenerNames, m.connections_total);
  per_label("sandboxd_edge_connections_rejected_total", "counter",
            "Client connections refused or cut.", "reason", edge::kRejectNames, m.rejected);
  gauge("sandboxd_edge_held_requests", "Requests held right now.",
        static_cast<double>(m.held_requests));

  w.family("sandboxd_edge_requests_total", "counter",
           "Finished requests; source=edge when the edge wrote the answer.");
  for (std::size_t l = 0; l < edge::kListenerNames.size(); ++l) {
    for (std::size_t c = 0; c < edge::kClassNames.size(); ++c) {
      for (std::size_t s = 0; s < edge::kSourceNames.size(); ++s) {
        w.sample("sandboxd_edge_requests_total",
                 {{"class", edge::kClassNames[c]}, {"source", edge::kSourceNames[s]},
                  {"listener", edge::kListenerNames[l]}},
                 static_cast<double>(m.requests[l][c][s]));
      }
    }
  }
  histograms("sandboxd_edge_request_duration_seconds",
             "Request head complete until the last byte, tunnels not included.", "source",
             edge::kSourceNames, m.request_duration);
  w.family("sandboxd_edge_bytes_total", "counter", "Body and tunnel bytes from and to clients.");
  w.sample("sandboxd_edge_bytes_total", {{"direction", "in"}}, static_cast<double>(m.bytes_in));
  w.sample("sandboxd_edge_bytes_total", {{"direction", "out"}}, static_cast<double>(m.bytes_out));
  per_label("sandboxd_edge_tunnels_open", "gauge", "Open Upgrade tunnels.", "protocol",
            edge::kTunnelProtocolNames, m.tunnels_open);
  per_label("sandboxd_edge_tunnels_closed_total", "counter",
            "Ended Upgrade tunnels, by who ended them.", "by", edge::kTunnelEndNames,
            m.tunnels_closed);
  per_label("sandboxd_edge_errors_total", "counter", "Answers the edge wrote itself, by code.",
            "code", edge::kEdgeErrorCodes, m.errors);
  gauge("sandboxd_edge_upstream_connections_open", "Upstream connections, busy and pooled.",
        static_cast<double>(m.upstream_connections_open));
  counter("sandboxd_edge_upstream_retries_total",
          "Requests retried on a fresh upstream connection.",
          static_cast<double>(m.upstream_retries));
  counter("sandboxd_edge_access_log_dropped_total",
          "Access log lines dropped because the writer fell behind.",
          static_cast<double>(m.access_log_dropped));
  w.family("sandboxd_preview_auth_total", "counter", "Private-preview checks.");
  for (std::size_t r = 0; r < edge::kPreviewResultNames.size(); ++r) {
    for (std::size_t v = 0; v < edge::kPreviewViaNames.size(); ++v) {
      for (std::size_t why = 0; why < edge::kTokenCheckNames.size(); ++why) {
        const std::uint64_t n = m.preview_auth[r][v][why];
        if (n == 0 && !(r == 0 && why == 0)) continue;  // the label sets that happened
        w.sample("sandboxd_preview_auth_total",
                 {{"result", edge::kPreviewResultNames[r]}, {"via", edge::kPreviewViaNames[v]},
                  {"reason", edge::kTokenCheckNames[why]}},
                 static_cast<double>(n));
      }
    }
  }
  w.family("sandboxd_tls_handshakes_total", "counter", "TLS handshakes.");
  for (std::size_t i = 0; i < edge::kTlsVersionNames.size(); ++i) {
    w.sample("sandboxd_tls_handshakes_total",
             {{"result", "ok"}, {"version", edge::kTlsVersionNames[i]}},
             static_cast<double>(m.tls_handshakes_ok[i]));
  }
  w.sample("sandboxd_tls_handshakes_total", {{"result", "failed"}, {"version", ""}},
           static_cast<double>(m.tls_handshakes_failed));
  w.family("sandboxd_tls_reloads_total", "counter", "Certificate set swaps.");
  w.sample("sandboxd_tls_reloads_total", {{"result", "ok"}}, static_cast<double>(m.tls_reloads_ok));
  w.sample("sandboxd_tls_reloads_total", {{"result", "error"}},
           static_cast<double>(m.tls_reloads_error));
  per_label("sandboxd_port_waits_total", "counter", "Port waits on running sandboxes.", "result",
            edge::kPortWaitNames, m.port_waits);
  histograms("sandboxd_held_request_seconds", "Time each request was held.", "result",
             edge::kHeldResultNames, m.held_seconds);
  w.family("sandboxd_wake_duration_seconds", "histogram",
           "First held request until the first port is open.");
  w.histogram("sandboxd_wake_duration_seconds", {}, edge::kDurationBuckets, m.wake_duration.counts,
              m.wake_duration.sum);
}

void write_edge_wake_phases(TextWriter& w, const edge::EdgeMetrics& m) {
  for (std::size_t i = 0; i < edge::kEdgeWakePhaseNames.size(); ++i) {
    w.histogram("sandboxd_wake_phase_seconds", {{"phase", edge::kEdgeWakePhaseNames[i]}},
                edge::kDurationBuckets, m.wake_phases[i].counts, m.wake_phases[i].sum);
  }
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
  asio::co_spawn(
      executor_,
      [this, call, sid]() -> asio::awaitable<void> {
        using steady = std::chrono::steady_clock;
        auto seconds_since = [](steady::time_point t) {
          return std::chrono::duration<double>(steady::now() - t).count();
        };
        auto timer = std::make_shared<asio::steady_timer>(executor_, timeout_);
        timer->async_wait([call](const boost::system::error_code& ec) {
          if (!ec) call->answer(edge::WakeOutcome::timeout());
        });
        Actor actor;
        actor.name = "system";
        // Admission happens inside start, after a creating or stopping sandbox has settled
        // (SPEC §3.6 step 3); one that timed out while queued is not started.
        WakeTrace trace;
        trace.abandoned = [call] { return call->answered.load(); };
        const auto started = steady::now();
        auto row = co_await service_.start(sid, actor, true, &trace);
        if (metrics_) {
          const double queue = std::chrono::duration<double>(trace.admission).count();
          metrics_->wake_phase(WakePhase::queue, queue);
          metrics_->wake_phase(WakePhase::start, std::max(0.0, seconds_since(started) - queue));
        }
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
