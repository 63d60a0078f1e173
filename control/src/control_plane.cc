#include "control/control_plane.h"

#include "admission.h"
#include "always_on.h"
#include "api.h"
#include "audit_sweeper.h"
#include "auth.h"
#include "base/log.h"
#include "docker/client.h"
#include "docker/socket.h"
#include "edge/edge_server.h"
#include "edge_bridge.h"
#include "certificates.h"
#include "http_server.h"
#include "idle_reaper.h"
#include "metrics.h"
#include "objects.h"
#include "runtimed_link.h"
#include "sandbox_service.h"
#include "task_service.h"
#include "workspace.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <deque>
#include <thread>

namespace sandboxd::control {

namespace {

constexpr log::Logger kLog{"control"};
constexpr std::chrono::milliseconds kBackoffFirst{500};
constexpr std::chrono::milliseconds kBackoffMax{10000};
constexpr std::chrono::seconds kPingEvery{2};
constexpr std::chrono::seconds kPingFresh{5};
constexpr std::chrono::minutes kReconcileEvery{5};
constexpr std::chrono::milliseconds kHandOverWait{100};   // SPEC §4.4 step 4
constexpr std::chrono::milliseconds kEndTunnelsWait{2000};  // §3.9: 1 s per close, and slack

bool auth_required(const config::Config& c) {
  switch (c.auth.required) {
    case config::AuthRequired::yes: return true;
    case config::AuthRequired::no: return false;
    case config::AuthRequired::automatic: return !c.control.listen.is_loopback();
  }
  return true;
}

docker::ClientOptions client_options(const std::string& socket_path, Metrics& metrics) {
  docker::ClientOptions options;
  options.socket_path = socket_path;
  options.on_call = [&metrics](const docker::CallRecord& call) { metrics.docker_call(call); };
  return options;
}

// Every state of SPEC §5.1, in its order: sandboxd_sandboxes lists them all, zeros included.
constexpr std::array<std::string_view, 8> kStates{"creating", "running", "stopping", "stopped",
                                                  "waking",   "error",   "destroyed", "purged"};

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(nothrow);
}

// Everything that lives on the control thread. Coroutines hold it by shared_ptr, so it is
// destroyed only after the last of them (at the latest while the io_context shuts down).
struct Runtime : ReadinessSource, MetricsSource, std::enable_shared_from_this<Runtime> {
  Runtime(asio::io_context& ioc, const config::Config& cfg, store::Store& st,
          WorkspaceRoot ws, std::string run_dir, std::string socket_path,
          std::unique_ptr<RuntimedLink> link, std::function<void(const Error&)> fatal)
      : config(cfg),
        store(st),
        workspaces(std::move(ws)),
        docker(ioc.get_executor(), client_options(socket_path, metrics)),
        lifecycle(ioc.get_executor(), system_clock(), lifecycle_floor_ms(st, system_clock())),
        service(ioc.get_executor(), cfg, st, docker, workspaces, std::move(run_dir), system_clock()),
        always_on(service, st, system_clock()),
        runtimed(std::move(link)),
        tasks(ioc.get_executor(), cfg, st, service, *runtimed, system_clock()),
        auth(cfg.auth.tokens, auth_required(cfg)),
        api(service, cfg, auth, *this,
            ObjectContext{&cfg, cfg.data_dir + "/workspaces", cfg.edge.http.listen.port}),
        server(ioc.get_executor(),
               HttpServerOptions{cfg.control.listen.host, cfg.control.listen.port,
                                 cfg.edge.timeouts.header_read, cfg.edge.timeouts.keepalive_idle},
               api),
        admission(cfg, [] { return read_host_memory(meminfo_path()); }),
        waker(ioc.get_executor(), service, cfg.wake.timeout, &metrics),
        audit_sweeper(st, cfg),
        on_fatal(std::move(fatal)) {
    service.set_on_change([this] { publish_routes(); });
    service.set_before_container_stop([this](const std::string& id) { return end_tunnels(id); });
    // SPEC §6.2, §6.8: runtimed.json before every start; tasks reconciled after it.
    service.set_runtimed(*runtimed);
    service.set_on_container_started([this](const std::string& id) {
      tasks.container_started(id);
      always_on.started(id);
    });
    service.set_on_exit([this](const store::SandboxRow& row) { on_sandbox_exit(row); });
    service.set_busy_source([this] { return tasks.busy_sandboxes(); });
    api.set_tasks(tasks);
    api.set_audit(store);
    // SPEC §2.7.12: every transition and task status change, after its store write.
    service.set_events(lifecycle);
    tasks.set_events(lifecycle);
    api.set_events(lifecycle);
    api.set_metrics(metrics, *this);
    // SPEC §4.6: creates and wakes pass admission, which may run one pressure pass.
    service.set_admission(admission);
    admission.set_pressure_pass([this](config::PressureBand band, HostMemory mem, std::uint64_t target) {
      metrics.reaper_run(Reaper::pressure);
      return pressure_pass(band, mem, target);
    });
  }

