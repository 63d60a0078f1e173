// GET /v1/events (SPEC §2.7.12) against the real binary and Docker Engine: every transition
// of §5.2 and every task status change, in order, filtered by user; Last-Event-ID replays
// exactly what was missed, and an id from outside the kept window, or from before a
// restart, gets `resync`.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "raw_http.h"
#include "sandboxd_fixture.h"

namespace sandboxd::testing {
namespace {

// One open GET /v1/events.
class EventStream {
 public:
  EventStream(std::uint16_t port, const std::string& query, const std::string& last_event_id = "")
      : c_(port) {
    std::string head = "GET /v1/events" + query + " HTTP/1.1\r\nHost: x\r\n";
    if (!last_event_id.empty()) head += "Last-Event-ID: " + last_event_id + "\r\n";
    c_.send(head + "\r\n");
  }

  // Reads until `needle` has arrived (it is never split: one write is one chunk).
  bool saw(const std::string& needle, std::chrono::milliseconds deadline = 60s) {
    return c_.read_until(needle, deadline);
  }
  std::string head() const { return c_.received().substr(0, c_.received().find("\r\n\r\n")); }
  SseStream parsed() const { return parse_sse(dechunked(c_.received())); }
  std::string body() const { return dechunked(c_.received()); }

 private:
  RawConnection c_;
};

std::string field(const SseEvent& e, const std::string& key) {
  if (!e.data.is_object()) return "?";
  const auto* v = e.data.as_object().if_contains(key);
  if (v == nullptr) return "?";
  if (v->is_null()) return "null";
  return v->is_string() ? std::string(v->as_string()) : "?";
}

// "from>to" for sandbox.state, "task:<status>" for task.state.
std::string step(const SseEvent& e) {
  if (e.event == "sandbox.state") return field(e, "from") + ">" + field(e, "to");
  if (e.event == "task.state") return "task:" + field(e, "status");
  return e.event;
}

class EventsTest : public SandboxdTest {};

TEST_F(EventsTest, TransitionsAndTaskStatusesArriveInOrderForTheirUserOnly) {
  EventStream live(sd().port(), "?user_id=ev-a");
  ASSERT_TRUE(live.saw("retry: 2000\n\n", 10s));
  EXPECT_NE(live.head().find("text/event-stream"), std::string::npos) << live.head();

  const std::string id = create_v1("ev-a", "events-a");
  ASSERT_FALSE(id.empty());
  const std::string other = create_v1("ev-b", "events-b");
  ASSERT_FALSE(other.empty());
  ASSERT_TRUE(wait_init_ready(id));
  Answer stopped = sd().post("/v1/sandboxes/" + id + "/stop");
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  // A task submitted to a stopped sandbox wakes it first.
  Answer task = sd().post("/v1/sandboxes/" + id + "/tasks",
                          R"({"agent":"command","command":["sh","-c","exit 0"]})");
  ASSERT_EQ(task.status, 202) << task.body;
  const std::string task_id = task.str("id");
  ASSERT_TRUE(live.saw(R"("status":"succeeded")")) << live.body();

  SseStream s = live.parsed();
  ASSERT_TRUE(s.retry_first);
  std::vector<std::string> sandbox_steps;
  std::vector<std::string> task_steps;
  for (std::size_t i = 0; i < s.events.size(); ++i) {
    const SseEvent& e = s.events[i];
    if (i > 0) {
      EXPECT_GT(e.id, s.events[i - 1].id) << "ids only grow";
    }
    EXPECT_EQ(field(e, "sandbox_id"), id) << "another user's sandbox leaked in: " << live.body();
    EXPECT_NE(field(e, "at"), "?");
    if (e.event == "sandbox.state") {
      sandbox_steps.push_back(step(e));
      EXPECT_NE(field(e, "reason"), "?");
    } else {
      ASSERT_EQ(e.event, "task.state");
      EXPECT_EQ(field(e, "task_id"), task_id);
      task_steps.push_back(step(e));
    }
  }
  EXPECT_EQ(sandbox_steps, (std::vector<std::string>{"null>creating", "creating>running",
                                                     "running>stopping", "stopping>stopped",
                                                     "stopped>waking", "waking>running"}))
      << live.body();
  ASSERT_FALSE(task_steps.empty());
  EXPECT_EQ(task_steps.back(), "task:succeeded");
  EXPECT_EQ(field(s.events[2], "reason"), "api");  // the stop's reason (SPEC §5.1)

  // Coming back after the second event replays exactly the rest.
  EventStream resumed(sd().port(), "?user_id=ev-a", std::to_string(s.events[1].id));
  ASSERT_TRUE(resumed.saw(R"("status":"succeeded")", 10s)) << resumed.body();
  SseStream r = resumed.parsed();
  ASSERT_EQ(r.events.size(), s.events.size() - 2) << resumed.body();
  for (std::size_t i = 0; i < r.events.size(); ++i) {
    EXPECT_EQ(r.events[i].id, s.events[i + 2].id);
    EXPECT_EQ(step(r.events[i]), step(s.events[i + 2]));
  }

  // The other user's filter sees only its own sandbox; sandbox_id filters too.
  EventStream theirs(sd().port(), "?sandbox_id=" + other, std::to_string(s.events[0].id - 1));
  ASSERT_TRUE(theirs.saw(R"("to":"running")", 10s)) << theirs.body();
  for (const SseEvent& e : theirs.parsed().events) EXPECT_EQ(field(e, "sandbox_id"), other);
}

TEST_F(EventsTest, AnIdFromBeforeTheWindowOrARestartGetsResyncAndIdsKeepRising) {
  EventStream live(sd().port(), "");
  ASSERT_TRUE(live.saw("retry: 2000\n\n", 10s));
  const std::string id = create_v1("ev-r", "events-r");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(live.saw(R"("to":"running")"));
  const long long last = live.parsed().events.back().id;

  // Far before anything this run kept.
  EventStream old(sd().port(), "", "1");
  ASSERT_TRUE(old.saw("event: resync", 10s)) << old.body();
  SseStream o = old.parsed();
  ASSERT_FALSE(o.events.empty());
  EXPECT_EQ(o.events.front().event, "resync");
  EXPECT_TRUE(o.events.front().data.is_object() && o.events.front().data.as_object().empty());

  ASSERT_TRUE(sd().terminate());
  ASSERT_TRUE(sd().start());
  // The last id of the previous run is not one of this run's: list again.
  EventStream after(sd().port(), "", std::to_string(last));
  ASSERT_TRUE(after.saw("event: resync", 10s)) << after.body();
  EXPECT_GT(after.parsed().events.front().id, last);
  Answer stopped = sd().post("/v1/sandboxes/" + id + "/stop");
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  ASSERT_TRUE(after.saw(R"("to":"stopped")")) << after.body();
  for (const SseEvent& e : after.parsed().events) EXPECT_GT(e.id, last) << "an id came back";
}

TEST_F(EventsTest, BadQueriesAndIdsAre400BeforeAnyEvent) {
  Answer bad_id = sd().call("GET", "/v1/events", "", {"Last-Event-ID: 12x"});
  EXPECT_EQ(bad_id.status, 400) << bad_id.body;
  EXPECT_EQ(bad_id.error_code(), "invalid_request");
  EXPECT_EQ(sd().get("/v1/events?sandbox_id=not-an-id").status, 400);
  EXPECT_EQ(sd().get("/v1/events?user_id=a&user_id=b").status, 400);
  EXPECT_EQ(sd().get("/v1/events?user_id=a,b").status, 400);
  EXPECT_EQ(sd().call("POST", "/v1/events").status, 405);
}

}  // namespace
}  // namespace sandboxd::testing
