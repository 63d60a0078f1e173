// The edge's I/O layer over real sockets on 127.0.0.1: a test upstream behind it, a test
// client in front, and a Waker double that does what control does (publish `running`,
// then call `done`). No sleeps: every wait is on a condition with a deadline.
#include "edge/edge_server.h"

#include "test_peers.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <functional>
#include <future>

namespace sandboxd::edge {
namespace {

using testing::Client;
using testing::Response;
using testing::TestUpstream;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kSuffix = "preview.test";

// Polls `ready` until it holds or `limit` passes.
bool eventually(const std::function<bool()>& ready, std::chrono::milliseconds limit = 10s) {
  const auto until = Clock::now() + limit;
  while (!ready()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// A free TCP port on 127.0.0.1 with nothing listening on it (connects are refused).
std::uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The Waker contract as control fulfils it: after the start takes `delay` (or when the test
// says so, in manual mode), publish the route as running with an address, then call
// `done` with the outcome. Every `done` is called exactly once, at the latest on
// destruction (with `gone`).
class FlippingWaker final : public Waker {
 public:
  using Flip = std::function<void(const Ulid&)>;

  explicit FlippingWaker(Flip flip) : flip_(std::move(flip)), thread_([this] { run(); }) {}
  ~FlippingWaker() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    thread_.join();
  }

  void wake(const Ulid& id, std::function<void(WakeOutcome)> done) override {
    std::lock_guard lock(mu_);
    ++calls_;
    jobs_.push_back(Job{id, std::move(done), Clock::now() + delay_});
    cv_.notify_all();
  }

  void set_delay(std::chrono::milliseconds d) {
    std::lock_guard lock(mu_);
    delay_ = d;
  }
  void set_manual() {
    std::lock_guard lock(mu_);
    manual_ = true;
  }
  void set_outcome(WakeOutcome o) {
    std::lock_guard lock(mu_);
    outcome_ = std::move(o);
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  struct Job {
    Ulid id;
    std::function<void(WakeOutcome)> done;
    Clock::time_point due;
  };

  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      if (stop_) break;
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      const bool go = cv_.wait_until(lock, manual_ ? Clock::time_point::max() : job.due,
                                     [&] { return stop_ || (manual_ && released_); });
      if (stop_ && manual_ && !released_) {
        jobs_.push_front(std::move(job));
        break;
      }
      (void)go;
      WakeOutcome outcome = outcome_;
      lock.unlock();
      if (outcome.kind == WakeOutcome::Kind::ok) flip_(job.id);
      job.done(outcome);
      lock.lock();
    }
    for (auto& job : jobs_) job.done(WakeOutcome::gone());
  }

  Flip flip_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::chrono::milliseconds delay_{50};
  bool manual_ = false;
  bool released_ = false;
  bool stop_ = false;
  int calls_ = 0;
  WakeOutcome outcome_;
  std::thread thread_;
};

class EdgeServerTest : public ::testing::Test {
 protected:
  EdgeServerTest() : waker_([this](const Ulid& id) { publish(id, RouteState::running); }) {}

  void SetUp() override {
    upstream_ = std::make_unique<TestUpstream>();
    app_port_ = upstream_->port();
    id_ = new_ulid();
  }

  void TearDown() override {
    server_.reset();
  }

  EdgeOptions options() {
    EdgeOptions o;
    o.listen_host = "127.0.0.1";
    o.listen_port = 0;
    o.workers = 2;
    o.preview_suffix = std::string(kSuffix);
    o.wake_timeout = 10s;
    o.probe_interval = 10ms;
    o.access_log = [this](std::string_view line) {
      std::lock_guard lock(log_mu_);
      log_.emplace_back(line);
    };
    return o;
  }

  void start(EdgeOptions o) {
    auto server = EdgeServer::start(std::move(o), routes_, waker_, activity_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
  }
  void start() { start(options()); }

  std::uint16_t port() const { return server_->port(); }

  void publish(const Ulid& id, RouteState state, std::string reason = {}) {
    Route r;
    r.id = id;
    r.state = state;
    if (state == RouteState::running) r.address = *IpAddress::parse("127.0.0.1");
    r.ports = {app_port_};
    r.error_reason = std::move(reason);
    std::lock_guard lock(routes_mu_);
    table_[id.str()] = r;
    std::vector<Route> all;
    for (auto& [k, v] : table_) all.push_back(v);
    routes_.publish(RouteTable::build(std::move(all)).value());
  }
  void publish(RouteState state, std::string reason = {}) { publish(id_, state, std::move(reason)); }

  std::string host(const Ulid& id) const {
    std::string text = id.str();
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return "s-" + text + "-" + std::to_string(app_port_) + "." + std::string(kSuffix);
  }
  std::string host() const { return host(id_); }

  std::string get(const std::string& target, const std::string& extra = {}) const {
    return "GET " + target + " HTTP/1.1\r\nHost: " + host() + "\r\n" + extra + "\r\n";
  }
  std::string upgrade(const std::string& target) const {
    return get(target,
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGVzdA==\r\n"
               "Sec-WebSocket-Version: 13\r\n");
  }

  std::vector<std::string> log_lines() {
    std::lock_guard lock(log_mu_);
    return log_;
  }

  RouteTablePublisher routes_;
  ActivityTable activity_;
  FlippingWaker waker_;
  std::unique_ptr<TestUpstream> upstream_;
  std::uint16_t app_port_ = 0;
  Ulid id_;
  std::mutex routes_mu_;
  std::map<std::string, Route> table_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
  std::unique_ptr<EdgeServer> server_;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- proxying ----

TEST_F(EdgeServerTest, ForwardsGetWithForwardingFieldsHostKeptAndHopByHopRemoved) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/echo?x=1",
                         "Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: 5\r\n"
                         "TE: trailers\r\nX-Forwarded-For: 6.6.6.6\r\nX-Keep: yes\r\n")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const std::string& seen = r->body;
  EXPECT_TRUE(seen.starts_with("GET /echo?x=1 HTTP/1.1\r\nHost: " + host() + "\r\n")) << seen;
  EXPECT_TRUE(contains(seen, "X-Keep: yes\r\n"));
  EXPECT_TRUE(contains(seen, "X-Forwarded-For: 127.0.0.1\r\n")) << seen;
  EXPECT_TRUE(contains(seen, "X-Forwarded-Proto: http\r\n"));
  EXPECT_TRUE(contains(seen, "X-Forwarded-Host: " + host() + "\r\n"));
  EXPECT_TRUE(contains(seen, "X-Forwarded-Port: " + std::to_string(port()) + "\r\n"));
  EXPECT_TRUE(contains(seen, "X-Request-Id: "));
  EXPECT_FALSE(contains(seen, "X-Drop"));
  EXPECT_FALSE(contains(seen, "Keep-Alive"));
  EXPECT_FALSE(contains(seen, "TE:"));
  EXPECT_FALSE(contains(seen, "6.6.6.6"));
  // The upstream's own hop-by-hop fields do not reach the client.
  EXPECT_EQ(r->header("x-upstream"), "1");
  EXPECT_EQ(r->header("x-secret"), "");
  EXPECT_EQ(r->header("keep-alive"), "");
  EXPECT_EQ(r->header("connection"), "");
}

TEST_F(EdgeServerTest, ForwardsPostBodiesWithContentLengthAndChunked) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: " + host() +
                     "\r\nContent-Length: 11\r\n\r\nhello world"));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(contains(r->body, "Content-Length: 11\r\n"));
  EXPECT_TRUE(r->body.ends_with("--body--\nhello world")) << r->body;

  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: " + host() +
                     "\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=x\r\nhello\r\n6\r\n world\r\n"
                     "0\r\nX-Trailer: 1\r\n\r\n"));
  r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(contains(r->body, "Transfer-Encoding: chunked\r\n"));
  EXPECT_TRUE(r->body.ends_with("--body--\nhello world")) << r->body;
  EXPECT_EQ(upstream_->accepts(), 1);
}

