#include "acme/renewal.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

namespace sandboxd::acme {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

Clock::WallTime renewal_time(Clock::WallTime not_before, Clock::WallTime not_after, double ratio,
                             double random01) {
  const auto lifetime = duration_cast<milliseconds>(not_after - not_before);
  if (lifetime <= milliseconds::zero()) return not_before;
  if (lifetime < std::chrono::hours(24 * 10)) ratio = 0.5;
  const auto max_jitter = std::min<milliseconds>(
      milliseconds(static_cast<std::int64_t>(static_cast<double>(lifetime.count()) * 0.02)),
      std::chrono::hours(6));
  const double r = std::clamp(random01, 0.0, 1.0);
  const auto at = milliseconds(static_cast<std::int64_t>(static_cast<double>(lifetime.count()) * ratio));
  const auto jitter = milliseconds(static_cast<std::int64_t>(static_cast<double>(max_jitter.count()) * r));
  return not_before + at - jitter;
}

milliseconds backoff_delay(int failures, double random01, const BackoffPolicy& policy) {
  failures = std::max(failures, 1);
  double d = static_cast<double>(policy.base.count());
  for (int i = 1; i < failures && d < static_cast<double>(policy.cap.count()); ++i) d *= 2;
  d = std::min(d, static_cast<double>(policy.cap.count()));
  const double factor = 0.9 + 0.2 * std::clamp(random01, 0.0, 1.0);
  return milliseconds(static_cast<std::int64_t>(std::llround(d * factor)));
}

std::optional<seconds> parse_retry_after(std::string_view value, Clock::WallTime now) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t n = 0;
    const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || p != value.data() + value.size()) return std::nullopt;
    return seconds(n);
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  const std::string text(value);
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (at <= now) return seconds(0);
  return duration_cast<seconds>(at - now);
}

}  // namespace sandboxd::acme
