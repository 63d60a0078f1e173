// ACME Renewal Information (RFC 9773, SPEC §10.2): the CA's suggested renewal window for a
// certificate, and when to ask again.
//
// `fetch_renewal_info` blocks (one directory GET, one renewalInfo GET); run it on the
// manager's thread. A directory without `renewalInfo` is `Errc::not_found`: the CA has no
// ARI and the ratio rule applies.
#pragma once

#include "base/clock.h"
#include "base/result.h"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::acme {

class HttpClient;

struct RenewalWindow {
  Clock::WallTime start{};
  Clock::WallTime end{};
  bool operator==(const RenewalWindow&) const = default;
};

struct RenewalInfo {
  RenewalWindow window;
  std::chrono::seconds poll_after{0};  // Retry-After clamped to 1–24 h; 6 h when absent
};

// base64url(AKI keyIdentifier) "." base64url(serial bytes) of the chain's leaf.
Result<std::string> ari_cert_id(const std::string& chain_pem);

// The body of a renewalInfo answer: {"suggestedWindow":{"start","end"}}, start < end.
Result<RenewalWindow> parse_renewal_window(std::string_view body);

// RFC 3339 date-time ("2026-12-18T10:00:00Z", fractions and ±hh:mm offsets accepted).
std::optional<Clock::WallTime> parse_rfc3339_time(std::string_view text);

Result<RenewalInfo> fetch_renewal_info(HttpClient& http, const std::string& directory_url,
                                       const std::string& chain_pem, Clock::WallTime now);

// A time drawn uniformly inside the window (`random01` in [0, 1)).
Clock::WallTime ari_renewal_time(const RenewalWindow& window, double random01);

}  // namespace sandboxd::acme
