// The crash-restart delays of an always_on sandbox (SPEC §5.10).
#include "always_on.h"

#include <gtest/gtest.h>

namespace sandboxd::control {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(RestartBackoff, OneSecondThenDoublingUpToFiveMinutes) {
  RestartBackoff b;
  Clock::MonoTime now{};
  std::vector<long long> got;
  for (int i = 0; i < 12; ++i) got.push_back(b.next(now).count());
  EXPECT_EQ(got, (std::vector<long long>{1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000,
                                         256000, 300000, 300000, 300000}));
}

TEST(RestartBackoff, TenMinutesOfUptimeStartOverAtOneSecond) {
  RestartBackoff b;
  Clock::MonoTime now{};
  b.next(now);
  b.next(now);
  EXPECT_EQ(b.next(now), milliseconds(4000));
  b.started(now);
  EXPECT_EQ(b.next(now + minutes(9)), milliseconds(8000)) << "a short run keeps doubling";
  b.started(now + minutes(10));
  EXPECT_EQ(b.next(now + minutes(20)), milliseconds(1000));
  EXPECT_EQ(b.next(now + minutes(20) + seconds(1)), milliseconds(2000));
}

}  // namespace
}  // namespace sandboxd::control
