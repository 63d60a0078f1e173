// What a sandbox's stop does to its preview traffic, against the real binary, Docker and the
// test image's app (SPEC §3.9, §4.4):
// - an open WebSocket gets close code 1001 "sandbox stopping" before the container stops;
// - a request that arrives while the sandbox is `stopping` is held, waits for the stop to
//   end, then wakes the sandbox and gets the app's answer (one start, counted from Docker).
// The test image's init delays its exit by TESTAPP_STOP_DELAY seconds, so `stopping`
// lasts long enough to be hit on purpose.
#include "raw_http.h"
#include "sandboxd_fixture.h"
#include "websocket_client.h"

#include <gtest/gtest.h>

#include <cctype>
#include <future>
#include <optional>
#include <string>

namespace sandboxd::testing {
namespace {

using Clock = std::chrono::steady_clock;

// The container hostname of a sandbox (SPEC §1.3), which the test app serves at /hostname.
std::string hostname_of(const std::string& id) {
  std::string name = "s-" + id;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

class EdgeStopTest : public SandboxdTest {
 protected:
  std::uint16_t edge_port() { return sd().edge_port(); }

  // A sandbox whose stop takes `stop_delay_s` seconds, once its app answers through the edge.
  std::string create_serving(const std::string& project, int stop_delay_s) {
    std::string env = "\"env\":{\"TESTAPP_STOP_DELAY\":\"" + std::to_string(stop_delay_s) + "\"}";
    std::string id = create_v1("u1", project, env);
    if (id.empty() || !wait_init_ready(id)) return {};
    std::optional<RawResponse> res;
    bool serving = wait_until([&] {
      res = get(id, "/hostname");
      return res && res->status == 200;
    }, 30s);
    EXPECT_TRUE(serving) << (res ? std::to_string(res->status) + " " + res->body : "no answer");
    return serving ? id : std::string();
  }

  std::optional<RawResponse> get(const std::string& id, const std::string& target) {
    RawConnection conn(edge_port());
    conn.send("GET " + target + " HTTP/1.1\r\nHost: " + preview_host(id, 3000) +
              "\r\nConnection: close\r\n\r\n");
    return conn.read_response(false, 60s);
  }
};

TEST_F(EdgeStopTest, OpenWebSocketGetsClose1001WhenItsSandboxStops) {
  std::string id = create_serving("ws-stop", 0);
  ASSERT_FALSE(id.empty());
  WebSocketClient ws(edge_port());
  ASSERT_TRUE(ws.handshake(preview_host(id, 3000))) << ws.problem();
  ASSERT_TRUE(ws.send_text("before"));
  auto echo = ws.read_frame();
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->payload, "before");

  auto stopped = sd().post("/v1/sandboxes/" + id + "/stop");
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  auto close = ws.read_frame(10s);
  ASSERT_TRUE(close) << ws.problem();
  EXPECT_EQ(close->opcode, 8);
  ASSERT_GE(close->payload.size(), 2u);
  EXPECT_EQ(close->close_code(), 1001);
  EXPECT_EQ(close->payload.substr(2), "sandbox stopping");
  ASSERT_TRUE(ws.send(8, std::string("\x03\xe9", 2)));  // the client's close answers it
  EXPECT_TRUE(ws.wait_closed(5s));

  // Reconnecting goes through the wake path: the sandbox comes back and echoes again.
  WebSocketClient again(edge_port());
  ASSERT_TRUE(again.handshake(preview_host(id, 3000), "/ws", 60s)) << again.problem();
  ASSERT_TRUE(again.send_text("after"));
  auto echo2 = again.read_frame(30s);
  ASSERT_TRUE(echo2);
  EXPECT_EQ(echo2->payload, "after");
}

// SPEC §5.2, §5.5: destroy (and purge, the v1 DELETE's default) stops a running sandbox
// first, so its WebSockets are told why.
TEST_F(EdgeStopTest, DestroyClosesOpenWebSocketsWith1001First) {
  std::string id = create_serving("ws-destroy", 0);
  ASSERT_FALSE(id.empty());
  WebSocketClient ws(edge_port());
  ASSERT_TRUE(ws.handshake(preview_host(id, 3000))) << ws.problem();
  ASSERT_TRUE(ws.send_text("before"));
  ASSERT_TRUE(ws.read_frame());

  ASSERT_EQ(sd().del("/v1/sandboxes/" + id + "?keep_workspace=true").status, 204);
  auto close = ws.read_frame(10s);
  ASSERT_TRUE(close) << ws.problem();
  EXPECT_EQ(close->opcode, 8);
  ASSERT_GE(close->payload.size(), 2u);
  EXPECT_EQ(close->close_code(), 1001);
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "destroyed");
  EXPECT_FALSE(engine_inspect("s-" + id)) << "the container is removed";
}

TEST_F(EdgeStopTest, RequestDuringStoppingWaitsForTheStopThenWakesTheSandbox) {
  constexpr int kStopDelayS = 3;
  std::string id = create_serving("stopping-wait", kStopDelayS);
  ASSERT_FALSE(id.empty());
  std::string since = engine_now();

  auto stopping = sd().post("/v1/sandboxes/" + id + "/stop?wait=false");
  ASSERT_EQ(stopping.status, 202) << stopping.body;
  ASSERT_EQ(stopping.str("status"), "stopping");
  auto answer = std::async(std::launch::async, [&] { return get(id, "/hostname"); });

  // The app keeps serving while its container stops, so a request forwarded during the stop
  // would be answered by it at once: the answer must come only after the stop, from the
  // container started again.
  auto res = answer.get();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->body, hostname_of(id) + "\n");
  const std::string wake = res->headers["x-sandbox-wake"];
  ASSERT_TRUE(wake.starts_with("woke;held_ms=")) << wake;
  EXPECT_GE(std::stoll(wake.substr(wake.find('=') + 1)), (kStopDelayS - 1) * 1000) << wake;
  EXPECT_TRUE(wait_status(id, "running", 30s));
  EXPECT_EQ(engine_container_actions("s-" + id, since, {"die", "start"}),
            (std::vector<std::string>{"die", "start"}));

  // The wake is in the metrics: one cycle, each phase observed once.
  const std::string metrics = sd().get("/metrics").body;
  for (const std::string series :
       {"sandboxd_wake_duration_seconds_count", "sandboxd_wake_phase_seconds_count{phase=\"queue\"}",
        "sandboxd_wake_phase_seconds_count{phase=\"start\"}",
        "sandboxd_wake_phase_seconds_count{phase=\"port_open\"}",
        "sandboxd_wake_phase_seconds_count{phase=\"first_byte\"}", "sandboxd_wakes_total{result=\"ok\"}"}) {
    EXPECT_NE(metrics.find("\n" + series + " 1\n"), std::string::npos) << series << "\n" << metrics;
  }
}

}  // namespace
}  // namespace sandboxd::testing
