// Keeps one certificate valid: loads it from storage, issues it when missing or when its
// names differ, renews it at its renewal time, backs off after failures (SPEC §10.2).
//
// The manager owns one thread. `start` loads the stored certificate and, if it is usable,
// hands it to `on_certificate` before returning; it then starts the thread, which sleeps until
// the earliest of the renewal time, the end of a backoff and an hour from now, and runs at most
// one issuance at a time (a storage lock also keeps other processes out). Nothing here blocks
// the caller: issuance never delays startup, and the old certificate keeps serving while
// renewals fail, even after it has expired.
//
// `on_certificate` runs on the manager's thread (or on the caller's inside `start`) each time
// a new certificate is ready; it must be quick and thread-safe (the edge swaps an atomic
// pointer). Every public method is thread-safe. `stop` (or the destructor) cancels an attempt
// in flight, cleans up its TXT records and joins the thread.
#pragma once

#include "acme/certificate.h"
#include "acme/dns_provider.h"
#include "acme/issuer.h"
#include "acme/renewal.h"
#include "acme/storage.h"
#include "base/clock.h"
#include "base/result.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::acme {

struct ManagerOptions {
  IssuerOptions issuer;
  std::string cert_name;  // storage folder under certs/, the preview suffix
  double renew_ratio = 0.6667;
  BackoffPolicy backoff;
  std::chrono::milliseconds max_sleep = std::chrono::hours(1);
  std::chrono::milliseconds lock_retry = std::chrono::minutes(1);
  std::chrono::milliseconds store_retry = std::chrono::minutes(1);
  std::chrono::seconds default_rate_limit_wait = std::chrono::hours(1);
  const Clock* clock = &system_clock();
  // Uniform in [0, 1); empty = an internal generator. For the renewal and backoff jitter.
  std::function<double()> random01;
};

struct LastError {
  std::string code;
  std::string step;
  std::string message;
  Clock::WallTime at{};
};

// What GET /v1/certificates shows (SPEC §10.5). Optional fields are absent when unknown.
struct CertificateStatus {
  std::string name;                    // cert_name
  std::vector<std::string> domains;    // the names asked for
  // missing | expired | error | renewing | valid (SPEC §10.5 order)
  std::string status;
  std::optional<std::string> serial;
  std::optional<std::string> issuer;
  std::optional<std::string> key_type;
  std::optional<Clock::WallTime> not_before;
  std::optional<Clock::WallTime> not_after;
  std::optional<Clock::WallTime> next_renewal_at;
  std::string renewal_method = "ratio";  // "ari" while the CA's window decides
  std::optional<Clock::WallTime> ari_window_start;
  std::optional<Clock::WallTime> ari_window_end;
  bool in_progress = false;
  std::optional<Clock::WallTime> last_attempt_at;
  std::optional<Clock::WallTime> last_success_at;
  int consecutive_failures = 0;
  std::optional<Clock::WallTime> next_attempt_at;  // end of a backoff or rate-limit wait
  std::optional<LastError> last_error;
  std::string directory_url;
  std::optional<std::string> account_url;
};

enum class RenewRequest { started, in_progress, rate_limited };

class CertificateManager {
 public:
  using OnCertificate = std::function<void(std::shared_ptr<const CertificateBundle>)>;

  CertificateManager(ManagerOptions options, std::unique_ptr<DnsProvider> provider,
                     std::shared_ptr<Storage> storage, OnCertificate on_certificate);
  ~CertificateManager();
  CertificateManager(const CertificateManager&) = delete;
  CertificateManager& operator=(const CertificateManager&) = delete;

  // Loads the stored certificate (a pair whose key does not match is ignored) and starts the
  // thread. Fails only when the storage cannot be read at all.
  Status start();
  void stop();

  // Starts an attempt now, skipping a backoff but not a rate-limit wait (then `retry_after`
  // is set when given).
  RenewRequest renew_now(std::chrono::seconds* retry_after = nullptr);

  // New options (SIGHUP): they apply from the next attempt; an attempt in flight finishes
  // with the old ones. Changed names trigger an issuance at once.
  void reconfigure(ManagerOptions options, std::unique_ptr<DnsProvider> provider);

  CertificateStatus status() const;
  // The certificate being served, or nullptr before the first one.
  std::shared_ptr<const CertificateBundle> current() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandboxd::acme