  // SPEC §11, on the control thread: counters from `metrics`, the rest read now.
  std::string metrics_text() override {
    TextWriter w;
    w.family("sandboxd_build_info", "gauge", "Build identity.");
    w.sample("sandboxd_build_info", {{"version", SANDBOXD_VERSION}, {"commit", SANDBOXD_COMMIT}}, 1);
    // Left out, never guessed, when the store cannot be read.
    if (auto rows = store::sandbox_repo::list(store, {})) {
      std::array<std::uint64_t, kStates.size()> counts{};
      for (const auto& row : *rows) {
        auto it = std::find(kStates.begin(), kStates.end(), row.status);
        if (it != kStates.end()) ++counts[static_cast<std::size_t>(it - kStates.begin())];
      }
      w.family("sandboxd_sandboxes", "gauge", "Sandboxes per state.");
      for (std::size_t i = 0; i < kStates.size(); ++i) {
        w.sample("sandboxd_sandboxes", {{"state", kStates[i]}}, static_cast<double>(counts[i]));
      }
    }
    const store::WriterStats writer = store.writer_stats();
    w.family("sandboxd_store_queue_depth", "gauge", "Operations waiting for the store writer.");
    w.sample("sandboxd_store_queue_depth", {}, static_cast<double>(writer.queue_depth));
    w.family("sandboxd_store_commit_seconds", "histogram", "Store writer transaction time, activity flushes included.");
    w.histogram("sandboxd_store_commit_seconds", {}, store::kCommitBuckets, writer.commit_counts,
                writer.commit_seconds);
    w.family("sandboxd_store_errors_total", "counter", "Failed store writes.");
    w.sample("sandboxd_store_errors_total", {}, static_cast<double>(writer.write_errors));
    w.family("sandboxd_wakes_in_progress", "gauge", "Wakes holding a wake.max_concurrent slot.");
    w.sample("sandboxd_wakes_in_progress", {}, static_cast<double>(admission.in_progress()));
    w.family("sandboxd_wake_queue_length", "gauge", "Wakes waiting for a slot.");
    w.sample("sandboxd_wake_queue_length", {}, static_cast<double>(admission.queued()));
    admission.write_metrics(w);
    audit_sweeper.write_metrics(w);
    if (auto mem = read_host_memory(meminfo_path())) {
      w.family("sandboxd_memory_total_bytes", "gauge", "MemTotal from /proc/meminfo.");
      w.sample("sandboxd_memory_total_bytes", {}, static_cast<double>(mem->total_bytes));
      w.family("sandboxd_memory_available_bytes", "gauge", "MemAvailable from /proc/meminfo.");
      w.sample("sandboxd_memory_available_bytes", {}, static_cast<double>(mem->available_bytes));
    }
    const SandboxService::Orphans orphans = service.orphans();
    w.family("sandboxd_reconciler_orphans", "gauge",
             "Containers and workspace directories without a row at the last reconciliation.");
    w.sample("sandboxd_reconciler_orphans", {{"kind", "container"}}, static_cast<double>(orphans.containers));
    w.sample("sandboxd_reconciler_orphans", {{"kind", "workspace"}}, static_cast<double>(orphans.workspaces));
    w.family("sandboxd_pressure_band", "gauge", "Active memory pressure band (0 = none).");
    w.sample("sandboxd_pressure_band", {}, pressure_band);
    const std::size_t execs = service.execs_running();
    w.family("sandboxd_exec_in_flight", "gauge", "Attached execs running.");
    w.sample("sandboxd_exec_in_flight", {}, static_cast<double>(execs));
    w.family("sandboxd_tasks_running", "gauge", "Agent tasks running.");
    w.sample("sandboxd_tasks_running", {}, static_cast<double>(tasks.tasks_running()));
    std::optional<edge::EdgeMetrics> edge_metrics;
    if (edge) {
      edge_metrics = edge->metrics();  // summed over the workers, without a lock
      write_edge_metrics(w, *edge_metrics);
    }
    w.family("sandboxd_wake_phase_seconds", "histogram",
             "Wake phases: queue (slot), start (start call until running), port_open (until "
             "the probe succeeds), first_byte (dispatch until the first upstream byte).");
    metrics.write_wake_phases(w);
    if (edge_metrics) write_edge_wake_phases(w, *edge_metrics);
    if (certs != nullptr) certs->write_metrics(w);
    w.family("sandboxd_config_reloads_total", "counter", "SIGHUP reloads.");
    w.sample("sandboxd_config_reloads_total", {{"result", "ok"}},
             static_cast<double>(reloads_ok.load(std::memory_order_relaxed)));
    w.sample("sandboxd_config_reloads_total", {{"result", "error"}},
             static_cast<double>(reloads_error.load(std::memory_order_relaxed)));
    w.family("sandboxd_config_restart_pending", "gauge",
             "1 while a reload changed a key that needs a restart.");
    w.sample("sandboxd_config_restart_pending", {}, restart_pending.load(std::memory_order_relaxed) ? 1 : 0);
    metrics.write(w);
    write_process_metrics(w);
    return w.take();
  }

