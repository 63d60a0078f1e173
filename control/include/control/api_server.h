// The control listener: HTTP/1.1 with keep-alive on `control.listen`.
//
// Today it serves the open routes `/healthz` and `/readyz` (SPEC §2.5.13-14) with the
// routing rules of SPEC §2.1 (HEAD for GET routes, 404 for unknown paths, 405 with `Allow`
// for a wrong method) and the request limits of SPEC §13 (431 for a header block over
// 16 KiB, 414 for a target over 8 KiB, 400 for malformed requests, connection closed after
// each of those). The lifecycle API arrives with its own module work.
//
// `ApiServer::start` binds and starts its own I/O thread; it returns once the listener
// accepts connections. `stop()` (also run by the destructor) closes the listener and open
// connections and joins the thread; it is safe to call from any thread but the server's own.
// The ReadinessSource must outlive the server and is called from the server's thread.
#pragma once

#include "base/result.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sandboxd::control {

struct ReadyCheck {
  std::string name;    // "store", later "docker", "reconcile"
  bool ok = false;
  std::string detail;  // "ok", or why not; shown to the prober, so no secrets
};

class ReadinessSource {
 public:
  virtual ~ReadinessSource() = default;
  virtual std::vector<ReadyCheck> readiness() = 0;
};

struct ApiServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9090;  // 0: ephemeral, see ApiServer::port()
  std::chrono::milliseconds header_read{15000};
  std::chrono::milliseconds keepalive_idle{75000};
  std::uint64_t max_body_bytes = 1024 * 1024;
};

class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> start(const ApiServerOptions& options,
                                                  ReadinessSource& readiness);
  virtual ~ApiServer() = default;

  // The bound port (useful when options.port was 0).
  virtual std::uint16_t port() const = 0;
  virtual void stop() = 0;
};

}  // namespace sandboxd::control
