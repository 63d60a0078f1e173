// SIGHUP (SPEC §9.4) against the real binary: a new API token replaces the old one while an
// open WebSocket through the edge keeps echoing; a broken file changes nothing; a changed
// restart key is named and counted.
#include "raw_http.h"
#include "sandboxd_fixture.h"
#include "websocket_client.h"

#include <gtest/gtest.h>

#include <signal.h>

namespace sandboxd::testing {
namespace {

const std::string kOne = "token-one-0123456789abcdef0123456789abcdef";
const std::string kTwo = "token-two-0123456789abcdef0123456789abcdef";

SandboxdConfig with_token(const std::string& name, const std::string& secret) {
  SandboxdConfig c;
  c.extra = "auth:\n  required: true\n  tokens:\n    - name: " + name + "\n      secret: " + secret + "\n";
  return c;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Sends SIGHUP and waits for the log line that says it was handled.
class SighupTest : public SandboxdTest {
 protected:
  ::testing::AssertionResult reload_and_wait(const std::string& needle) {
    const std::size_t before = count_of(sd().log(), needle);
    sd().signal(SIGHUP);
    if (wait_until([&] { return count_of(sd().log(), needle) > before; }, 10s)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "no \"" << needle << "\" after SIGHUP:\n" << sd().log();
  }

  bool metrics_say(const std::string& sample) {
    return sd().get("/metrics").body.find(sample) != std::string::npos;
  }
};

class ReloadTest : public SighupTest {
 protected:
  SandboxdConfig config() const override { return with_token("one", kOne); }

  int status_with(const std::string& token) {
    sd().set_token(token);
    return sd().get("/v1/sandboxes").status;
  }
};

TEST_F(ReloadTest, NewTokenAppliesWhileAWebSocketKeepsEchoingAndABrokenFileChangesNothing) {
  sd().set_token(kOne);
  const std::string id = create_v1("u1", "reload");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_preview(id));
  WebSocketClient ws(sd().edge_port());
  ASSERT_TRUE(ws.handshake(preview_host(id, 3000))) << ws.problem();
  ASSERT_TRUE(ws.send_text("before"));
  auto frame = ws.read_frame();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->payload, "before");

  sd().rewrite_config(with_token("two", kTwo));
  ASSERT_TRUE(reload_and_wait("config reloaded"));
  ASSERT_TRUE(wait_until([&] { return status_with(kTwo) == 200; }, 5s));
  EXPECT_EQ(status_with(kOne), 401);
  ASSERT_TRUE(ws.send_text("after"));
  frame = ws.read_frame();
  ASSERT_TRUE(frame) << "the WebSocket did not survive the reload";
  EXPECT_EQ(frame->payload, "after");

  // A broken file: its errors are logged, nothing changes.
  sd().write_raw_config("data_dir: [unclosed\n");
  ASSERT_TRUE(reload_and_wait("the config is invalid; nothing changed"));
  EXPECT_EQ(status_with(kTwo), 200);
  EXPECT_EQ(status_with(kOne), 401);
  ASSERT_TRUE(ws.send_text("still"));
  frame = ws.read_frame();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->payload, "still");

  // A key that needs a restart is named, counted, and left as it was.
  SandboxdConfig restart = with_token("two", kTwo);
  restart.edge_lines = "  workers: 3\n";
  sd().rewrite_config(restart);
  ASSERT_TRUE(reload_and_wait("these changes need a restart: edge.workers"));
  sd().set_token(kTwo);
  Answer m = sd().get("/metrics");
  EXPECT_NE(m.body.find("sandboxd_config_reloads_total{result=\"ok\"} 2"), std::string::npos) << m.body.substr(0, 300);
  EXPECT_NE(m.body.find("sandboxd_config_reloads_total{result=\"error\"} 1"), std::string::npos);
  EXPECT_NE(m.body.find("sandboxd_config_restart_pending 1"), std::string::npos);
  EXPECT_EQ(sd().log().find(kTwo), std::string::npos) << "a token was logged";
}

std::string get_request(const std::string& host, const std::string& extra_headers = "") {
  return "GET / HTTP/1.1\r\nHost: " + host + "\r\n" + extra_headers + "\r\n";
}

// Edge limits and timeouts (SPEC §3.10, §9.4): a reload applies them to connections
// accepted from then on; one accepted before keeps what it was accepted with.
class EdgeReloadTest : public SighupTest {};

TEST_F(EdgeReloadTest, LowerHeaderLimitAndKeepaliveApplyToNewConnectionsOnly) {
  const std::string id = create_v1("u1", "reload-edge");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_preview(id));
  const std::string host = preview_host(id, 3000);
  const std::string big_head = get_request(host, "X-Pad: " + std::string(4000, 'p') + "\r\n");