  // The edge's route table is derived from every row; rebuilt after each committed change.
  void publish_routes() {
    auto rows = store::sandbox_repo::list(store, {});
    if (!rows) {
      kLog.error("cannot read sandboxes for the route table", {{"error", rows.error().message()}});
      return;
    }
    routes.publish(build_routes(*rows, handing_over));
  }

  // SPEC §4.4 steps 3-4, under the id's lock, for a sandbox found idle: its route says
  // `stopping` from now on, so new requests are held; once every edge worker has passed the
  // previous table, a request that got in before the swap (in flight, not held) keeps the
  // sandbox running and the route goes back. True when the stop may go on; the route stays
  // `stopping` until the store says so too (the caller calls `handed_over`).
  asio::awaitable<bool> hand_over(const std::string& id) {
    auto parsed = Ulid::parse(id);
    if (!edge || !parsed) co_return true;
    handing_over.insert(id);
    publish_routes();
    std::function<void(std::function<void()>)> pass = [this](std::function<void()> done) {
      edge->barrier(std::move(done));
    };
    co_await wait_for_callback(std::move(pass), kHandOverWait);
    std::optional<edge::SandboxActivity> seen = activity.get(*parsed);
    if (seen && seen->proxied() > 0) {
      handed_over(id);
      co_return false;
    }
    co_return true;
  }

  void handed_over(const std::string& id) {
    if (handing_over.erase(id) > 0) publish_routes();
  }

  // SPEC §3.9: before a running container stops, the edge ends its tunnels.
  asio::awaitable<void> end_tunnels(const std::string& id) {
    auto parsed = Ulid::parse(id);
    if (!edge || !parsed) co_return;
    std::function<void(std::function<void()>)> end = [this, parsed](std::function<void()> done) {
      edge->end_tunnels(*parsed, std::move(done));
    };
    co_await wait_for_callback(std::move(end), kEndTunnelsWait);
  }

  std::vector<ReadyCheck> readiness() override {
    std::vector<ReadyCheck> checks;
    auto st = store.ping();
    checks.push_back({"store", st.has_value(), st ? "ok" : st.error().message()});
    bool docker_ok = docker_ok_at && std::chrono::steady_clock::now() - *docker_ok_at < kPingFresh;
    checks.push_back({"docker", docker_ok, docker_ok ? "ok" : docker_detail});
    checks.push_back({"reconcile", reconciled, reconciled ? "ok" : "boot reconciliation not done"});
    return checks;
  }

  asio::awaitable<void> boot() {
    auto self = shared_from_this();
    // SPEC §8: the audit sweep needs only the store; one now, then daily.
    asio::co_spawn(server_executor(), [self] { return self->audit_sweeper.run(self->stopping); },
                   asio::detached);
    auto backoff = kBackoffFirst;
    for (;;) {
      auto version = co_await docker.negotiate();
      if (version) {
        auto st = co_await service.ensure_network();
        if (st) {
          kLog.info("docker connected", {{"api_version", *version}});
          break;
        }
        if (st.error().code == Errc::conflict) {
          on_fatal(st.error());
          co_return;
        }
        docker_detail = st.error().message();
      } else {
        docker_detail = version.error().message();
      }
      kLog.warn("docker not ready; retrying", {{"error", docker_detail}, {"in_ms", backoff.count()}});
      co_await sleep_for(backoff);
      backoff = std::min(backoff * 2, kBackoffMax);
    }
    docker_ok_at = std::chrono::steady_clock::now();
    asio::co_spawn(server_executor(), [self] { return self->ping_loop(); }, asio::detached);
    co_await reconcile_until_done();
    publish_routes();
    reconciled = true;
    kLog.info("boot reconciliation done");
    co_await tasks.recover();  // SPEC §6.8: relays of open tasks pick up where they were
    asio::co_spawn(server_executor(), [self] { return self->events_loop(); }, asio::detached);
    asio::co_spawn(server_executor(), [self] { return self->event_consumer(); }, asio::detached);
    asio::co_spawn(server_executor(), [self] { return self->periodic_reconcile(); }, asio::detached);
    asio::co_spawn(server_executor(), [self] { return self->activity_flush_loop(); }, asio::detached);
    asio::co_spawn(server_executor(), [self] { return self->idle_reaper_loop(); }, asio::detached);
    // Always running: pressure.enabled is read at each tick, so a reload can turn it on.
    asio::co_spawn(server_executor(), [self] { return self->pressure_loop(); }, asio::detached);
  }

