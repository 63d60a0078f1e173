// always_on sandboxes come back by themselves (SPEC §5.10): after a crash, after a restart
// of sandboxd with their container gone; a `sleep` sandbox and one stopped through the API
// stay stopped.
#include <gtest/gtest.h>

#include "sandboxd_fixture.h"

namespace sandboxd::testing {
namespace {

constexpr const char* kAlwaysOn = R"("idle_policy":"always_on")";

class AlwaysOnTest : public SandboxdTest {
 protected:
  // SIGKILL of the container's init from outside sandboxd: a `die` sandboxd did not cause.
  static void kill_container(const std::string& id) {
    EngineAnswer a = engine_call("POST", "/containers/s-" + id + "/kill");
    ASSERT_EQ(a.status, 204) << a.body;
  }
};

TEST_F(AlwaysOnTest, ACrashedSandboxIsStartedAgainAndASleepingOneIsNot) {
  const std::string always = create_v1("u1", "always", kAlwaysOn);
  const std::string sleepy = create_v1("u1", "sleepy");
  ASSERT_FALSE(always.empty());
  ASSERT_FALSE(sleepy.empty());
  ASSERT_TRUE(wait_init_ready(always));
  ASSERT_TRUE(wait_init_ready(sleepy));
  const std::string since = engine_now();

  kill_container(sleepy);
  ASSERT_TRUE(wait_status(sleepy, "stopped"));
  kill_container(always);
  // It is recorded stopped (reason exited), then started again after the first delay (1 s).
  ASSERT_TRUE(wait_until([&] { return engine_container_starts("s-" + always, since) >= 1; }, 30s))
      << sd().log();
  ASSERT_TRUE(wait_status(always, "running"));
  EXPECT_TRUE(wait_init_ready(always));
  EXPECT_NE(sd().log().find("always_on sandbox exited; restarting"), std::string::npos);

  EXPECT_EQ(sd().get("/v1/sandboxes/" + sleepy).str("status"), "stopped");
  EXPECT_EQ(engine_container_starts("s-" + sleepy, since), 0);
}

TEST_F(AlwaysOnTest, AtBootExitedOnesStartAndOnesStoppedThroughTheApiStayStopped) {
  const std::string gone = create_v1("u1", "gone", kAlwaysOn);
  const std::string asked = create_v1("u1", "asked", kAlwaysOn);
  ASSERT_FALSE(gone.empty());
  ASSERT_FALSE(asked.empty());
  Answer stopped = sd().post("/v1/sandboxes/" + asked + "/stop");
  ASSERT_EQ(stopped.status, 200) << stopped.body;

  // sandboxd is down while the container dies: only reconciliation at boot can see it.
  ASSERT_TRUE(sd().terminate());
  kill_container(gone);
  const std::string since = engine_now();
  ASSERT_TRUE(sd().start());
  ASSERT_TRUE(wait_until([&] { return engine_container_starts("s-" + gone, since) >= 1; }, 30s))
      << sd().log();
  ASSERT_TRUE(wait_status(gone, "running"));
  EXPECT_NE(sd().log().find("always_on sandbox started again"), std::string::npos);

  EXPECT_EQ(sd().get("/v1/sandboxes/" + asked).str("status"), "stopped");
  EXPECT_EQ(engine_container_starts("s-" + asked, since), 0);
}

}  // namespace
}  // namespace sandboxd::testing
