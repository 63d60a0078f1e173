// The edge's certificate source (SPEC §3.15, §10): what the https listener serves, where it
// comes from, and its state for GET /v1/certificates and /metrics.
//
//  - `tls.mode: files` — tls.files.cert and .key are loaded at start (a failure is a startup
//    error), and again on `reload_files` (SIGHUP) and whenever a 30 s poll sees their mtime,
//    size or inode change. A new pair replaces the old one only when the chain parses, the
//    key matches the leaf and the leaf has not expired; otherwise the old pair keeps serving
//    and the error is logged, counted and shown. In the last 7 days before notAfter a warning
//    is logged once a day.
//  - `tls.mode: acme` — an acme::CertificateManager keeps `*.<suffix>` and `<suffix>` (and
//    control.public_host when the wildcard does not cover it) valid. Until a real certificate
//    is stored or issued, a self-signed placeholder for those names serves (valid 1 day,
//    made again daily); issuance never blocks start-up.
//
// `create` prepares the first set (`initial`) for EdgeServer::start; `attach` then hands
// every later set to the running edge. One background thread polls files and renews the
// placeholder; the manager has its own. Every public method is thread-safe.
#pragma once

#include "base/clock.h"
#include "base/result.h"
#include "config/config.h"
#include "edge/edge_server.h"
#include "edge/tls.h"
#include "metrics.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace sandboxd::control {

enum class RenewOutcome { started, in_progress, rate_limited, not_acme };

class CertificateSource {
 public:
  static Result<std::unique_ptr<CertificateSource>> create(const config::Config& config,
                                                           const Clock& clock = system_clock());
  ~CertificateSource();
  CertificateSource(const CertificateSource&) = delete;
  CertificateSource& operator=(const CertificateSource&) = delete;

  // The set EdgeServer::start serves first; nullopt when tls.mode is off.
  std::optional<edge::TlsCertificates> initial() const;
  // From now on new certificates go to `edge` (which must outlive `stop`); a set that
  // arrived since `initial` was read is handed over at once.
  void attach(edge::EdgeServer& edge);
  void stop();

  // Files mode: load the pair again now. Other modes: nothing.
  void reload_files();
  // SIGHUP (SPEC §9.4): files mode loads the pair from `config`'s tls.files paths now; acme
  // mode applies `config`'s acme.* (and control.public_host) from the next attempt.
  // tls.mode is a restart key: `config` must have the one this source started with.
  void reload(const config::Config& config);
  // POST /v1/certificates/renew (SPEC §10.2).
  RenewOutcome renew_now(std::chrono::seconds* retry_after);

  // GET /v1/certificates (SPEC §10.5): the whole JSON body.
  std::string status_json() const;
  // The sandboxd_acme_* and sandboxd_certificate_* families (SPEC §11).
  void write_metrics(TextWriter& w) const;

  class Impl;

 private:
  explicit CertificateSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandboxd::control