  asio::any_io_executor server_executor() { return service_executor; }

  void spawn_always_on_pass(std::string reason) {
    auto self = shared_from_this();
    asio::co_spawn(server_executor(), [self, reason] { return self->always_on.pass(reason); },
                   asio::detached);
  }

  // SPEC §5.10: an always_on sandbox that crashed comes back after its backoff delay.
  void on_sandbox_exit(const store::SandboxRow& row) {
    auto delay = always_on.crashed(row);
    if (!delay) return;
    auto self = shared_from_this();
    asio::co_spawn(server_executor(),
                   [self, id = row.id, d = *delay] { return self->always_on.restart_after(id, d); },
                   asio::detached);
  }

  // The active band's `below` (0: none). Leaving every band brings back the always_on
  // sandboxes the pressure reaper stopped (SPEC §5.10).
  void set_pressure_band(double below) {
    const bool cleared = pressure_band > 0 && below == 0;
    pressure_band = below;
    if (cleared) spawn_always_on_pass("pressure");
  }

  asio::awaitable<void> reconcile_until_done() {
    auto backoff = kBackoffFirst;
    for (;;) {
      auto st = co_await service.reconcile_all();
      if (st) {
        // SPEC §5.10: what reconciliation found gone comes back if it is always_on.
        spawn_always_on_pass("exited");
        co_return;
      }
      kLog.warn("reconciliation failed; retrying", {{"error", st.error().message()}});
      co_await sleep_for(backoff);
      backoff = std::min(backoff * 2, kBackoffMax);
    }
  }

  asio::awaitable<void> ping_loop() {
    auto self = shared_from_this();
    while (!stopping) {
      auto st = co_await docker.ping();
      if (st) {
        docker_ok_at = std::chrono::steady_clock::now();
      } else {
        docker_detail = st.error().message();
      }
      co_await sleep_for(kPingEvery);
    }
  }

  asio::awaitable<void> periodic_reconcile() {
    auto self = shared_from_this();
    while (!stopping) {
      co_await sleep_for(kReconcileEvery);
      if (auto st = co_await service.reconcile_all(); !st) {
        kLog.warn("periodic reconciliation failed", {{"error", st.error().message()}});
      }
    }
  }

  // SPEC §4.2: every store.activity_flush, one transaction with the edge activity that moved.
  asio::awaitable<void> activity_flush_loop() {
    auto self = shared_from_this();
    while (!stopping) {
      co_await sleep_for(config.store.activity_flush);
      if (stopping) co_return;
      std::vector<store::ActivityMark> marks = activity_flush.pending(activity.snapshot());
      if (marks.empty()) continue;
      store::WriteJob job = [marks](store::Tx& tx) {
        return store::sandbox_repo::touch_activity(tx, std::span<const store::ActivityMark>(marks));
      };
      Status st = co_await store_write(store, std::move(job));
      if (st) {
        activity_flush.committed(marks);
      } else {
        kLog.warn("activity flush failed; retrying at the next flush", {{"error", st.error().message()}});
      }
    }
  }

  // The last flush at shutdown, blocking: only once the control thread has ended (the
  // flush state belongs to it) and the edge has stopped filling the table.
  void final_activity_flush() {
    std::vector<store::ActivityMark> marks = activity_flush.pending(activity.snapshot());
    if (marks.empty()) return;
    Status st = store.write([marks](store::Tx& tx) {
      return store::sandbox_repo::touch_activity(tx, std::span<const store::ActivityMark>(marks));
    });
    if (st) {
      activity_flush.committed(marks);
    } else {
      kLog.warn("activity flush at shutdown failed", {{"error", st.error().message()}});
    }
  }