TEST_F(EdgeServerTest, ExpectContinueRelaysTheUpstreams100) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: " + host() +
                     "\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto interim = c.read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  std::string body;
  for (std::uint64_t i = 0; i < 5; ++i) body.push_back(testing::pattern_byte(i));
  ASSERT_TRUE(c.send(body));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.starts_with("bytes=5 ")) << r->body;
}

TEST_F(EdgeServerTest, KeepAliveReusesUpstreamConnections) {
  publish(RouteState::running);
  EdgeOptions o = options();
  o.workers = 1;
  start(o);
  {
    Client c(port());
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(c.send(get("/echo")));
      auto r = c.read();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
    }
  }
  // New client connections on the same worker find the pooled upstream connection too.
  for (int i = 0; i < 3; ++i) {
    Client c(port());
    ASSERT_TRUE(c.send(get("/echo", "Connection: close\r\n")));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.wait_closed());
  }
  EXPECT_EQ(upstream_->accepts(), 1);
  EXPECT_EQ(server_->stats().upstream_reuses, 12u);
}

TEST_F(EdgeServerTest, PipelinedRequestsAreAnsweredInOrder) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/echo?n=1") + get("/chunked") + get("/echo?n=3")));
  auto a = c.read();
  auto b = c.read();
  auto d = c.read();
  ASSERT_TRUE(a && b && d);
  EXPECT_TRUE(a->body.starts_with("GET /echo?n=1 "));
  EXPECT_EQ(b->body, "part1part2part3");
  EXPECT_TRUE(b->chunked);
  EXPECT_EQ(b->header("trailer"), "");
  EXPECT_TRUE(d->body.starts_with("GET /echo?n=3 "));
}

