// The preview edge in front of a real app (SPEC §3, §4): the test image's testapp
// (image/testapp/) in a real container, reached through the real sandboxd's edge.
//
// - 64 MiB bodies cross the edge both ways, verified byte for byte (or by count and sum),
//   while sandboxd's peak RSS stays well below the body size: the edge streams.
// - Server-Sent Events reach the client as they are written, not when the response ends.
// - WebSockets are tunnelled (handshake, masked frames, ping, close).
// - A stopped sandbox hit by 50 concurrent requests of every kind (GET, POST with a body,
//   WebSocket) is started exactly once, and every request gets the app's real answer.
// - A declared port that never opens ends in 504 port_not_open, as JSON or as HTML.
// - Malformed requests get 400/431 and a closed connection; a stalled head is cut at
//   edge.timeouts.header_read without holding up another client on the same worker.
// - An open WebSocket keeps its sandbox awake while the idle reaper stops an unused one.
//
// Every wait polls a condition with a deadline; nothing sleeps to synchronise.
#include "raw_http.h"
#include "sandboxd_fixture.h"
#include "websocket_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <optional>
#include <thread>

namespace sandboxd::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMiB = 1024 * 1024;
constexpr std::size_t kBigBody = 64 * kMiB;
// What sandboxd's peak RSS may grow by while 64 MiB bodies cross the edge. The edge keeps
// 64 KiB per direction per connection; growth near the body size means it buffers bodies.
constexpr std::int64_t kRssGrowthLimitKiB = 16 * 1024;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The container hostname of a sandbox (SPEC §1.3), which the testapp serves.
std::string hostname_of(const std::string& id) { return "s-" + lower(id); }