  // SPEC §4.4. The first tick waits min(5 min, idle.threshold) after boot (§4.2) so clients
  // cut off by a restart can come back; ticks never overlap (the loop is sequential).
  asio::awaitable<void> idle_reaper_loop() {
    auto self = shared_from_this();
    // Waited in check_interval steps, so a reload that shortens idle.threshold (SPEC §9.4)
    // shortens this wait too.
    const auto booted = std::chrono::steady_clock::now();
    for (;;) {
      const auto first = std::min<std::chrono::milliseconds>(std::chrono::minutes(5),
                                                             config.idle.threshold);
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - booted);
      if (stopping || waited >= first) break;
      co_await sleep_for(std::min(first - waited, config.idle.check_interval));
    }
    while (!stopping) {
      co_await reap_idle();
      if (stopping) co_return;
      co_await sleep_for(config.idle.check_interval);
    }
  }

  // Under the id's lock, on a freshly loaded row and the edge's entry read now: activity
  // since a candidate list was made keeps the sandbox running.
  bool still_idle(const store::SandboxRow& row, const config::IdleConfig& judged,
                  std::int64_t* idle_for_ms) {
    std::optional<edge::SandboxActivity> seen;
    if (auto parsed = Ulid::parse(row.id)) seen = activity.get(*parsed);
    const edge::SandboxActivity* entry = seen ? &*seen : nullptr;
    const std::int64_t now = system_clock().unix_ms();
    *idle_for_ms = now - last_activity_ms(row, entry);
    return is_idle(row, entry, service.execs_in_flight().contains(row.id), now, judged);
  }

  asio::awaitable<void> reap_idle() {
    metrics.reaper_run(Reaper::idle);
    store::SandboxFilter running;
    running.status = "running";
    auto rows = store::sandbox_repo::list(store, running);
    if (!rows) {
      kLog.warn("idle reaper cannot read sandboxes", {{"error", rows.error().message()}});
      co_return;
    }
    std::vector<std::string> ids = idle_candidates(*rows, activity.snapshot(), system_clock().unix_ms(),
                                                   config.idle, service.execs_in_flight());
    for (const std::string& id : ids) {
      if (stopping) co_return;
      std::int64_t idle_for_ms = 0;
      SandboxService::IdleCheck check = [this, &idle_for_ms](const store::SandboxRow& row)
          -> asio::awaitable<bool> {
        if (!still_idle(row, config.idle, &idle_for_ms)) co_return false;
        co_return co_await hand_over(row.id);
      };
      std::string reason = "idle";
      std::string no_band;
      auto outcome = co_await service.stop_if_idle(id, check, std::move(reason), std::move(no_band));
      handed_over(id);
      if (!outcome) continue;
      if (!*outcome) {
        metrics.reaper_stop_failure(Reaper::idle);
        kLog.warn("idle reaper could not stop sandbox; retrying at the next tick",
                  {{"id", id}, {"error", outcome->error().message}});
        continue;
      }
      metrics.idle_reaper_stop();
      kLog.info("idle reaper stopped sandbox", {{"id", id}, {"idle_for_s", idle_for_ms / 1000}});
    }
  }

  // SPEC §4.6: every pressure.check_interval, the band MemAvailable falls in decides which
  // idle sandboxes stop, least recently active first, until the estimate is back above the
  // band (+2 points) or max_stops_per_tick were made.
  asio::awaitable<void> pressure_loop() {
    auto self = shared_from_this();
    while (!stopping) {
      if (config.pressure.enabled) {
        co_await reap_pressure();
      } else {
        set_pressure_band(0);
      }
      if (stopping) co_return;
      co_await sleep_for(config.pressure.check_interval);
    }
  }

  asio::awaitable<void> reap_pressure() {
    metrics.reaper_run(Reaper::pressure);
    const auto mem = read_host_memory(meminfo_path());
    if (!mem || mem->total_bytes == 0) co_return;
    const double total = static_cast<double>(mem->total_bytes);
    const double avail_pct = 100.0 * static_cast<double>(mem->available_bytes) / total;
    const auto band = active_band(config.pressure.bands, avail_pct);
    set_pressure_band(band ? band->below : 0);
    if (!band) co_return;
    // Until the band is cleared by 2 points (§4.6 step 4).
    const auto target = static_cast<std::uint64_t>(total * (band->below + 2) / 100.0);
    co_await pressure_pass(*band, *mem, target);
  }

