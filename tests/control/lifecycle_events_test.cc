// The lifecycle event window of GET /v1/events (SPEC §2.7.12): ids, replay, resync, payloads.
#include "lifecycle_events.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

namespace sandboxd::control {
namespace {

namespace json = boost::json;

class LifecycleEventsTest : public ::testing::Test {
 protected:
  static constexpr std::int64_t kFloorMs = 1'800'000'000'000;

  LifecycleEvents make(std::size_t capacity) {
    return LifecycleEvents(ioc_.get_executor(), clock_, kFloorMs, capacity);
  }
  void one(LifecycleEvents& events, const std::string& to = "running") {
    events.sandbox_state("01KZ3NDEKTSV4RRFFQ69G5FAVB", "u1", "waking", to, "started");
  }

  boost::asio::io_context ioc_;
  ManualClock clock_;  // 2026: before the floor, so ids start at the floor
};

TEST_F(LifecycleEventsTest, IdsStartAboveTheFloorAndFollowTheClock) {
  LifecycleEvents events = make(8);
  EXPECT_EQ(events.newest(), kFloorMs * 1000 - 1);
  one(events);
  one(events);
  auto all = events.after(events.newest() - 2);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, static_cast<std::uint64_t>(kFloorMs) * 1000);
  EXPECT_EQ((*all)[1].id, (*all)[0].id + 1);

  // Once the wall clock passes the floor, ids jump to it (ms × 1000) and never go back.
  clock_.set_wall(Clock::WallTime(std::chrono::milliseconds(kFloorMs + 5000)));
  one(events);
  EXPECT_EQ(events.newest(), static_cast<std::uint64_t>(kFloorMs + 5000) * 1000);
  clock_.set_wall(Clock::WallTime(std::chrono::milliseconds(kFloorMs + 10)));
  one(events);
  EXPECT_EQ(events.newest(), static_cast<std::uint64_t>(kFloorMs + 5000) * 1000 + 1);
}

TEST_F(LifecycleEventsTest, ReplayInsideTheWindowResyncOutsideIt) {
  LifecycleEvents events = make(3);
  const std::uint64_t before = events.newest();
  EXPECT_TRUE(events.after(before) && events.after(before)->empty());
  for (int i = 0; i < 5; ++i) one(events);
  const std::uint64_t newest = events.newest();
  // Kept: the last three. After the second-newest: one event.
  auto tail = events.after(newest - 1);
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ(tail->front().id, newest);
  // After the oldest one evicted: the three kept, nothing missing.
  auto kept = events.after(newest - 3);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->size(), 3u);
  // Earlier: an event the client missed is gone.
  EXPECT_FALSE(events.after(newest - 4));
  EXPECT_FALSE(events.after(before));
  EXPECT_FALSE(events.after(1));
  // An id this run never gave (a later one, e.g. from another instance).
  EXPECT_FALSE(events.after(newest + 1));
}

TEST_F(LifecycleEventsTest, PayloadsAndTheSignal) {
  LifecycleEvents events = make(8);
  auto signal = events.next();
  EXPECT_FALSE(signal->fired());
  events.sandbox_state("01KZ3NDEKTSV4RRFFQ69G5FAVB", "", "", "creating", "create");
  EXPECT_TRUE(signal->fired());
  EXPECT_NE(events.next(), signal) << "each wait gets the next event";

  store::TaskRow task;
  task.id = "01KZ3NDEKTSV4RRFFQ69G5FAVC";
  task.sandbox_id = "01KZ3NDEKTSV4RRFFQ69G5FAVB";
  task.status = "succeeded";
  events.task_state(task, "u1");
  auto all = events.after(events.newest() - 2);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].type, "sandbox.state");
  EXPECT_EQ(json::parse((*all)[0].data),
            json::parse(R"({"sandbox_id":"01KZ3NDEKTSV4RRFFQ69G5FAVB","from":null,"to":"creating",)"
                        R"("reason":"create","at":"2026-01-01T00:00:00Z"})"));
  EXPECT_EQ((*all)[0].user_id, "");
  EXPECT_EQ((*all)[1].type, "task.state");
  EXPECT_EQ((*all)[1].user_id, "u1");
  EXPECT_EQ(json::parse((*all)[1].data),
            json::parse(R"({"sandbox_id":"01KZ3NDEKTSV4RRFFQ69G5FAVB","task_id":"01KZ3NDEKTSV4RRFFQ69G5FAVC",)"
                        R"("status":"succeeded","at":"2026-01-01T00:00:00Z"})"));
}

TEST(TransitionReason, StoredReasonsFirstThenWhatMovedIt) {
  store::SandboxRow row;
  row.status = "stopped";
  row.stop_reason = "idle";
  EXPECT_EQ(transition_reason("stopping", row), "idle");
  row.status = "error";
  row.error_reason = "start_failed";
  EXPECT_EQ(transition_reason("waking", row), "start_failed");
  row.status = "running";
  EXPECT_EQ(transition_reason("creating", row), "created");
  EXPECT_EQ(transition_reason("waking", row), "started");
  EXPECT_EQ(transition_reason("stopping", row), "stop_failed");
  row.status = "creating";
  EXPECT_EQ(transition_reason("", row), "create");
  row.status = "waking";
  EXPECT_EQ(transition_reason("stopped", row), "wake");
}

}  // namespace
}  // namespace sandboxd::control
