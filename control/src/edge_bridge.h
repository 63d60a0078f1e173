// What control gives the edge (DESIGN.md: control configures the data plane): the route
// table derived from the sandbox rows (SPEC §3.5, §5.1), the Waker backed by the sandbox
// service (SPEC §3.6), the edge's options and access log derived from the config; and what
// it reads back: the edge's metric families (SPEC §11).
#pragma once

#include "async_util.h"
#include "config/config.h"
#include "metrics.h"
#include "edge/edge_metrics.h"
#include "edge/edge_options.h"
#include "edge/route_table.h"
#include "edge/waker.h"
#include "sandbox_service.h"
#include "store/sandbox_repo.h"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace sandboxd::control {

// One route per sandbox that has one: destroyed and purged rows have none (404).
// `handing_over` are running sandboxes that an idle stop is taking over: their routes say
// `stopping` before the store does (SPEC §4.4 step 3), so new requests are held.
std::shared_ptr<const edge::RouteTable> build_routes(const std::vector<store::SandboxRow>& rows,
                                                     const std::set<std::string>& handing_over = {});

// auth.preview.* as the edge takes it (§3.14).
edge::PreviewAuthSettings preview_auth_settings(const config::Config& c);
edge::EdgeOptions edge_options(const config::Config& config);

// log.access_log (SPEC §3.11): null when it is "", else a writer on "stderr" or the file.
Result<std::shared_ptr<edge::AccessLogWriter>> open_access_log(const config::Config& config);

// The edge's §11 families, with HELP and TYPE, every label value listed (zeros included).
void write_edge_metrics(TextWriter& w, const edge::EdgeMetrics& m);
// The edge's series of sandboxd_wake_phase_seconds (port_open, first_byte); the caller
// writes the family line once for these and control's own (Metrics::write_wake_phases).
void write_edge_wake_phases(TextWriter& w, const edge::EdgeMetrics& m);

// Wakes through SandboxService::start on the control thread, which passes admission (SPEC
// §3.6 step 3, §4.6: a wake.max_concurrent slot in FIFO order, held until the start call
// returns, then memory); answers `done` with the outcome — `refused` when admission says
// low memory — or with `timeout` once wake.timeout passes (a start under way goes on; one
// still queued is dropped). Each answer counts once in sandboxd_wakes_total, and the queue
// (slot and admission) and start phases in sandboxd_wake_phase_seconds, when `metrics` is
// given (it must outlive this). `wake` may be called from any thread; the counts only on
// the control thread.
class ServiceWaker final : public edge::Waker {
 public:
  ServiceWaker(asio::any_io_executor executor, SandboxService& service,
               std::chrono::milliseconds timeout, Metrics* metrics = nullptr);
  void wake(const Ulid& id, std::function<void(edge::WakeOutcome)> done) override;
  // SIGHUP, on the control thread: wake.timeout for wakes from now on.
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

 private:
  asio::any_io_executor executor_;
  SandboxService& service_;
  std::chrono::milliseconds timeout_;
  Metrics* metrics_;
};

}  // namespace sandboxd::control