  // §4.6 steps 3-5 judged with `band`: the victims stop one after another until the
  // estimate of available memory reaches `target_bytes` or max_stops_per_tick were made.
  // Also admission's pass (admission.h). Returns the bytes the stops are estimated to free.
  asio::awaitable<std::uint64_t> pressure_pass(config::PressureBand band, HostMemory mem,
                                               std::uint64_t target_bytes) {
    const double total = static_cast<double>(mem.total_bytes);
    double avail = static_cast<double>(mem.available_bytes);
    const double avail_pct = 100.0 * avail / total;
    store::SandboxFilter running;
    running.status = "running";
    auto rows = store::sandbox_repo::list(store, running);
    if (!rows) co_return 0;
    const std::vector<std::string> victims =
        pressure_victims(*rows, activity.snapshot(), system_clock().unix_ms(), band, config.idle,
                         service.execs_in_flight());
    const std::string label = band_label(band);
    const double estimate = static_cast<double>(config.wake.admission.estimate_per_sandbox);
    const bool last_band = band.stop_idle_for.count() == 0;
    std::uint32_t stops = 0;
    for (const std::string& id : victims) {
      if (stopping || stops >= config.pressure.max_stops_per_tick) break;
      if (avail >= static_cast<double>(target_bytes)) break;
      std::int64_t idle_for_ms = 0;
      const config::IdleConfig judged = band_idle(config.idle, band);
      SandboxService::IdleCheck check = [this, &idle_for_ms, &judged, last_band](
                                            const store::SandboxRow& row) -> asio::awaitable<bool> {
        const bool idle = still_idle(row, judged, &idle_for_ms);
        if (!idle && !(last_band && row.status == "running")) co_return false;
        co_return co_await hand_over(row.id);
      };
      std::string reason = "pressure";
      std::string band_name = label;
      auto outcome = co_await service.stop_if_idle(id, check, std::move(reason), std::move(band_name));
      handed_over(id);
      if (!outcome) continue;
      if (!*outcome) {
        metrics.reaper_stop_failure(Reaper::pressure);
        continue;
      }
      ++stops;
      avail += estimate;
      metrics.pressure_stop(label);
      kLog.warn("pressure stop", {{"id", id}, {"band", label}, {"avail_pct", avail_pct},
                                  {"idle_for_s", idle_for_ms / 1000},
                                  {"est_freed_bytes", config.wake.admission.estimate_per_sandbox}});
    }
    co_return stops * config.wake.admission.estimate_per_sandbox;
  }

  // Follows Docker's /events for this instance; after a drop, reconnects with backoff and
  // reconciles again, since events were missed meanwhile (SPEC §5.9).
  asio::awaitable<void> events_loop() {
    auto self = shared_from_this();
    docker::EventFilter filter;
    filter.types = {"container"};
    filter.labels = {"sandboxd.instance=" + service.instance_id()};
    auto backoff = kBackoffFirst;
    bool resync = false;
    while (!stopping) {
      bool connected = false;
      std::function<bool(const docker::Event&)> on_event = [this](const docker::Event& e) {
        events.push_back(e);
        events_bell->cancel();
        return !stopping;
      };
      std::function<void()> on_connected = [&] {
        connected = true;
        metrics.docker_events_connected(true);
        backoff = kBackoffFirst;
        kLog.info("docker events connected");
      };
      auto st = co_await docker.events(filter, on_event, on_connected);
      metrics.docker_events_connected(false);
      if (stopping) co_return;
      if (connected && resync) co_await reconcile_until_done();
      kLog.warn("docker events stream ended; reconnecting",
                {{"error", st ? std::string("closed") : st.error().message()}, {"in_ms", backoff.count()}});
      resync = true;
      co_await sleep_for(backoff);
      backoff = std::min(backoff * 2, kBackoffMax);
      // Reconcile once the stream is back (next iteration), and also now if Docker answers.
      if (auto ping = co_await docker.ping(); ping) co_await reconcile_until_done();
    }
  }

  asio::awaitable<void> event_consumer() {
    auto self = shared_from_this();
    while (!stopping) {
      while (!events.empty()) {
        docker::Event e = std::move(events.front());
        events.pop_front();
        co_await service.on_event(e);
      }
      events_bell->expires_at(asio::steady_timer::time_point::max());
      co_await events_bell->async_wait(nothrow);
    }
  }

  // SIGHUP, on the control thread, once `config` holds the reloaded values: the pieces that
  // took a copy at start take the new one; everything else reads `config` when it acts.
  void config_reloaded() {
    auth = Authenticator(config.auth.tokens, auth_required(config));
    api.set_preview_keys(config.auth.preview.secrets);
    waker.set_timeout(config.wake.timeout);
    admission.set_max_concurrent(config.wake.max_concurrent);
    server.set_timeouts(config.edge.timeouts.header_read, config.edge.timeouts.keepalive_idle);
  }