TEST_F(EdgeServerTest, HeadAnd204And304CarryNoBody) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send("HEAD /download?n=10 HTTP/1.1\r\nHost: " + host() + "\r\n\r\n"));
  auto h = c.read(true);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->header("content-length"), "10");
  for (const char* status : {"204", "304"}) {
    ASSERT_TRUE(c.send(get(std::string("/status/") + status)));
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, std::stoi(status));
    EXPECT_EQ(r->header("transfer-encoding"), "");
  }
  ASSERT_TRUE(c.send(get("/echo")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(EdgeServerTest, Http10ClientGetsARawBodyAndAClose) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send("GET /chunked HTTP/1.0\r\nHost: " + host() + "\r\n\r\n"));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("transfer-encoding"), "");
  EXPECT_EQ(r->body, "part1part2part3");
}

TEST_F(EdgeServerTest, StreamsLargeUploadsAndDownloadsWithoutBuffering) {
  publish(RouteState::running);
  EdgeOptions o = options();
  o.workers = 1;
  start(o);
  constexpr std::uint64_t kSize = 32ull * 1024 * 1024;
  // Warm up: the buffers that live for the whole run exist before measuring.
  {
    Client c(port());
    ASSERT_TRUE(c.send(get("/download?n=1048576")));
    ASSERT_TRUE(c.read(false, false));
  }
  testing::reset_peak_rss();
  const std::uint64_t before = testing::peak_rss_bytes();

  Client c(port());
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: " + host() +
                     "\r\nContent-Length: " + std::to_string(kSize) + "\r\n\r\n"));
  std::string block(64 * 1024, '\0');
  std::uint64_t sum = testing::kFnvBasis;
  for (std::uint64_t off = 0; off < kSize; off += block.size()) {
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = testing::pattern_byte(off + i);
    sum = testing::fnv1a(sum, block.data(), block.size());
    ASSERT_TRUE(c.send(block));
  }
  auto up = c.read();
  ASSERT_TRUE(up);
  EXPECT_EQ(up->body, "bytes=" + std::to_string(kSize) + " sum=" + std::to_string(sum) +
                          " pattern=1");

  ASSERT_TRUE(c.send(get("/download?n=" + std::to_string(kSize))));
  auto down = c.read(false, false, 60s);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, 200);
  EXPECT_EQ(down->body_bytes, kSize);
  EXPECT_EQ(down->body_sum, sum);

  // Holding either body whole would raise the peak by 32 MiB.
  const std::uint64_t after = testing::peak_rss_bytes();
  const std::uint64_t growth = after > before ? after - before : 0;
  EXPECT_LT(growth, 8ull * 1024 * 1024) << "peak RSS grew by " << growth << " bytes";
  std::printf("peak RSS growth over 2 x 32 MiB: %llu KiB\n",
              static_cast<unsigned long long>(growth / 1024));
}

