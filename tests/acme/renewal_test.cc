// Renewal time, backoff and Retry-After (SPEC §10.2): pure arithmetic with pinned randoms.
#include "acme/renewal.h"

#include <gtest/gtest.h>

namespace sandboxd::acme {
namespace {

using namespace std::chrono_literals;
using std::chrono::hours;
using std::chrono::milliseconds;

const Clock::WallTime kT0 = std::chrono::sys_days{std::chrono::year{2026} / 1 / 1};

TEST(RenewalTime, TwoThirdsOfA90DayLifetimeWithoutJitter) {
  const auto at = renewal_time(kT0, kT0 + hours(24 * 90), 0.6667, 0.0);
  EXPECT_EQ(std::chrono::duration_cast<hours>(at - kT0).count(), 1440);  // 60.0 days (0.6667 × 2160 h)
}

TEST(RenewalTime, JitterIsAtMostSixHoursForLongLifetimes) {
  const auto none = renewal_time(kT0, kT0 + hours(24 * 90), 0.6667, 0.0);
  const auto full = renewal_time(kT0, kT0 + hours(24 * 90), 0.6667, 1.0);
  EXPECT_EQ(none - full, hours(6));  // 2 % of 90 days is 43 h: the 6 h cap applies
  const auto half = renewal_time(kT0, kT0 + hours(24 * 90), 0.6667, 0.5);
  EXPECT_EQ(none - half, hours(3));
}

TEST(RenewalTime, JitterIsTwoPercentForShortLifetimes) {
  // 10 days: 2 % is 4.8 h, below the 6 h cap; ratio still 2/3.
  const auto lifetime = hours(24 * 10);
  const auto none = renewal_time(kT0, kT0 + lifetime, 0.6667, 0.0);
  const auto full = renewal_time(kT0, kT0 + lifetime, 0.6667, 1.0);
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(none - full), milliseconds(17'280'000));
  EXPECT_EQ(std::chrono::duration_cast<hours>(none - kT0).count(), 160);
}

TEST(RenewalTime, HalfTheLifetimeUnderTenDays) {
  const auto at = renewal_time(kT0, kT0 + hours(24 * 6), 0.6667, 0.0);
  EXPECT_EQ(at - kT0, hours(72));
  const auto one_hour = renewal_time(kT0, kT0 + hours(1), 0.9, 0.0);
  EXPECT_EQ(one_hour - kT0, 30min);
  // The jitter never pushes renewal before notBefore + ratio − 2 %.
  const auto jittered = renewal_time(kT0, kT0 + hours(1), 0.9, 1.0);
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(one_hour - jittered), milliseconds(72'000));
}

TEST(RenewalTime, ConfiguredRatioApplies) {
  const auto at = renewal_time(kT0, kT0 + hours(24 * 100), 0.5, 0.0);
  EXPECT_EQ(at - kT0, hours(24 * 50));
  const auto late = renewal_time(kT0, kT0 + hours(24 * 100), 0.9, 0.0);
  EXPECT_EQ(late - kT0, hours(24 * 90));
}

TEST(RenewalTime, DegenerateLifetimeRenewsAtOnce) {
  EXPECT_EQ(renewal_time(kT0, kT0, 0.6667, 0.5), kT0);
  EXPECT_EQ(renewal_time(kT0, kT0 - 1h, 0.6667, 0.5), kT0);
}

TEST(Backoff, DoublesFromFiveMinutesToTheSixHourCap) {
  const BackoffPolicy p;
  EXPECT_EQ(backoff_delay(1, 0.5, p), milliseconds(5min));
  EXPECT_EQ(backoff_delay(2, 0.5, p), milliseconds(10min));
  EXPECT_EQ(backoff_delay(3, 0.5, p), milliseconds(20min));
  EXPECT_EQ(backoff_delay(7, 0.5, p), milliseconds(320min));
  EXPECT_EQ(backoff_delay(8, 0.5, p), milliseconds(6h));
  EXPECT_EQ(backoff_delay(1000, 0.5, p), milliseconds(6h));
  EXPECT_EQ(backoff_delay(0, 0.5, p), milliseconds(5min));  // treated as the first failure
}

TEST(Backoff, JitterIsPlusMinusTenPercent) {
  const BackoffPolicy p;
  EXPECT_EQ(backoff_delay(1, 0.0, p), milliseconds(270'000));
  EXPECT_EQ(backoff_delay(1, 1.0, p), milliseconds(330'000));
  EXPECT_EQ(backoff_delay(20, 1.0, p), milliseconds(23'760'000));
  for (int i = 0; i <= 10; ++i) {
    const auto d = backoff_delay(2, i / 10.0, p);
    EXPECT_GE(d, milliseconds(540'000));
    EXPECT_LE(d, milliseconds(660'000));
  }
}

TEST(Backoff, CustomPolicy) {
  const BackoffPolicy p{.base = 1s, .cap = 4s};
  EXPECT_EQ(backoff_delay(1, 0.5, p), milliseconds(1000));
  EXPECT_EQ(backoff_delay(3, 0.5, p), milliseconds(4000));
  EXPECT_EQ(backoff_delay(4, 0.5, p), milliseconds(4000));
}

TEST(RetryAfter, DeltaSecondsAndHttpDates) {
  const Clock::WallTime now = std::chrono::sys_days{std::chrono::year{1994} / 11 / 6} + 8h + 49min;
  EXPECT_EQ(parse_retry_after("120", now), std::chrono::seconds(120));
  EXPECT_EQ(parse_retry_after(" 0 ", now), std::chrono::seconds(0));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), std::chrono::seconds(37));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), std::chrono::seconds(0));
  EXPECT_FALSE(parse_retry_after("", now).has_value());
  EXPECT_FALSE(parse_retry_after("-5", now).has_value());
  EXPECT_FALSE(parse_retry_after("soon", now).has_value());
  EXPECT_FALSE(parse_retry_after("Sun, 06 Nov 1994 08:49:37 PST", now).has_value());
}

}  // namespace
}  // namespace sandboxd::acme