  // The running config (ControlPlaneImpl::config_), read on the control thread only. A
  // reload replaces it whole between two handlers (SPEC §9.4), so code that needs one value
  // on both sides of a co_await copies it first.
  const config::Config& config;
  store::Store& store;
  WorkspaceRoot workspaces;
  Metrics metrics;  // before docker and waker, which count into it
  docker::Client docker;
  LifecycleEvents lifecycle;  // before service and tasks, which announce into it
  SandboxService service;
  AlwaysOn always_on;
  std::unique_ptr<RuntimedLink> runtimed;  // before tasks, which uses it
  TaskService tasks;
  Authenticator auth;
  Api api;
  HttpServer server;
  edge::RouteTablePublisher routes;
  edge::ActivityTable activity;
  ActivityFlush activity_flush;  // control thread only (and after it ended, at shutdown)
  Admission admission;
  ServiceWaker waker;
  AuditSweeper audit_sweeper;
  std::function<void(const Error&)> on_fatal;
  edge::EdgeServer* edge = nullptr;  // set once the edge listens; outlives the control thread
  CertificateSource* certs = nullptr;  // likewise
  std::atomic<std::uint64_t> reloads_ok{0};  // SIGHUP outcomes (SPEC §9.4)
  std::atomic<std::uint64_t> reloads_error{0};
  std::atomic<bool> restart_pending{false};
  double pressure_band = 0;  // the active band's `below`, 0 for none (control thread)
  std::set<std::string> handing_over;  // see hand_over
  asio::any_io_executor service_executor;
  std::optional<std::chrono::steady_clock::time_point> docker_ok_at;
  std::string docker_detail = "not connected yet";
  bool reconciled = false;
  bool stopping = false;
  std::deque<docker::Event> events;
  std::unique_ptr<asio::steady_timer> events_bell;
};

class ControlPlaneImpl final : public ControlPlane {
 public:
  ~ControlPlaneImpl() override {
    stop();
    runtime_.reset();
  }

