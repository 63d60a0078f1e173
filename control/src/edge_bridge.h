// What control gives the edge (DESIGN.md: control configures the data plane): the route
// table derived from the sandbox rows (SPEC §3.5, §5.1), the Waker backed by the sandbox
// service (SPEC §3.6), and the edge's options derived from the config.
#pragma once

#include "config/config.h"
#include "metrics.h"
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

edge::EdgeOptions edge_options(const config::Config& config);

// Wakes through SandboxService::start on the control thread; answers `done` with the
// outcome, or with `timeout` once wake.timeout passes (the start itself goes on). Each
// answer counts once in sandboxd_wakes_total when `metrics` is given (it must outlive this).
class ServiceWaker final : public edge::Waker {
 public:
  ServiceWaker(asio::any_io_executor executor, SandboxService& service,
               std::chrono::milliseconds timeout, Metrics* metrics = nullptr);
  void wake(const Ulid& id, std::function<void(edge::WakeOutcome)> done) override;

 private:
  asio::any_io_executor executor_;
  SandboxService& service_;
  std::chrono::milliseconds timeout_;
  Metrics* metrics_;
};

}  // namespace sandboxd::control