long long ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// A field of /proc/<pid>/status in KiB ("VmRSS", "VmHWM"); -1 when absent.
std::int64_t proc_status_kib(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

// Resets the peak RSS (VmHWM) of `pid` to its current RSS (proc(5): clear_refs, "5").
bool reset_peak_rss(int pid) {
  std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

// Byte `i` of the upload bodies: position-dependent, so a body cut or doubled changes the sum.
unsigned char upload_byte(std::uint64_t i) {
  std::uint64_t x = i * 0x9E3779B97F4A7C15ULL;
  return static_cast<unsigned char>((x >> 56) ^ (x >> 29) ^ i);
}

std::string upload_piece(std::uint64_t offset, std::size_t size) {
  std::string piece(size, '\0');
  for (std::size_t i = 0; i < size; ++i) piece[i] = static_cast<char>(upload_byte(offset + i));
  return piece;
}

std::uint32_t upload_sum(std::uint64_t size) {
  std::uint32_t sum = 0;
  for (std::uint64_t i = 0; i < size; ++i) sum += upload_byte(i);
  return sum;
}

class EdgeAppTest : public SandboxdTest {
 protected:
  std::uint16_t edge_port() { return sd().edge_port(); }

  // v1 create, then waits until the testapp answers GET /hostname through the edge.
  std::string create_serving(const std::string& project, const std::string& extra_fields = "") {
    std::string id = create_v1("u1", project, extra_fields);
    if (id.empty()) return id;
    EXPECT_NE(edge_port(), 0) << sd().log();
    std::optional<RawResponse> res;
    bool serving = wait_until(
        [&] {
          res = request("GET", id, "/hostname");
          return res && res->status == 200;
        },
        30s);
    EXPECT_TRUE(serving) << (res ? std::to_string(res->status) + " " + res->body : "no answer");
    EXPECT_EQ(res ? res->body : "", hostname_of(id) + "\n");
    return serving ? id : std::string();
  }

  // One request on its own edge connection (Connection: close) to the sandbox's port.
  std::optional<RawResponse> request(const std::string& method, const std::string& id,
                                     const std::string& target, const std::string& body = "",
                                     const std::vector<std::string>& headers = {}, int port = 3000,
                                     std::chrono::milliseconds deadline = 60s) {
    RawConnection conn(edge_port());
    std::string head = method + " " + target + " HTTP/1.1\r\nHost: " + preview_host(id, port) +
                       "\r\nConnection: close\r\n";
    for (const auto& h : headers) head += h + "\r\n";
    if (method == "POST" || method == "PUT") {
      head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    conn.send(head + "\r\n" + body);
    return conn.read_response(method == "HEAD", deadline);
  }

  // POST /upload of kBigBody bytes, framed by Content-Length or chunked with pieces of
  // varying sizes; the app's {"bytes","sum"} must match what was sent.
  void upload_64mib(const std::string& id, bool chunked) {
    RawConnection conn(edge_port());
    std::string head = "POST /upload HTTP/1.1\r\nHost: " + preview_host(id, 3000) +
                       "\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n"
                    : "Content-Length: " + std::to_string(kBigBody) + "\r\n";
    conn.send(head + "\r\n");
    std::uint64_t sent = 0;
    for (std::size_t n = 0; sent < kBigBody; ++n) {
      // Sizes that do not divide anything evenly, so chunk boundaries fall everywhere.
      std::size_t size = std::min<std::size_t>(kMiB - 4099 * (n % 7), kBigBody - sent);
      std::string piece = upload_piece(sent, size);
      if (chunked) {
        char size_line[32];
        std::snprintf(size_line, sizeof size_line, "%zx\r\n", size);
        conn.send(size_line + piece + "\r\n");
      } else {
        conn.send(piece);
      }
      sent += size;
    }
    if (chunked) conn.send("0\r\n\r\n");
    auto res = conn.read_response(false, 120s);
    ASSERT_TRUE(res) << "no answer to the " << (chunked ? "chunked" : "Content-Length")
                     << " upload: " << conn.received().substr(0, 500);
    EXPECT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->body, "{\"bytes\":" + std::to_string(kBigBody) +
                             ",\"sum\":" + std::to_string(upload_sum(kBigBody)) + "}")
        << (chunked ? "chunked" : "Content-Length");
  }
};

TEST_F(EdgeAppTest, SixtyFourMebibytesStreamBothWaysWithoutGrowingSandboxdMemory) {
  std::string id = create_serving("big-bodies");
  ASSERT_FALSE(id.empty());
  // Warm up: the first proxied bodies make the edge's per-connection buffers and pools.
  auto warm = request("POST", id, "/upload", std::string(kMiB, 'x'));
  ASSERT_TRUE(warm && warm->status == 200);

  int pid = sd().pid();
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(reset_peak_rss(pid)) << "cannot write /proc/" << pid << "/clear_refs";
  std::int64_t base_kib = proc_status_kib(pid, "VmRSS");
  ASSERT_GT(base_kib, 0);

  upload_64mib(id, /*chunked=*/false);
  upload_64mib(id, /*chunked=*/true);

  auto down = request("GET", id, "/bytes?n=" + std::to_string(kBigBody), "", {}, 3000, 120s);
  ASSERT_TRUE(down) << "no answer to GET /bytes";
  EXPECT_EQ(down->status, 200);
  ASSERT_EQ(down->body.size(), kBigBody);
  std::size_t first_bad = kBigBody;
  for (std::size_t i = 0; i < kBigBody; ++i) {
    if (static_cast<unsigned char>(down->body[i]) != i % 251) {
      first_bad = i;
      break;
    }
  }
  EXPECT_EQ(first_bad, kBigBody) << "the download differs from the app's pattern at this byte";

  std::int64_t peak_kib = proc_status_kib(pid, "VmHWM");
  EXPECT_LE(peak_kib - base_kib, kRssGrowthLimitKiB)
      << "sandboxd's RSS went from " << base_kib << " KiB to a peak of " << peak_kib
      << " KiB while 3 x 64 MiB crossed the edge";
}

TEST_F(EdgeAppTest, ServerSentEventsArriveBeforeTheResponseEnds) {
  std::string id = create_serving("sse");
  ASSERT_FALSE(id.empty());
  RawConnection conn(edge_port());
  auto t0 = Clock::now();
  // 5 events, 300 ms apart: the stream takes 1.2 s from the first event to the last.
  conn.send("GET /sse?n=5&interval_ms=300 HTTP/1.1\r\nHost: " + preview_host(id, 3000) +
            "\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(conn.read_until("data: 1\n\n", 10s)) << conn.received();
  long long first_ms = ms_since(t0);
  ASSERT_TRUE(conn.read_until("data: 5\n\n", 10s)) << conn.received();
  long long last_ms = ms_since(t0);
  EXPECT_NE(lower(conn.received()).find("content-type: text/event-stream"), std::string::npos)
      << conn.received();
  // A buffering edge would deliver all five at once, at the end (1200 ms apart when
  // streamed; the margin absorbs a test thread that got the CPU late).
  EXPECT_GE(last_ms - first_ms, 600)
      << "first event at " << first_ms << " ms, last at " << last_ms << " ms";
  EXPECT_TRUE(conn.read_until("0\r\n\r\n", 10s)) << "the chunked stream did not end";
}

TEST_F(EdgeAppTest, WebSocketEchoesThroughTheEdge) {
  std::string id = create_serving("websocket");
  ASSERT_FALSE(id.empty());
  WebSocketClient ws(edge_port());
  ASSERT_TRUE(ws.handshake(preview_host(id, 3000))) << ws.problem();

  ASSERT_TRUE(ws.send_text("hello through the edge"));
  auto text = ws.read_frame();
  ASSERT_TRUE(text);
  EXPECT_EQ(text->opcode, 1);
  EXPECT_EQ(text->payload, "hello through the edge");

  // A binary frame larger than the edge's 64 KiB buffers.
  std::string blob = upload_piece(7, 200 * 1024);
  ASSERT_TRUE(ws.send(2, blob));
  auto binary = ws.read_frame();
  ASSERT_TRUE(binary);
  EXPECT_EQ(binary->opcode, 2);
  EXPECT_TRUE(binary->payload == blob) << "binary echo of " << binary->payload.size() << " bytes";

  ASSERT_TRUE(ws.send(9, "are you there"));
  auto pong = ws.read_frame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, 10);
  EXPECT_EQ(pong->payload, "are you there");

  ASSERT_TRUE(ws.send(8, std::string("\x03\xe8", 2)));  // close 1000
  auto closed = ws.read_frame();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->opcode, 8);
  EXPECT_EQ(closed->payload, std::string("\x03\xe8", 2));
  EXPECT_TRUE(ws.wait_closed()) << "the tunnel stayed open after the close handshake";
}

TEST_F(EdgeAppTest, StoppedSandboxIsStartedOnceForFiftyMixedConcurrentRequests) {
  std::string id = create_serving("wake-mixed");
  ASSERT_FALSE(id.empty());
  auto stopped = sd().post("/v1/sandboxes/" + id + "/stop");
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  ASSERT_EQ(stopped.str("status"), "stopped");
  std::string since = engine_now();

  // Every third client is a GET, a POST /echo with a body (some over the 16 KiB the edge
  // reads of a held body), or a WebSocket echo; all are held during the wake.
  constexpr int kClients = 50;
  std::vector<std::string> failures(kClients);
  // A client whose thread ran late may find the sandbox already awake; most are held.
  std::atomic<int> held_through_wake{0};
  std::vector<std::thread> clients;
  std::string host = preview_host(id, 3000);
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      std::string& failure = failures[static_cast<std::size_t>(i)];
      try {
        if (i % 3 == 0) {
          auto r = request("GET", id, "/hostname");
          if (!r || r->status != 200 || r->body != hostname_of(id) + "\n") {
            failure = "GET: " + (r ? std::to_string(r->status) + " " + r->body : "no answer");
          } else if (r->headers["x-sandbox-wake"].starts_with("woke;held_ms=")) {
            ++held_through_wake;
          }
        } else if (i % 3 == 1) {
          std::string body = "client " + std::to_string(i) + " " +
                             std::string(i % 2 ? 40 * 1024 : 100, static_cast<char>('a' + i % 26));
          auto r = request("POST", id, "/echo", body, {"Content-Type: text/plain"});
          if (!r || r->status != 200 || r->body != body || r->headers["x-method"] != "POST") {
            failure = "POST: " +
                      (r ? std::to_string(r->status) + " " + r->body.substr(0, 200) : "no answer");
          } else if (r->headers["x-sandbox-wake"].starts_with("woke;held_ms=")) {
            ++held_through_wake;
          }
        } else {
          WebSocketClient ws(edge_port());
          std::string message = "socket " + std::to_string(i);
          if (!ws.handshake(host, "/ws", 60s)) {
            failure = "WebSocket handshake: " + ws.problem();
          } else if (!ws.send_text(message)) {
            failure = "WebSocket send failed";
          } else if (auto f = ws.read_frame(30s); !f || f->opcode != 1 || f->payload != message) {
            failure = "WebSocket echo: " + (f ? f->payload : "none");
          }
        }
      } catch (const std::exception& e) {
        failure = e.what();
      }
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(failures[static_cast<std::size_t>(i)], "") << "client " << i;
  }
  EXPECT_GE(held_through_wake.load(), 1) << "no answer says X-Sandbox-Wake: woke";
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "running");
  EXPECT_EQ(engine_container_starts("s-" + id, since), 1)
      << "exactly one container start for the wake";
}