  Status init(const config::Config& started, store::Store& store,
              std::function<void(const Error&)> on_fatal) {
    config_ = started;
    const config::Config& cfg = config_;  // what every component reads from now on
    auto ws = WorkspaceRoot::open(cfg.data_dir, cfg.sandbox.user.uid, cfg.sandbox.user.gid);
    if (!ws) return ws.error();
    std::string run_dir = cfg.data_dir + "/run";
    struct stat st {};
    if (lstat(run_dir.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return Error{Errc::conflict, run_dir + " is not a directory (or is a symlink)"};
    } else if (mkdir(run_dir.c_str(), 0700) != 0) {
      return Error{Errc::io, "cannot create " + run_dir};
    }
    chmod(run_dir.c_str(), 0700);
    auto link = RuntimedLink::open(cfg);  // node.key, and <data_dir>/run opened once
    if (!link) return link.error();
    auto socket = docker::resolve_docker_socket(cfg.docker.socket);
    if (!socket) return socket.error();
    if (socket->from_docker_host) kLog.info("DOCKER_HOST overrides docker.socket", {{"socket", socket->path}});
    runtime_ = std::make_shared<Runtime>(ioc_, cfg, store, std::move(*ws), run_dir, socket->path,
                                         std::move(*link), std::move(on_fatal));
    runtime_->service_executor = ioc_.get_executor();
    runtime_->events_bell = std::make_unique<asio::steady_timer>(ioc_);
    if (auto listening = runtime_->server.listen(); !listening) return listening.error();
    kLog.info("control listening",
              {{"address", cfg.control.listen.host}, {"port", runtime_->server.port()}});
    runtime_->publish_routes();
    // Issuance never blocks start-up: this loads files or a stored certificate, or makes
    // the placeholder; the ACME manager works in the background.
    auto certs = CertificateSource::create(cfg);
    if (!certs) return certs.error();
    certs_ = std::move(*certs);
    runtime_->certs = certs_.get();
    runtime_->api.set_certificates(*certs_);
    if (auto edge_started = start_edge(cfg); !edge_started) return edge_started.error();
    auto rt = runtime_;
    asio::co_spawn(ioc_, [rt] { return rt->boot(); }, asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
    return ok();
  }

  // The preview edge on edge.http.listen. The default :80 falls back to :8080 when binding
  // needs a privilege this process lacks (SPEC §9.1); an explicit address never does.
  Status start_edge(const config::Config& cfg) {
    edge::EdgeOptions options = edge_options(cfg);
    drain_ = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.edge.timeouts.shutdown_drain);
    if (auto first = certs_->initial()) options.certificates = std::move(*first);
    auto access_log = open_access_log(cfg);  // log.access_log: off, stderr or a file
    if (!access_log) return access_log.error();
    options.access_log = std::move(*access_log);
    auto started = edge::EdgeServer::start(options, runtime_->routes, runtime_->waker, runtime_->activity);
    if (!started && !cfg.edge.http.listen.explicit_ &&
        started.error().detail.find("ermission") != std::string::npos) {
      kLog.warn("cannot bind the default edge port 80 without privilege; using 8080");
      options.listen_port = 8080;
      started = edge::EdgeServer::start(options, runtime_->routes, runtime_->waker, runtime_->activity);
    }
    if (!started) return started.error();
    edge_ = std::move(*started);
    runtime_->edge = edge_.get();
    runtime_->api.set_edge_port(options.tls ? edge_->https_port() : edge_->port());
    certs_->attach(*edge_);
    kLog.info("edge listening", {{"address", options.listen_host}, {"port", edge_->port()}});
    if (options.tls) {
      kLog.info("edge https listening",
                {{"address", options.https_listen_host}, {"port", edge_->https_port()}});
    }
    return ok();
  }

  std::uint16_t port() const override { return runtime_ ? runtime_->server.port() : 0; }
  std::uint16_t edge_port() const override { return edge_ ? edge_->port() : 0; }
  std::uint16_t edge_https_port() const override { return edge_ ? edge_->https_port() : 0; }

  void reload(const config::Config& next, bool restart_pending) override {
    // The edge and the certificate source are thread-safe; the rest reads config_ on the
    // control thread, so it is replaced there.
    if (edge_) {
      edge_->reconfigure(edge_options(next));
      if (Status moved = edge_->set_access_log(next.log.access_log); !moved) {
        kLog.error("SIGHUP: the new log.access_log cannot be used; the old target stays",
                   {{"error", moved.error().message()}});
      }
    }
    if (certs_) certs_->reload(next);
    drain_ = std::chrono::duration_cast<std::chrono::milliseconds>(next.edge.timeouts.shutdown_drain);
    auto snapshot = std::make_shared<const config::Config>(next);
    asio::post(ioc_, [this, rt = runtime_, snapshot, restart_pending] {
      config_ = *snapshot;
      rt->config_reloaded();
      rt->reloads_ok.fetch_add(1, std::memory_order_relaxed);
      rt->restart_pending.store(restart_pending, std::memory_order_relaxed);
    });
  }

  void reload_failed() override {
    if (runtime_) runtime_->reloads_error.fetch_add(1, std::memory_order_relaxed);
  }

  Status reopen_logs() override { return edge_ ? edge_->reopen_access_log() : ok(); }

  void stop() override {
    if (certs_) certs_->stop();  // no certificate reaches the edge from here on
    // The edge first: its workers call the Waker, which needs the control thread.
    // SPEC §3.16: in-flight requests, streams and held requests get edge.timeouts.shutdown_drain.
    if (edge_) edge_->stop(drain_);
    if (!thread_.joinable()) return;
    asio::post(ioc_, [rt = runtime_] {
      rt->stopping = true;
      rt->always_on.stop();
      rt->server.close();
    });
    // Let in-flight handlers finish briefly, then stop the loop.
    asio::steady_timer grace(ioc_, std::chrono::milliseconds(200));
    grace.async_wait([this](const boost::system::error_code&) { ioc_.stop(); });
    thread_.join();
    runtime_->final_activity_flush();
  }

 private:
  // The running config: every component holds a reference to it, so it outlives even the
  // coroutine frames the io_context destroys. Written by init, then only on the control
  // thread (reload).
  config::Config config_;
  asio::io_context ioc_{1};  // destroyed after everything bound to it
  std::shared_ptr<Runtime> runtime_;
  std::unique_ptr<CertificateSource> certs_;
  std::chrono::milliseconds drain_{1000};
  std::unique_ptr<edge::EdgeServer> edge_;
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<ControlPlane>> ControlPlane::start(const config::Config& config,
                                                          store::Store& store,
                                                          std::function<void(const Error&)> on_fatal) {
  auto plane = std::make_unique<ControlPlaneImpl>();
  if (auto st = plane->init(config, store, std::move(on_fatal)); !st) return st.error();
  return std::unique_ptr<ControlPlane>(std::move(plane));
}

}  // namespace sandboxd::control
