// The preview edge's data plane (SPEC §3): listeners, workers, proxying, tunnels, the wake
// gate, the upstream pool, limits, edge-generated answers and the access log.
//
// `start` binds `options.workers` listeners on one port with SO_REUSEPORT, each with its own
// thread and event loop; a connection, its upstream connections and its tunnel stay on the
// worker that accepted it. Workers read the route table through `routes` (lock-free
// snapshots), call `waker` to start sandboxes (one call per wake cycle for the whole
// process), and fill `activity`. All three must outlive the server.
//
// `stop(grace)` closes the listeners, closes idle keep-alive connections, lets requests in
// flight, streams and held requests run until `grace`, then answers what is still held with
// `503 shutting_down`, closes everything and joins the threads. The destructor stops with a
// zero grace if `stop` was not called. `port()`, `stats()`, `metrics()`, `reconfigure()` and
// `reopen_access_log()` are thread-safe; `stop` must not be called from a worker thread (a
// Waker's `wake`). Counters stay readable after `stop`.
#pragma once

#include "base/result.h"
#include "edge/activity.h"
#include "edge/edge_metrics.h"
#include "edge/edge_options.h"
#include "edge/route_table.h"
#include "edge/preview_auth.h"
#include "edge/tls.h"
#include "edge/waker.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace sandboxd::edge {

// Process-wide counters of the edge, for tests and metrics.
struct EdgeStats {
  std::uint64_t open_connections = 0;   // client connections now
  std::uint64_t accepted = 0;           // client connections ever accepted
  std::uint64_t held = 0;               // requests held now
  std::uint64_t upstream_connects = 0;  // fresh upstream connections made (probes included)
  std::uint64_t upstream_reuses = 0;    // requests sent on a pooled connection
  std::uint64_t wake_calls = 0;         // Waker::wake calls
};

class EdgeServer {
 public:
  static Result<std::unique_ptr<EdgeServer>> start(EdgeOptions options,
                                                   RouteTablePublisher& routes, Waker& waker,
                                                   ActivityTable& activity);
  ~EdgeServer();
  EdgeServer(const EdgeServer&) = delete;
  EdgeServer& operator=(const EdgeServer&) = delete;

  std::uint16_t port() const;
  // The https listener's port; 0 when TLS is off.
  std::uint16_t https_port() const;
  // From any thread (§3.15 hot swap): checks `certificates` (every chain parses, every key
  // matches its leaf) and makes them the set that handshakes starting from now on use; open
  // connections and handshakes in progress keep theirs. On failure the old set keeps
  // serving. Counted in tls_reloads_ok / tls_reloads_error. invalid_argument when TLS is off.
  Status set_certificates(const TlsCertificates& certificates);
  // From any thread (§3.14, SIGHUP): the preview keys, cookie lifetime and login redirect
  // that requests checked from now on use.
  void set_preview_auth(PreviewAuthSettings settings);
  // From any thread (SIGHUP, SPEC §9.4): the live part of `next` — limits, timeouts, the
  // upstream pool, trusted proxies, forwarded_header, hsts_max_age, redirect_http, ports,
  // wake, tls13_only and preview auth — applies to connections accepted from now on, and
  // tls13_only to handshakes started from now on; an open connection keeps the values it
  // was accepted with. The rest of `next` (listeners, workers, tls on or off, the preview
  // suffix, certificates, the access log) is ignored: it needs a restart.
  void reconfigure(EdgeOptions next);
  EdgeStats stats() const;
  // SPEC §11's edge families, summed over the workers now (edge/edge_metrics.h).
  EdgeMetrics metrics() const;
  // Opens the access log file again (SIGHUP, logrotate); ok when there is none or it is
  // stderr. On failure the old file stays in use.
  Status reopen_access_log();
  // SIGHUP with a new log.access_log: "" turns it off, "stderr" or a path moves it (a path
  // that cannot be opened keeps the old target and is the error). Thread-safe.
  Status set_access_log(std::string target);
  // From any thread. `done` runs once every worker has finished what it was doing when this
  // was called, so no request still acts on a route table published before the call (SPEC
  // §4.4 step 4). It runs on a worker thread, or at once when no worker runs.
  void barrier(std::function<void()> done);
  // From any thread. Ends every tunnel of the sandbox before it stops (SPEC §3.9): a
  // WebSocket client gets close code 1001 "sandbox stopping" at the next frame boundary and
  // the upstream side is closed; other tunnels just close. `done` runs (on a worker thread)
  // once every such tunnel has had its close frame written or is gone, within about 1 s.
  void end_tunnels(const Ulid& id, std::function<void()> done);
  // Blocks until every worker has finished; later calls do nothing.
  void stop(std::chrono::milliseconds grace);

  struct Impl;

 private:
  explicit EdgeServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandboxd::edge