TEST_F(EdgeServerTest, ServerSentEventsArriveBeforeTheResponseEnds) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/sse")));
  ASSERT_TRUE(c.read_until("data: first\n\n", 5s));
  EXPECT_FALSE(contains(c.received(), "second"));
  upstream_->release();
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("content-type"), "text/event-stream");
  EXPECT_EQ(r->body, "data: first\n\ndata: second\n\n");

  // A close-delimited stream reaches an HTTP/1.1 client chunked, as it arrives.
  Client d(port());
  ASSERT_TRUE(d.send(get("/sse-close")));
  ASSERT_TRUE(d.read_until("data: first\n\n", 5s));
  auto s = d.read();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->chunked);
  EXPECT_EQ(s->body, "data: first\n\ndata: second\n\n");
  EXPECT_EQ(s->header("connection"), "");  // the client connection stays open
}

TEST_F(EdgeServerTest, UpgradeTunnelsBytesBothWays) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(upgrade("/ws")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 101);
  EXPECT_EQ(r->header("upgrade"), "websocket");
  EXPECT_EQ(r->header("connection"), "Upgrade");
  ASSERT_TRUE(c.read_until("hello\n"));
  ASSERT_TRUE(c.send("ping-123"));
  ASSERT_TRUE(c.read_until("ping-123"));
  EXPECT_TRUE(eventually([&] {
    auto a = activity_.get(id_);
    return a && a->open_tunnels == 1;
  }));
  c.shutdown_write();
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(eventually([&] { return activity_.get(id_)->open_tunnels == 0; }));
}

// ---- edge answers ----