  // Accepted before the reload, under 64KiB heads and a 75 s keep-alive.
  RawConnection before(sd().edge_port());
  before.send(get_request(host));
  auto r = before.read_response();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  WebSocketClient ws(sd().edge_port());
  ASSERT_TRUE(ws.handshake(host)) << ws.problem();

  SandboxdConfig lower;
  lower.edge_lines = "  limits:\n    max_header_bytes: 2KiB\n  timeouts:\n    keepalive_idle: 1s\n";
  sd().rewrite_config(lower);
  ASSERT_TRUE(reload_and_wait("config reloaded"));

  // A new connection gets the new limit: a 4 KB head is too large now.
  RawConnection fresh(sd().edge_port());
  fresh.send(big_head);
  r = fresh.read_response();
  ASSERT_TRUE(r) << "no answer to an oversized head";
  EXPECT_EQ(r->status, 431);

  // And the new keep-alive: closed after about a second without a request.
  RawConnection idle(sd().edge_port());
  idle.send(get_request(host));
  r = idle.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(idle.wait_closed(10s)) << "the new keepalive_idle did not apply";

  // `before` has been idle longer than `idle` was, and still takes a 4 KB head.
  before.send(big_head);
  r = before.read_response();
  ASSERT_TRUE(r) << "the connection accepted before the reload lost its keep-alive";
  EXPECT_EQ(r->status, 200);

  ASSERT_TRUE(ws.send_text("after"));
  auto frame = ws.read_frame();
  ASSERT_TRUE(frame) << "the WebSocket did not survive the reload";
  EXPECT_EQ(frame->payload, "after");

  EXPECT_EQ(sd().log().find("need a restart"), std::string::npos) << sd().log();
  EXPECT_TRUE(metrics_say("sandboxd_config_restart_pending 0"));
  EXPECT_TRUE(metrics_say("sandboxd_config_reloads_total{result=\"ok\"} 1"));
}

// idle.* (SPEC §4.4, §9.4): a shorter threshold applies from the reaper's next tick.
class IdleReloadTest : public SighupTest {
 protected:
  static SandboxdConfig with_threshold(const std::string& threshold) {
    SandboxdConfig c;
    c.extra = "idle:\n  threshold: " + threshold +
              "\n  check_interval: 1s\n  stop_timeout: 2s\nstore:\n  activity_flush: 1s\n";
    return c;
  }
  SandboxdConfig config() const override { return with_threshold("1h"); }
};

TEST_F(IdleReloadTest, ShorterThresholdStopsAnIdleSandboxWithoutARestart) {
  const std::string id = create_v1("u1", "reload-idle");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  ASSERT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "running");

  sd().rewrite_config(with_threshold("2s"));
  ASSERT_TRUE(reload_and_wait("config reloaded"));
  ASSERT_TRUE(wait_status(id, "stopped", 30s));
  EXPECT_TRUE(wait_until([&] { return idle_reaper_stops(sd()) >= 1; }, 10s));
  EXPECT_EQ(sd().log().find("need a restart"), std::string::npos) << sd().log();
  EXPECT_TRUE(metrics_say("sandboxd_config_restart_pending 0"));
}

// A restart key (SPEC §9.2) is named in the warning, keeps its old value, and is counted.
class RestartKeyReloadTest : public SighupTest {};

