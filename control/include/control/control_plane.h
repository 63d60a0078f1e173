// The control plane: the REST API on `control.listen`, the sandbox service (SPEC §5) and
// the reconciler, wired to the store and the Docker Engine.
//
// `ControlPlane::start` opens the workspaces and run directories, binds the control
// listener and returns; the boot work that needs Docker (network, reconciliation, the
// `/events` watch, the readiness ping) runs in the background and retries while Docker is
// unreachable — `/readyz` says 503 until it is done. A condition that must stop sandboxd
// (a `docker.network` that lets sandboxes reach each other) is reported through
// `on_fatal`, from the control thread.
//
// It runs its own thread. `stop()` (also run by the destructor) closes the listener and
// joins; sandboxes keep running (SPEC §5.5). It keeps its own copy of the Config; the Store
// must outlive it.
#pragma once

#include "base/result.h"
#include "config/config.h"
#include "store/store.h"

#include <cstdint>
#include <functional>
#include <memory>

namespace sandboxd::control {

class ControlPlane {
 public:
  static Result<std::unique_ptr<ControlPlane>> start(const config::Config& config,
                                                     store::Store& store,
                                                     std::function<void(const Error&)> on_fatal);
  virtual ~ControlPlane() = default;

  // The bound control port (useful with `control.listen: 127.0.0.1:0`).
  virtual std::uint16_t port() const = 0;
  // The bound preview edge port (edge.http.listen).
  virtual std::uint16_t edge_port() const = 0;
  // The https listener's port (edge.https.listen); 0 when tls.mode is off.
  virtual std::uint16_t edge_https_port() const = 0;
  // SIGHUP with a valid file (SPEC §9.4): `next` becomes the running config. Edge limits
  // and timeouts apply to connections accepted from now on (open ones keep theirs); auth,
  // preview keys, wake, idle, pressure, tasks, files, exec and metrics to the next request
  // or tick; the TLS files are read again and acme.* applies from the next attempt.
  // `next` must keep the running value of every `restart` key (config::keep_restart_keys);
  // `restart_pending` says that changed ones wait for a restart. Thread-safe, from one
  // thread at a time; `next` need not outlive the call.
  virtual void reload(const config::Config& next, bool restart_pending) = 0;
  // SIGHUP with an invalid file: counted, nothing changes.
  virtual void reload_failed() = 0;
  // SIGHUP's part that exists today: log.access_log is opened again (after a rotation).
  virtual Status reopen_logs() = 0;
  virtual void stop() = 0;
};

}  // namespace sandboxd::control