TEST_F(EdgeServerTest, UnknownSandboxIsJsonForApisAndHtmlForBrowsers) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/", "Accept: */*\r\n")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_EQ(r->header("x-sandbox-error"), "no_such_sandbox");
  EXPECT_EQ(r->header("cache-control"), "no-store");
  EXPECT_EQ(r->body, "{\"error\":{\"code\":\"no_such_sandbox\",\"message\":\"no such sandbox\","
                     "\"retryable\":false,\"sandbox_id\":\"" + id_.str() +
                         "\",\"port\":" + std::to_string(app_port_) + "}}\n");

  ASSERT_TRUE(c.send(get("/", "Accept: text/html,application/xhtml+xml\r\n")));
  r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->header("content-type"), "text/html; charset=utf-8");
  EXPECT_TRUE(contains(r->body, "App not found"));
  EXPECT_FALSE(contains(r->body, id_.str()));

  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: s-abc-3000.preview.test\r\n\r\n"));
  r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->header("x-sandbox-error"), "no_such_sandbox");
}

TEST_F(EdgeServerTest, NonPreviewHostServesHealthzOnly) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  ASSERT_TRUE(c.send("HEAD /healthz HTTP/1.1\r\nHost: preview.test\r\n\r\n"));
  r = c.read(true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(c.send("GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(contains(r->body, "\"code\":\"unknown_host\"")) << r->body;
}

TEST_F(EdgeServerTest, SandboxInErrorIs502WithTheStoredReason) {
  publish(RouteState::error, "image pull failed");
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_TRUE(contains(r->body, "\"code\":\"sandbox_error\",\"message\":\"image pull failed\""));
}

TEST_F(EdgeServerTest, BadUpstreamResponseIs502) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/bad")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(r->header("x-sandbox-error"), "upstream_protocol_error");
  EXPECT_EQ(r->header("retry-after"), "1");
}

TEST_F(EdgeServerTest, BadRequestIsRejectedAndClosed) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body, "400 Bad Request\n");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(EdgeServerTest, HeaderReadTimeoutGives408OrASilentClose) {
  EdgeOptions o = options();
  o.header_read = 300ms;
  start(o);
  Client partial(port());
  ASSERT_TRUE(partial.send("GET / HTTP/1.1\r\nHost: x"));
  auto r = partial.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(partial.wait_closed());

  Client silent(port());
  EXPECT_TRUE(silent.wait_closed(5s));
  EXPECT_EQ(silent.received(), "");
}

// ---- hold and wake ----

TEST_F(EdgeServerTest, HeldGetIsForwardedOnceTheWakerStartsTheSandbox) {
  publish(RouteState::stopped);
  waker_.set_delay(100ms);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/echo")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->header("x-sandbox-wake").starts_with("woke;held_ms=")) << r->header("x-sandbox-wake");
  EXPECT_EQ(waker_.calls(), 1);
}

TEST_F(EdgeServerTest, HeldPostBodyAndUpgradeAreForwardedAfterTheWake) {
  publish(RouteState::stopped);
  waker_.set_manual();
  start();
  constexpr std::uint64_t kSize = 100'000;  // more than the 16 KiB read while held
  std::string body;
  for (std::uint64_t i = 0; i < kSize; ++i) body.push_back(testing::pattern_byte(i));
  Client post(port());
  ASSERT_TRUE(post.send("POST /upload HTTP/1.1\r\nHost: " + host() +
                        "\r\nContent-Length: " + std::to_string(kSize) + "\r\n\r\n" + body));
  Client ws(port());
  ASSERT_TRUE(ws.send(upgrade("/ws")));
  ASSERT_TRUE(eventually([&] { return server_->stats().held == 2; }));
  EXPECT_EQ(activity_.get(id_)->held, 2);
  waker_.release();

  auto r = post.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.starts_with("bytes=100000 ")) << r->body;
  EXPECT_TRUE(r->body.ends_with("pattern=1"));
  auto u = ws.read();
  ASSERT_TRUE(u);
  EXPECT_EQ(u->status, 101);
  EXPECT_TRUE(u->header("x-sandbox-wake").starts_with("woke;"));
  ASSERT_TRUE(ws.read_until("hello\n"));
  ASSERT_TRUE(ws.send("after-wake"));
  ASSERT_TRUE(ws.read_until("after-wake"));
  EXPECT_EQ(waker_.calls(), 1);
}

TEST_F(EdgeServerTest, TwentyConcurrentHeldRequestsMakeOneWakeCall) {
  publish(RouteState::stopped);
  waker_.set_manual();
  start();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::make_unique<Client>(port()));
    ASSERT_TRUE(clients.back()->send(get("/echo?i=" + std::to_string(i))));
  }
  ASSERT_TRUE(eventually([&] { return server_->stats().held == 20; }));
  waker_.release();
  for (int i = 0; i < 20; ++i) {
    auto r = clients[static_cast<std::size_t>(i)]->read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->body.starts_with("GET /echo?i=" + std::to_string(i) + " "));
  }
  EXPECT_EQ(waker_.calls(), 1);
  EXPECT_EQ(server_->stats().wake_calls, 1u);
  EXPECT_EQ(server_->stats().held, 0u);
}

TEST_F(EdgeServerTest, WakeTimeoutIs504WithRetryAfter) {
  publish(RouteState::stopped);
  waker_.set_manual();  // never released: the start never finishes
  EdgeOptions o = options();
  o.wake_timeout = 300ms;
  start(o);
  Client c(port());
  ASSERT_TRUE(c.send(get("/", "Accept: application/json\r\n")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  EXPECT_EQ(r->header("retry-after"), "5");
  EXPECT_TRUE(r->header("x-sandbox-wake").starts_with("timeout;held_ms="));
  EXPECT_TRUE(contains(r->body, "{\"error\":{\"code\":\"wake_timeout\",\"message\":\"the sandbox "
                                "did not start within 1s\",\"retryable\":true"))
      << r->body;
  EXPECT_EQ(server_->stats().held, 0u);
}

TEST_F(EdgeServerTest, WakeRefusedAndFailedOutcomesReachEveryHeldRequest) {
  publish(RouteState::stopped);
  waker_.set_outcome(WakeOutcome::refused(7));
  start();
  Client a(port());
  ASSERT_TRUE(a.send(get("/")));
  auto r = a.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("retry-after"), "7");
  EXPECT_EQ(r->header("x-sandbox-error"), "wake_refused");

  waker_.set_outcome(WakeOutcome::failed("no image"));
  ASSERT_TRUE(a.send(get("/", "Accept: text/html\r\n")));
  r = a.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_TRUE(contains(r->body, "This app could not start"));
  EXPECT_TRUE(r->header("x-sandbox-wake").starts_with("failed;"));
}

TEST_F(EdgeServerTest, HeldCapAnswers503TooManyHeld) {
  publish(RouteState::stopped);
  waker_.set_manual();
  EdgeOptions o = options();
  o.max_held_requests_per_sandbox = 2;
  start(o);
  Client a(port());
  Client b(port());
  ASSERT_TRUE(a.send(get("/echo")));
  ASSERT_TRUE(b.send(get("/echo")));
  ASSERT_TRUE(eventually([&] { return server_->stats().held == 2; }));
  Client c(port());
  ASSERT_TRUE(c.send(get("/echo")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("retry-after"), "2");
  EXPECT_EQ(r->header("x-sandbox-wake"), "refused;held_ms=0");
  EXPECT_TRUE(contains(r->body, "\"code\":\"too_many_held\""));
  waker_.release();
  EXPECT_EQ(a.read()->status, 200);
  EXPECT_EQ(b.read()->status, 200);
}

TEST_F(EdgeServerTest, RefusedConnectIsAPortWaitWithoutAWake) {
  app_port_ = closed_port();
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/echo")));
  ASSERT_TRUE(eventually([&] { return server_->stats().held == 1; }));
  TestUpstream late(app_port_);  // the dev server comes up
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->header("x-sandbox-wake").starts_with("port_wait;held_ms="));
  EXPECT_EQ(waker_.calls(), 0);
}

TEST_F(EdgeServerTest, PortThatNeverOpensIs504PortNotOpen) {
  app_port_ = closed_port();
  publish(RouteState::running);
  EdgeOptions o = options();
  o.wake_timeout = 300ms;
  start(o);
  Client c(port());
  ASSERT_TRUE(c.send(get("/")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  EXPECT_EQ(r->header("x-sandbox-error"), "port_not_open");
  EXPECT_EQ(waker_.calls(), 0);
}

TEST_F(EdgeServerTest, ShutdownAnswersHeldRequestsWith503) {
  publish(RouteState::stopped);
  waker_.set_manual();
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/")));
  ASSERT_TRUE(eventually([&] { return server_->stats().held == 1; }));
  server_->stop(100ms);
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("x-sandbox-error"), "shutting_down");
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(EdgeServerTest, StopClosesIdleConnectionsAndLetsStreamsFinish) {
  publish(RouteState::running);
  start();
  Client idle(port());
  ASSERT_TRUE(idle.send(get("/echo")));
  ASSERT_TRUE(idle.read());
  Client stream(port());
  ASSERT_TRUE(stream.send(get("/sse")));
  ASSERT_TRUE(stream.read_until("data: first\n\n", 5s));

  const auto began = Clock::now();
  std::thread stopper([&] { server_->stop(20s); });
  EXPECT_TRUE(idle.wait_closed(5s));
  upstream_->release();
  auto r = stream.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "data: first\n\ndata: second\n\n");
  EXPECT_TRUE(stream.wait_closed());  // its head went out before the stop: closed after
  stopper.join();
  EXPECT_LT(Clock::now() - began, 10s);  // it ended with the stream, not at the grace
}

// ---- activity, limits, log ----

TEST_F(EdgeServerTest, ActivityCountersFollowConnectionsAndBytes) {
  publish(RouteState::running);
  start();
  {
    Client c(port());
    ASSERT_TRUE(c.send(get("/echo")));
    ASSERT_TRUE(c.read());
    // The worker counts the bytes once its write has completed, just after the client
    // can read them.
    ASSERT_TRUE(eventually([&] {
      auto a = activity_.get(id_);
      return a && a->in_flight == 0 && a->bytes_out > 0;
    }));
    auto a = activity_.get(id_);
    EXPECT_EQ(a->open_connections, 1);
    EXPECT_GT(a->last_activity_ms, 0);
    EXPECT_TRUE(a->busy(false));
  }
  EXPECT_TRUE(eventually([&] { return activity_.get(id_)->open_connections == 0; }));
  EXPECT_EQ(activity_.snapshot().size(), 1u);
}

TEST_F(EdgeServerTest, ConnectionsPerClientAreCapped) {
  EdgeOptions o = options();
  o.max_connections_per_client = 2;
  start(o);
  Client a(port());
  Client b(port());
  ASSERT_TRUE(eventually([&] { return server_->stats().open_connections == 2; }));
  Client c(port());
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->header("retry-after"), "1");
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(EdgeServerTest, ConnectionsOverTheProcessLimitAreClosedAtOnce) {
  EdgeOptions o = options();
  o.max_connections = 1;
  start(o);
  Client a(port());
  ASSERT_TRUE(eventually([&] { return server_->stats().open_connections == 1; }));
  Client b(port());
  EXPECT_TRUE(b.wait_closed());
  EXPECT_EQ(b.received(), "");
  ASSERT_TRUE(a.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  auto r = a.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(EdgeServerTest, BusySandboxIs503) {
  publish(RouteState::running);
  EdgeOptions o = options();
  o.max_connections_per_sandbox = 1;
  start(o);
  Client ws(port());
  ASSERT_TRUE(ws.send(upgrade("/ws")));
  auto u = ws.read();
  ASSERT_TRUE(u);
  ASSERT_EQ(u->status, 101);
  Client c(port());
  ASSERT_TRUE(c.send(get("/echo")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("x-sandbox-error"), "sandbox_busy");
  EXPECT_EQ(r->header("retry-after"), "1");
}

TEST_F(EdgeServerTest, IdleTunnelIsClosed) {
  publish(RouteState::running);
  EdgeOptions o = options();
  o.websocket_idle = 300ms;
  start(o);
  Client c(port());
  ASSERT_TRUE(c.send(upgrade("/ws")));
  auto r = c.read();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 101);
  EXPECT_TRUE(c.wait_closed(5s));
  ASSERT_TRUE(eventually([&] { return log_lines().size() == 1; }));
  EXPECT_TRUE(contains(log_lines()[0], "\"route\":\"tunnel\"")) << log_lines()[0];
  EXPECT_TRUE(contains(log_lines()[0], "\"status\":101")) << log_lines()[0];
}

// Waits for a callback that may run on an edge worker thread.
bool called_within(const std::function<void(std::function<void()>)>& call,
                   std::chrono::milliseconds limit) {
  auto promise = std::make_shared<std::promise<void>>();
  auto future = promise->get_future();
  call([promise] { promise->set_value(); });
  return future.wait_for(limit) == std::future_status::ready;
}

TEST_F(EdgeServerTest, SandboxStopSendsWebSocketClose1001AtTheNextFrameBoundary) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(upgrade("/ws-frames")));
  ASSERT_TRUE(c.read_until(std::string("\x81\x0a") + "0123"));
  // The stop's request reaches the worker first; only then may the frame's rest come.
  server_->end_tunnels(id_, [] {});
  ASSERT_TRUE(called_within([&](std::function<void()> done) { server_->barrier(std::move(done)); }, 5s));
  upstream_->release();
  const std::string close = std::string("\x88\x12\x03\xe9") + "sandbox stopping";
  ASSERT_TRUE(c.read_until(close, 5s)) << c.received();
  const std::string& got = c.received();
  const std::size_t frames = got.find("\x82\x03one");
  ASSERT_NE(frames, std::string::npos);
  // The cut frame was finished, the close came right after it, and "three" never came.
  EXPECT_EQ(got.substr(frames), std::string("\x82\x03one\x81\x0a") + "0123456789" + close);
  // The client answers with its own (masked) close frame; then TCP closes.
  ASSERT_TRUE(c.send(std::string("\x88\x82\x01\x02\x03\x04") + "\x02\xeb"));
  EXPECT_TRUE(c.wait_closed(3s));
  EXPECT_TRUE(eventually([&] { return activity_.get(id_)->open_tunnels == 0; }));
}

TEST_F(EdgeServerTest, EndTunnelsAnswersOnceEveryCloseFrameIsOut) {
  publish(RouteState::running);
  start();
  Client a(port());
  Client b(port());
  for (Client* c : {&a, &b}) {
    ASSERT_TRUE(c->send(upgrade("/ws-frames")));
    ASSERT_TRUE(c->read_until(std::string("\x82\x03one")));
  }
  upstream_->release();  // both tunnels reach a boundary
  for (Client* c : {&a, &b}) ASSERT_TRUE(c->read_until("three"));
  EXPECT_TRUE(called_within(
      [&](std::function<void()> done) { server_->end_tunnels(id_, std::move(done)); }, 5s));
  for (Client* c : {&a, &b}) {
    EXPECT_TRUE(c->read_until(std::string("\x03\xe9") + "sandbox stopping", 1s));
    EXPECT_TRUE(c->wait_closed(3s));  // no close frame from the client: at most 1 s more
  }
  // Another sandbox's tunnels are not touched, and a call with none answers at once.
  EXPECT_TRUE(called_within(
      [&](std::function<void()> done) { server_->end_tunnels(Ulid{}, std::move(done)); }, 5s));
}

TEST_F(EdgeServerTest, IdleWebSocketGetsClose1001IdleTimeout) {
  publish(RouteState::running);
  EdgeOptions o = options();
  o.websocket_idle = 300ms;
  start(o);
  upstream_->release();
  Client c(port());
  ASSERT_TRUE(c.send(upgrade("/ws-frames")));
  ASSERT_TRUE(c.read_until("three"));
  EXPECT_TRUE(c.read_until(std::string("\x88\x0e\x03\xe9") + "idle timeout", 5s));
  EXPECT_TRUE(c.wait_closed(5s));
}

TEST_F(EdgeServerTest, StalledRequestBodyGets408) {
  publish(RouteState::running);
  EdgeOptions o = options();
  o.body_idle = 300ms;
  start(o);
  Client c(port());
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: " + host() +
                     "\r\nContent-Length: 10\r\n\r\nabc"));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(EdgeServerTest, WritesOneAccessLogLinePerRequest) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/echo?sandbox_token=secret&a=1", "User-Agent: test-agent\r\n")));
  ASSERT_TRUE(c.read());
  ASSERT_TRUE(eventually([&] { return log_lines().size() == 1; }));
  const std::string line = log_lines()[0];
  EXPECT_TRUE(contains(line, "\"status\":200")) << line;
  EXPECT_TRUE(contains(line, "\"sandbox_id\":\"" + id_.str() + "\"")) << line;
  EXPECT_TRUE(contains(line, "\"route\":\"proxy\"")) << line;
  EXPECT_TRUE(contains(line, "\"target\":\"/echo?sandbox_token=REDACTED&a=1\"")) << line;
  EXPECT_TRUE(contains(line, "\"user_agent\":\"test-agent\"")) << line;
  EXPECT_FALSE(contains(line, "secret"));
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace sandboxd::edge
