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

// The emergency band (`stop_idle_for: 0s`, SPEC §4.6 step 3) stops busy and always_on
// sandboxes too: a running task is recorded failed with `memory_pressure`, and the always_on
// sandbox starts again once no band is active (SPEC §5.10).
class EmergencyBandTest : public FakeMeminfoTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = "pressure:\n  check_interval: 200ms\n  max_stops_per_tick: 4\n"
              "  bands:\n    - below: 50%\n      stop_idle_for: 0s\n"
              "wake:\n  admission:\n    estimate_per_sandbox: 64MiB\n";
    return c;
  }
};

TEST_F(EmergencyBandTest, RunningTasksFailWithMemoryPressureAndAlwaysOnComesBackOnceItClears) {
  const std::string busy = create_v1("u1", "emergency-busy");
  const std::string always = create_v1("u1", "emergency-always", R"("idle_policy":"always_on")");
  ASSERT_FALSE(busy.empty() || always.empty());
  ASSERT_TRUE(wait_init_ready(busy));
  ASSERT_TRUE(wait_init_ready(always));
  Answer task = sd().post("/v1/sandboxes/" + busy + "/tasks",
                          R"({"agent":"command","command":["sleep","300"]})");
  ASSERT_EQ(task.status, 202) << task.body;
  const std::string task_path = "/v1/sandboxes/" + busy + "/tasks/" + task.str("id");
  ASSERT_TRUE(wait_until([&] { return sd().get(task_path).str("status") == "running"; }, 30s));

  write_meminfo(400'000);  // 40 %: both stop, busy or not
  ASSERT_TRUE(wait_until([&] { return status(busy) == "stopped" && status(always) == "stopped"; }, 30s))
      << sd().log();
  Answer failed;
  ASSERT_TRUE(wait_until([&] {
    failed = sd().get(task_path);
    return failed.str("status") == "failed";
  }, 15s)) << failed.body;
  EXPECT_EQ(failed.str("failure_reason"), "memory_pressure") << failed.body;

  write_meminfo(900'000);  // no band any more
  EXPECT_TRUE(wait_until([&] { return status(always) == "running"; }, 30s)) << sd().log();
  EXPECT_EQ(status(busy), "stopped");
}

}  // namespace
}  // namespace sandboxd::testing
