// When to renew and when to retry (SPEC §10.2). Pure functions: the caller supplies the
// random numbers (uniform in [0, 1)) so tests can pin them.
#pragma once

#include "base/clock.h"

#include <chrono>
#include <optional>
#include <string_view>

namespace sandboxd::acme {

// notBefore + r × lifetime − jitter, where r is `ratio` (0.5 for lifetimes under 10 days)
// and jitter = `random01` × min(2 % of the lifetime, 6 h). A lifetime ≤ 0 gives notBefore.
Clock::WallTime renewal_time(Clock::WallTime not_before, Clock::WallTime not_after, double ratio,
                             double random01);

struct BackoffPolicy {
  std::chrono::milliseconds base = std::chrono::minutes(5);
  std::chrono::milliseconds cap = std::chrono::hours(6);
};

// Delay before the next attempt after `failures` (≥ 1) consecutive failures:
// base × 2^(failures−1), capped, then ±10 % (`random01` 0 → −10 %, 1 → +10 %).
std::chrono::milliseconds backoff_delay(int failures, double random01,
                                        const BackoffPolicy& policy = {});

// An HTTP Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate), relative to `now`.
// nullopt when it parses as neither. A date in the past gives 0.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, Clock::WallTime now);

}  // namespace sandboxd::acme
