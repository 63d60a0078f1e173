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
// joins; sandboxes keep running (SPEC §5.5). The Config and Store must outlive it.
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
  // SIGHUP with a valid file (SPEC §9.4): API tokens and auth.preview from `next` apply to
  // the next request, the TLS files are read again; `restart_pending` says that other
  // changed keys wait for a restart. Thread-safe; `next` need not outlive the call.
  virtual void reload(const config::Config& next, bool restart_pending) = 0;
  // SIGHUP with an invalid file: counted, nothing changes.
  virtual void reload_failed() = 0;
  // SIGHUP's part that exists today: log.access_log is opened again (after a rotation).
  virtual Status reopen_logs() = 0;
  virtual void stop() = 0;
};

}  // namespace sandboxd::control