TEST_F(RestartKeyReloadTest, NewEdgeListenIsNamedAndTheOldListenerKeepsServing) {
  const std::uint16_t port = sd().edge_port();
  ASSERT_NE(port, 0);
  SandboxdConfig moved;
  moved.edge_listen = "127.0.0.2:0";
  sd().rewrite_config(moved);
  ASSERT_TRUE(reload_and_wait("these changes need a restart: edge.http.listen"));
  RawConnection c(port);
  c.send(get_request("nothing.example"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << "the old edge listener stopped answering";
  EXPECT_GT(r->status, 0);
  EXPECT_TRUE(metrics_say("sandboxd_config_restart_pending 1"));

  // Back to the running value: nothing waits for a restart any more.
  sd().rewrite_config(SandboxdConfig{});
  ASSERT_TRUE(reload_and_wait("config reloaded"));
  EXPECT_TRUE(wait_until([&] { return metrics_say("sandboxd_config_restart_pending 0"); }, 5s));
}

// edge.timeouts.header_read is live (SPEC §9.2), for the control API's own connections too.
class ControlTimeoutReloadTest : public SighupTest {};

TEST_F(ControlTimeoutReloadTest, AShorterHeaderReadCutsAStalledControlRequest) {
  SandboxdConfig shorter;
  shorter.edge_lines = "  timeouts:\n    header_read: 1s\n";
  sd().rewrite_config(shorter);
  ASSERT_TRUE(reload_and_wait("config reloaded"));
  EXPECT_EQ(sd().log().find("need a restart"), std::string::npos) << sd().log();
  RawConnection stalled(sd().port());
  stalled.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // the head never ends
  // 15 s before the reload; now about 1 s.
  EXPECT_TRUE(stalled.wait_closed(6s)) << "a stalled head outlived the reloaded header_read";
}

// log.access_log is live (SPEC §9.2): a SIGHUP turns it on, moves it and turns it off.
class AccessLogReloadTest : public SighupTest {
 protected:
  static SandboxdConfig with_access_log(const std::string& target) {
    SandboxdConfig c;
    c.extra = "log:\n  access_log: \"" + target + "\"\n";
    return c;
  }
  ::testing::AssertionResult switch_to(const std::string& target) {
    sd().rewrite_config(with_access_log(target));
    return reload_and_wait("config reloaded");
  }
  // One request through the edge for an unknown host: the edge answers it and logs it.
  void request(const std::string& host) {
    RawConnection c(sd().edge_port());
    c.send(get_request(host));
    ASSERT_TRUE(c.read_response()) << host;
  }
  bool logged(const std::string& path, const std::string& host) {
    return read_whole(path).find(host) != std::string::npos;
  }

  TempDir logs_;
};

TEST_F(AccessLogReloadTest, ASighupTurnsItOnMovesItAndTurnsItOff) {
  const std::string a = logs_.path() + "/a.log";
  const std::string b = logs_.path() + "/b.log";
  request("before.example");  // off by default

  ASSERT_TRUE(switch_to(a));
  request("first.example");
  ASSERT_TRUE(wait_until([&] { return logged(a, "first.example"); }, 5s)) << read_whole(a);
  ASSERT_TRUE(switch_to(b));
  request("second.example");
  ASSERT_TRUE(wait_until([&] { return logged(b, "second.example"); }, 5s)) << read_whole(b);
  ASSERT_TRUE(switch_to(""));
  request("unlogged.example");
  // Back on: a line written after the one sent while off shows that one was never kept.
  ASSERT_TRUE(switch_to(b));
  request("third.example");
  ASSERT_TRUE(wait_until([&] { return logged(b, "third.example"); }, 5s)) << read_whole(b);

  EXPECT_FALSE(logged(a, "before.example"));
  EXPECT_FALSE(logged(a, "second.example")) << "a line went to the old target";
  EXPECT_FALSE(logged(b, "first.example"));
  EXPECT_FALSE(logged(a, "unlogged.example") || logged(b, "unlogged.example"));
  EXPECT_EQ(sd().log().find("need a restart"), std::string::npos) << sd().log();
}

}  // namespace
}  // namespace sandboxd::testing

namespace sandboxd::testing {
namespace {

// SIGTERM (SPEC §3.16): the listeners close, an upload in flight completes, a WebSocket gets
// close 1001 "server shutting down", then the process exits.
class DrainTest : public SandboxdTest {};

TEST_F(DrainTest, UploadInFlightCompletesAndWebSocketsGetClose1001) {
  const std::string id = create_v1("u1", "drain");
  ASSERT_FALSE(id.empty());
  const std::string host = preview_host(id, 3000);
  ASSERT_TRUE(wait_preview(id));
  WebSocketClient ws(sd().edge_port());
  ASSERT_TRUE(ws.handshake(host)) << ws.problem();

  const std::string first(64 * 1024, 'a');
  const std::string rest(64 * 1024, 'b');
  const std::string bytes_in = R"(sandboxd_edge_bytes_total{direction="in"})";
  const double before = sd().metric(bytes_in);
  RawConnection upload(sd().edge_port());
  upload.send("POST /upload HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: " +
              std::to_string(first.size() + rest.size()) + "\r\n\r\n" + first);
  // In flight means the edge has read the head and is passing the body on; before that, the
  // connection may not even be accepted yet, and a closing listener resets it.
  ASSERT_TRUE(wait_until([&] { return sd().metric(bytes_in) > before; }, 10s))
      << "the edge never passed the upload's body on";
  sd().signal(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return sd().log().find("stopping") != std::string::npos; }, 10s));
  // The WebSocket is told why it ends.
  auto close = ws.read_frame();
  ASSERT_TRUE(close) << "no close frame";
  EXPECT_EQ(close->opcode, 8);
  ASSERT_GE(close->payload.size(), 2u);
  EXPECT_EQ(close->close_code(), 1001);
  EXPECT_EQ(close->payload.substr(2), "server shutting down");
  // New connections are refused while the upload goes on.
  EXPECT_THROW(RawConnection(sd().edge_port()), std::runtime_error);
  upload.send(rest);
  auto r = upload.read_response(false, std::chrono::seconds(20));
  ASSERT_TRUE(r) << "the upload in flight was cut";
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("\"bytes\":131072"), std::string::npos) << r->body;
  EXPECT_TRUE(sd().terminate()) << "sandboxd did not exit after the drain";
}

}  // namespace
}  // namespace sandboxd::testing
