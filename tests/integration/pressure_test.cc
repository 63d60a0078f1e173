// The pressure reaper (SPEC §4.6) against the real binary and Docker Engine. MemAvailable
// comes from a file the test writes: SANDBOXD_TEST_MEMINFO is a TEST HOOK, the one fake
// here, because real memory pressure cannot be provoked safely on a shared machine.
#include "raw_http.h"
#include "sandboxd_fixture.h"

#include <gtest/gtest.h>

namespace sandboxd::testing {
namespace {

class PressureTest : public FakeMeminfoTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    // 64 MiB per stop is 6.7 points of this 1,000,000 kB host.
    c.extra = "pressure:\n  check_interval: 200ms\n  max_stops_per_tick: 4\n"
              "  bands:\n    - below: 50%\n      stop_idle_for: 1s\n"
              "wake:\n  admission:\n    estimate_per_sandbox: 64MiB\n";
    return c;
  }

  void touch(const std::string& id) { ASSERT_TRUE(wait_preview(id)); }
};

TEST_F(PressureTest, LeastRecentlyActiveIdleSandboxesStopUntilTheBandIsCleared) {
  const std::string a = create_v1("u1", "pressure-a");
  const std::string b = create_v1("u1", "pressure-b");
  const std::string c = create_v1("u1", "pressure-c");
  ASSERT_FALSE(a.empty() || b.empty() || c.empty());
  for (const auto& id : {a, b, c}) ASSERT_TRUE(wait_init_ready(id));
  // Activity in the order a, b, c: a is the least recently active.
  touch(a);
  touch(b);
  touch(c);
  // 40 % available: band 50 until 52 %, which two stops (2 × 6.7 points) reach.
  write_meminfo(400'000);
  ASSERT_TRUE(wait_until([&] { return status(a) == "stopped" && status(b) == "stopped"; }, 30s))
      << sd().log();
  EXPECT_EQ(status(c), "running");
  const std::string log = sd().log();
  const auto at_a = log.find("pressure stop id=" + a);
  const auto at_b = log.find("pressure stop id=" + b);
  ASSERT_NE(at_a, std::string::npos) << log;
  ASSERT_NE(at_b, std::string::npos) << log;
  EXPECT_LT(at_a, at_b) << "the least recently active goes first";
  EXPECT_EQ(log.find("pressure stop id=" + c), std::string::npos);
  Answer m = sd().get("/metrics");
  EXPECT_NE(m.body.find("sandboxd_reaper_stops_total{reason=\"pressure\",band=\"50\"} 2"),
            std::string::npos);
  EXPECT_NE(m.body.find("sandboxd_pressure_band 50"), std::string::npos);
  EXPECT_NE(m.body.find("sandboxd_memory_available_bytes 409600000"), std::string::npos);
  // Memory back: nothing more stops, and the stopped ones wake on their next request.
  write_meminfo(900'000);
  touch(a);
  EXPECT_EQ(status(a), "running");
}

}  // namespace
}  // namespace sandboxd::testing
