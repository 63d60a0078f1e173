#include "base/clock.h"

#include <gtest/gtest.h>

namespace sandboxd {
namespace {

using namespace std::chrono_literals;

TEST(ManualClock, AdvancesBothClocks) {
  ManualClock clock;
  auto wall = clock.wall();
  auto mono = clock.mono();
  clock.advance(1500ms);
  EXPECT_EQ(clock.wall() - wall, 1500ms);
  EXPECT_EQ(clock.mono() - mono, 1500ms);
}

TEST(ManualClock, WallStepLeavesMonotonicAlone) {
  ManualClock clock;
  auto mono = clock.mono();
  clock.set_wall(clock.wall() - 1h);
  EXPECT_EQ(clock.mono(), mono);
}

TEST(ManualClock, StartsAtTheDocumentedEpoch) {
  ManualClock clock;
  EXPECT_EQ(clock.unix_ms(), 1767225600000);
  EXPECT_EQ(format_rfc3339(clock.wall()), "2026-01-01T00:00:00Z");
}

TEST(SystemClock, IsNearNow) {
  auto now = std::chrono::system_clock::now();
  auto got = system_clock().wall();
  EXPECT_LT(std::chrono::abs(got - now), 5s);
}

}  // namespace
}  // namespace sandboxd
