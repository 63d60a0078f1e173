// The idle reaper against the real binary (SPEC §4): an unused sandbox is stopped after
// idle.threshold; an open connection through the edge, `always_on` and a keepalive each
// keep a sandbox running. Short thresholds make the waits seconds long; every wait has a
// deadline, and "still running" is checked over a bounded window.
#include "raw_http.h"
#include "sandboxd_fixture.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <ctime>

namespace sandboxd::testing {
namespace {

constexpr auto kThreshold = 3s;
// Long enough for several reaper ticks past the threshold.
constexpr auto kHold = 2 * kThreshold + 1s;
// Threshold, first tick, check interval and the container's stop, with room to spare.
constexpr auto kStopDeadline = 30s;

class IdleTest : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra =
        "idle:\n"
        "  threshold: 3s\n"
        "  check_interval: 1s\n"
        "  stop_timeout: 2s\n"
        "store:\n"
        "  activity_flush: 1s\n";
    return c;
  }

  std::uint16_t edge_port() { return sd().edge_port(); }

  std::string status_of(const std::string& id) {
    return sd().get("/v1/sandboxes/" + id).str("status");
  }

  // True when the sandbox reads `running` at every poll for `window`.
  ::testing::AssertionResult stays_running(const std::string& id, std::chrono::milliseconds window) {
    std::string seen;
    bool left = wait_until([&] {
      seen = status_of(id);
      return seen != "running";
    }, window);
    if (left) return ::testing::AssertionFailure() << id << " left running: " << seen;
    return ::testing::AssertionSuccess();
  }

  // Stopped, and by the idle reaper: the fixture runs one sandbox per sandboxd at a time
  // here, so the reaper's stop counter (SPEC §11) names this stop.
  ::testing::AssertionResult stopped_by_reaper(const std::string& id) {
    if (auto st = wait_status(id, "stopped", kStopDeadline); !st) return st;
    bool counted = wait_until([&] { return idle_reaper_stops(sd()) >= 1; }, 10s);
    if (!counted) {
      return ::testing::AssertionFailure() << id << " stopped, but no idle-reaper stop counted\n"
                                           << sd().get("/metrics").body;
    }
    return ::testing::AssertionSuccess();
  }
};

TEST_F(IdleTest, UnusedSandboxIsStopped) {
  std::string id = create_v1("u1", "idle-unused");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  EXPECT_TRUE(stopped_by_reaper(id));
}

TEST_F(IdleTest, OpenEdgeConnectionKeepsItRunningUntilClosed) {
  std::string id = create_v1("u1", "idle-open-conn");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  ASSERT_NE(edge_port(), 0) << sd().log();
  std::string host = preview_host(id, 3000);
  {
    // A keep-alive connection whose latest request went to the sandbox: busy while open.
    RawConnection conn(edge_port());
    std::optional<RawResponse> res;
    ASSERT_TRUE(wait_until([&] {
      conn.send("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
      res = conn.read_response(false, 10s);
      return res && res->status == 200;
    }, 20s)) << (res ? res->body : "no answer");
    EXPECT_TRUE(stays_running(id, kHold));
  }
  EXPECT_TRUE(stopped_by_reaper(id));
}

// SPEC §4.1: a task's end and a file write through the API are activity: last_active_at
// (RFC 3339 seconds, so plain text order is time order) moves to them, and idle time counts
// from there, not from the task's submit.
TEST_F(IdleTest, TaskEndAndFileWritesCountAsActivity) {
  std::string id = create_v1("u1", "idle-work");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  const std::string sandbox_path = "/v1/sandboxes/" + id;
  auto last_active = [&] { return sd().get(sandbox_path).str("last_active_at"); };
  Answer task = sd().post(sandbox_path + "/tasks", R"({"agent":"command","command":["sleep","5"]})");
  ASSERT_EQ(task.status, 202) << task.body;
  const std::string task_path = sandbox_path + "/tasks/" + task.str("id");
  Answer done;
  ASSERT_TRUE(wait_until([&] {
    done = sd().get(task_path);
    return done.str("status") == "succeeded";
  }, 30s)) << done.body;
  const std::string finished = done.str("finished_at");
  ASSERT_FALSE(finished.empty()) << done.body;
  EXPECT_TRUE(wait_until([&] { return last_active() >= finished; }, 5s))
      << last_active() << " is before the task's end " << finished;

  // A file write a second later moves it again.
  const std::string before = last_active();
  auto now_text = [] {
    const std::time_t t = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&t, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return std::string(text);
  };
  ASSERT_TRUE(wait_until([&] { return now_text() > before; }, 5s));
  Answer put = sd().call("PUT", sandbox_path + "/files?path=notes.txt", "kept awake\n",
                         {"Content-Type: application/octet-stream"});
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_TRUE(wait_until([&] { return last_active() > before; }, 5s)) << last_active();
  EXPECT_TRUE(stopped_by_reaper(id));
}

TEST_F(IdleTest, AlwaysOnSandboxIsNotStopped) {
  std::string id = create_v1("u1", "idle-always-on", R"("idle_policy":"always_on")");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  EXPECT_TRUE(stays_running(id, kHold));

  // Edge traffic reaches the store through the activity flush (SPEC §4.2).
  ASSERT_NE(edge_port(), 0) << sd().log();
  auto before_s = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  std::optional<RawResponse> res;
  ASSERT_TRUE(wait_until([&] {
    RawConnection conn(edge_port());
    conn.send("GET / HTTP/1.1\r\nHost: " + preview_host(id, 3000) + "\r\nConnection: close\r\n\r\n");
    res = conn.read_response(false, 10s);
    return res && res->status == 200;
  }, 20s)) << (res ? std::to_string(res->status) + " " + res->body : "no answer");
  std::int64_t stored = 0;
  Answer a;
  EXPECT_TRUE(wait_until([&] {
    a = sd().get("/sandbox/" + id);
    // The legacy GET answers {"row": {...}, "live_state": {...}}.
    if (const json::value* row = a.json.is_object() ? a.json.as_object().if_contains("row") : nullptr;
        row && row->is_object() && row->as_object().contains("last_active_at")) {
      stored = row->as_object().at("last_active_at").to_number<std::int64_t>();
    }
    // The edge's clock is coarse (one update a second per worker).
    return stored >= before_s - 1;
  }, 10s)) << "last_active_at " << stored << " never reached " << before_s << ": " << a.body;
}

TEST_F(IdleTest, KeepaliveHoldsOffTheReaper) {
  std::string id = create_v1("u1", "idle-keepalive");
  ASSERT_FALSE(id.empty());
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch()).count();
  auto kept = sd().post("/sandbox/" + id + "/keepalive",
                        R"({"until":)" + std::to_string(now_s + 120) + "}");
  ASSERT_EQ(kept.status, 200) << kept.body;
  ASSERT_TRUE(wait_init_ready(id));
  EXPECT_TRUE(stays_running(id, kHold));
  // Clearing the keepalive lets the reaper have it.
  auto cleared = sd().post("/sandbox/" + id + "/keepalive", R"({"until":0})");
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_TRUE(stopped_by_reaper(id));
}

}  // namespace
}  // namespace sandboxd::testing