// ---------------------------------------------------------------------------- short timeouts

// One edge worker (so the slow and the normal client share its event loop), a 1 s head
// timeout and a 2 s wake timeout.
class EdgeShortTimeoutsTest : public EdgeAppTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.edge_lines =
        "  workers: 1\n"
        "  timeouts:\n"
        "    header_read: 1s\n";
    c.extra =
        "wake:\n"
        "  timeout: 2s\n";
    return c;
  }
};

TEST_F(EdgeShortTimeoutsTest, PortThatNeverOpensGets504PortNotOpen) {
  // Port 3999 is declared but nothing listens on it in the container.
  std::string id = create_serving("port-never-opens", R"("ports":[3000,3999])");
  ASSERT_FALSE(id.empty());

  auto t0 = Clock::now();
  auto api = request("GET", id, "/", "", {"Accept: application/json"}, 3999, 30s);
  long long waited_ms = ms_since(t0);
  ASSERT_TRUE(api) << "no answer for the closed port";
  EXPECT_EQ(api->status, 504) << api->body;
  EXPECT_NE(api->headers["content-type"].find("application/json"), std::string::npos);
  EXPECT_NE(api->body.find(R"("code":"port_not_open")"), std::string::npos) << api->body;
  EXPECT_NE(api->body.find(R"("retryable":true)"), std::string::npos) << api->body;
  EXPECT_NE(api->body.find(R"("port":3999)"), std::string::npos) << api->body;
  EXPECT_EQ(api->headers["retry-after"], "5");
  EXPECT_EQ(api->headers["x-sandbox-error"], "port_not_open");
  // Held for wake.timeout, not answered at once nor much later.
  EXPECT_GE(waited_ms, 1500);
  EXPECT_LT(waited_ms, 15000);

  auto page =
      request("GET", id, "/", "",
              {"Accept: text/html,application/xhtml+xml", "Sec-Fetch-Mode: navigate"}, 3999, 30s);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 504);
  EXPECT_NE(page->headers["content-type"].find("text/html"), std::string::npos);
  EXPECT_EQ(page->headers["retry-after"], "5");
  EXPECT_NE(page->body.find("Still starting"), std::string::npos) << page->body;
  EXPECT_EQ(page->body.find(id), std::string::npos) << "an error page never shows the id";

  // The sandbox and its open port are unaffected.
  auto ok = request("GET", id, "/hostname");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(EdgeShortTimeoutsTest, MalformedRequestsAreRefusedAndTheConnectionClosed) {
  std::string id = create_serving("malformed");
  ASSERT_FALSE(id.empty());
  std::string host = preview_host(id, 3000);
  struct Case {
    std::string name;
    std::string bytes;
    int status;
  };
  std::vector<Case> cases = {
      {"host with a character outside the allowed set",
       "GET / HTTP/1.1\r\nHost: s_bad.preview.localhost\r\n\r\n", 400},
      {"two Host fields", "GET / HTTP/1.1\r\nHost: " + host + "\r\nHost: " + host + "\r\n\r\n",
       400},
      {"host port 0", "GET / HTTP/1.1\r\nHost: " + host + ":0\r\n\r\n", 400},
      {"head over 64 KiB",
       "GET / HTTP/1.1\r\nHost: " + host + "\r\nX-Big: " + std::string(70 * 1024, 'a') + "\r\n\r\n",
       431},
      {"chunk size that is not hex",
       "POST /echo HTTP/1.1\r\nHost: " + host +
           "\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
       400},
      {"Content-Length and Transfer-Encoding (smuggling)",
       "POST /echo HTTP/1.1\r\nHost: " + host +
           "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
       400},
      {"two equal Content-Length fields",
       "POST /echo HTTP/1.1\r\nHost: " + host +
           "\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
       400},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawConnection conn(edge_port());
    conn.send(c.bytes);
    auto res = conn.read_response(false, 10s);
    ASSERT_TRUE(res) << "no answer; received: " << conn.received();
    EXPECT_EQ(res->status, c.status) << res->body;
    EXPECT_EQ(lower(res->headers["connection"]), "close");
    EXPECT_TRUE(conn.wait_closed(5s)) << "the connection stayed open";
  }
  // The edge still serves normal requests.
  auto ok = request("GET", id, "/hostname");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(EdgeShortTimeoutsTest, StalledHeadIsCutAtHeaderReadWhileOthersAreServed) {
  std::string id = create_serving("slow-head");
  ASSERT_FALSE(id.empty());
  std::string host = preview_host(id, 3000);

  RawConnection slow(edge_port());
  auto t0 = Clock::now();
  slow.send("GET /hostname HTTP/1.1\r\nHost: " + host + "\r\nX-Half: ");  // and nothing more

  // Meanwhile a normal client on the same (single) worker gets its answer.
  auto normal = request("GET", id, "/hostname", "", {}, 3000, 10s);
  long long normal_ms = ms_since(t0);
  ASSERT_TRUE(normal);
  EXPECT_EQ(normal->status, 200);
  EXPECT_EQ(normal->body, hostname_of(id) + "\n");

  auto cut = slow.read_response(false, 10s);
  long long cut_ms = ms_since(t0);
  ASSERT_TRUE(cut) << "the stalled client got no answer: " << slow.received();
  EXPECT_EQ(cut->status, 408);
  EXPECT_TRUE(slow.wait_closed(5s));
  EXPECT_LT(normal_ms, cut_ms) << "the normal client waited for the stalled one";
  EXPECT_GE(cut_ms, 900) << "cut before header_read (1s)";
  EXPECT_LT(cut_ms, 5000) << "cut long after header_read (1s)";
}

// ---------------------------------------------------------------------------- idle

constexpr auto kIdleThreshold = 3s;

class EdgeIdleTest : public EdgeAppTest {
 protected:
  // idle.websockets_count_as_activity keeps its default (true).
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
};

TEST_F(EdgeIdleTest, OpenWebSocketKeepsItsSandboxAwakeWhileAnUnusedOneIsStopped) {
  std::string busy = create_serving("idle-websocket");
  std::string unused = create_serving("idle-unused");
  ASSERT_FALSE(busy.empty() || unused.empty());
  ASSERT_TRUE(wait_init_ready(unused));  // so its stop is quick

  std::optional<WebSocketClient> ws;
  ws.emplace(edge_port());
  ASSERT_TRUE(ws->handshake(preview_host(busy, 3000))) << ws->problem();
  auto opened = Clock::now();
  ASSERT_TRUE(ws->send_text("first"));
  auto echo = ws->read_frame();
  ASSERT_TRUE(echo && echo->payload == "first");

  // The unused sandbox goes; the one with the silent but open WebSocket stays.
  ASSERT_TRUE(wait_status(unused, "stopped", 30s));
  EXPECT_TRUE(wait_until([&] { return idle_reaper_stops(sd()) >= 1; }, 10s))
      << "stopped, but not by the idle reaper";
  EXPECT_EQ(sd().get("/v1/sandboxes/" + busy).str("status"), "running");
  // Well past the threshold since the last byte on the tunnel: still running at every poll.
  auto hold = 2 * kIdleThreshold + 1s;
  std::string seen;
  bool left = wait_until(
      [&] {
        seen = sd().get("/v1/sandboxes/" + busy).str("status");
        return seen != "running" || Clock::now() - opened >= hold;
      },
      30s);
  ASSERT_TRUE(left);
  EXPECT_EQ(seen, "running") << "the reaper stopped a sandbox with an open WebSocket";

  // The tunnel still works. After the close handshake the client closes its socket, as
  // RFC 6455 §7.1.1 has it (the edge keeps a tunnel until the client side closes too), and
  // then the reaper may have the sandbox.
  ASSERT_TRUE(ws->send_text("still here"));
  echo = ws->read_frame();
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->payload, "still here");
  ASSERT_TRUE(ws->send(8, std::string("\x03\xe8", 2)));
  EXPECT_TRUE(ws->wait_closed());
  ws.reset();
  EXPECT_TRUE(wait_status(busy, "stopped", 30s));
  EXPECT_TRUE(wait_until([&] { return idle_reaper_stops(sd()) >= 2; }, 10s));
}

}  // namespace
}  // namespace sandboxd::testing
