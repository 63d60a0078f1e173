// The edge's I/O layer over real sockets on 127.0.0.1: a test upstream behind it, a test
// client in front, a Waker double that does what control does (publish `running`, then
// call `done`), and the access log written to a file in a temporary directory. No sleeps:
// every wait is on a condition with a deadline.
#include "edge/edge_server.h"

#include "test_peers.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <numeric>
#include <sstream>

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
    char dir[] = "/tmp/edge-server-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    log_path_ = dir_ + "/access.log";
    AccessLogOptions log;
    log.flush_interval = 20ms;  // the tests read lines soon after the response
    auto writer = AccessLogWriter::open(log_path_, log);
    ASSERT_TRUE(writer) << writer.error().message();
    writer_ = std::move(*writer);
  }

  void TearDown() override {
    server_.reset();
    writer_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  EdgeOptions options() {
    EdgeOptions o;
    o.listen_host = "127.0.0.1";
    o.listen_port = 0;
    o.workers = 2;
    o.preview_suffix = std::string(kSuffix);
    o.wake_timeout = 10s;
    o.probe_interval = 10ms;
    o.access_log = writer_;
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

  // The access log's lines so far.
  std::vector<std::string> log_lines() const { return read_lines(log_path_); }

  static std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  EdgeMetrics metrics() const { return server_->metrics(); }

  RouteTablePublisher routes_;
  ActivityTable activity_;
  FlippingWaker waker_;
  std::unique_ptr<TestUpstream> upstream_;
  std::uint16_t app_port_ = 0;
  Ulid id_;
  std::mutex routes_mu_;
  std::map<std::string, Route> table_;
  std::string dir_;
  std::string log_path_;
  std::shared_ptr<AccessLogWriter> writer_;
  std::unique_ptr<EdgeServer> server_;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- reading EdgeMetrics (SPEC §11) ----

template <class E>
constexpr std::size_t at(E e) {
  return static_cast<std::size_t>(e);
}

std::uint64_t errors(const EdgeMetrics& m, std::string_view code) {
  const auto it = std::find(kEdgeErrorCodes.begin(), kEdgeErrorCodes.end(), code);
  EXPECT_NE(it, kEdgeErrorCodes.end()) << code;
  if (it == kEdgeErrorCodes.end()) return 0;
  return m.errors[static_cast<std::size_t>(it - kEdgeErrorCodes.begin())];
}

std::uint64_t all_errors(const EdgeMetrics& m) {
  std::uint64_t n = 0;
  for (std::uint64_t e : m.errors) n += e;
  return n;
}

std::uint64_t requests(const EdgeMetrics& m, std::string_view cls, Source source) {
  const auto it = std::find(kClassNames.begin(), kClassNames.end(), cls);
  return m.requests[0][static_cast<std::size_t>(it - kClassNames.begin())][at(source)];
}

std::uint64_t all_requests(const EdgeMetrics& m) {
  std::uint64_t n = 0;
  for (const auto& by_class : m.requests) {
    for (const auto& by_source : by_class) {
      for (std::uint64_t r : by_source) n += r;
    }
  }
  return n;
}

std::uint64_t rejected(const EdgeMetrics& m, RejectReason r) { return m.rejected[at(r)]; }

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

// Local TCP connections in TIME_WAIT whose remote port is `port` (/proc/net/tcp, state 06).
int time_waits_towards(std::uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // the header
  int n = 0;
  char remote_port[8];
  std::snprintf(remote_port, sizeof remote_port, ":%04X", port);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (state == "06" && remote.ends_with(remote_port)) ++n;
  }
  return n;
}

TEST_F(EdgeServerTest, ConnectionsAboveThePoolSizeCloseWithoutTimeWait) {
  publish(RouteState::running);
  EdgeOptions o = options();
  o.max_idle_per_backend = 1;
  o.upstream_idle_timeout = 60s;  // the pooled one stays for the whole test
  o.workers = 1;                   // one pool
  start(o);
  // Eight requests in flight at once need eight upstream connections; one goes back to the
  // pool and the other seven are closed by the edge without leaving TIME_WAIT behind.
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<Client>(port()));
    ASSERT_TRUE(clients.back()->send(get("/sse")));  // held open until released
  }
  ASSERT_TRUE(eventually([&] { return upstream_->accepts() == 8; }));
  upstream_->release();
  for (auto& c : clients) {
    auto r = c->read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_TRUE(eventually([&] { return server_->metrics().upstream_connections_open == 1; }))
      << server_->metrics().upstream_connections_open;
  EXPECT_EQ(time_waits_towards(app_port_), 0);
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

TEST_F(EdgeServerTest, TunnelClosesWhenTheAppClosesItsSide) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(upgrade("/ws")));
  ASSERT_TRUE(c.read_until("hello\n"));
  ASSERT_TRUE(c.send("last words, quit"));
  // The echo arrives, then the edge closes although the client keeps its side open.
  EXPECT_TRUE(c.wait_closed(5s));
  EXPECT_NE(c.received().find("last words, quit"), std::string::npos) << c.received();
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
  // §11: a 4xx the edge wrote, under http_400, and a connection cut for a bad request.
  ASSERT_TRUE(eventually([&] {
    EdgeMetrics m = metrics();
    return requests(m, "4xx", Source::edge) == 1 && errors(m, "http_400") == 1 &&
           m.request_duration[at(Source::edge)].count() == 1;
  }));
  EdgeMetrics m = metrics();
  EXPECT_EQ(errors(m, "http_400"), 1u);
  EXPECT_EQ(all_errors(m), 1u);
  EXPECT_EQ(rejected(m, RejectReason::bad_request), 1u);
  EXPECT_EQ(all_requests(m), 1u);
  EXPECT_EQ(m.request_duration[at(Source::edge)].count(), 1u);
  // §3.11: the rejected request has its access line.
  ASSERT_TRUE(eventually([&] { return log_lines().size() == 1; }));
  EXPECT_TRUE(contains(log_lines()[0], "\"status\":400")) << log_lines()[0];
  EXPECT_TRUE(contains(log_lines()[0], "\"route\":\"edge_error\"")) << log_lines()[0];
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
  // §11: both connections were cut by header_read; only the 408 is an answer.
  ASSERT_TRUE(eventually([&] {
    EdgeMetrics m = metrics();
    return rejected(m, RejectReason::header_timeout) == 2 && all_requests(m) == 1 &&
           errors(m, "http_408") == 1;
  }));
  EdgeMetrics m = metrics();
  EXPECT_EQ(errors(m, "http_408"), 1u);
  EXPECT_EQ(all_errors(m), 1u);
  EXPECT_EQ(requests(m, "4xx", Source::edge), 1u);
  EXPECT_EQ(rejected(m, RejectReason::bad_request), 0u);
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
  // §11: a rejected connection and an answer the edge wrote, but no request.
  EdgeMetrics m = metrics();
  EXPECT_EQ(rejected(m, RejectReason::per_client), 1u);
  EXPECT_EQ(errors(m, "http_429"), 1u);
  EXPECT_EQ(all_errors(m), 1u);
  EXPECT_EQ(all_requests(m), 0u);
  EXPECT_EQ(m.connections_total[0], 3u);
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
  // Counted just after the close the client saw.
  EXPECT_TRUE(eventually([&] { return rejected(metrics(), RejectReason::max_connections) == 1; }));
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


// ---- metrics (SPEC §11) ----

TEST_F(EdgeServerTest, ProxiedRequestCountsAsUpstream2xxWithItsBytesAndDuration) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: " + host() +
                     "\r\nContent-Length: 11\r\n\r\nhello world"));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // Counted just after the last byte went out, each counter on its own.
  ASSERT_TRUE(eventually([&] {
    EdgeMetrics m = metrics();
    return requests(m, "2xx", Source::upstream) == 1 &&
           m.request_duration[at(Source::upstream)].count() == 1;
  }));
  EdgeMetrics m = metrics();
  EXPECT_EQ(m.connections_total[1], 0u);  // nothing on https
  EXPECT_EQ(all_requests(m), 1u);
  EXPECT_EQ(m.request_duration[at(Source::upstream)].count(), 1u);
  EXPECT_GT(m.request_duration[at(Source::upstream)].sum, 0.0);
  EXPECT_EQ(m.request_duration[at(Source::edge)].count(), 0u);
  EXPECT_EQ(m.bytes_in, 11u);                // the request body
  EXPECT_EQ(m.bytes_out, r->body.size());    // the response body
  EXPECT_EQ(all_errors(m), 0u);
  EXPECT_EQ(m.upstream_connections_open, 1);  // back in the pool
  EXPECT_EQ(m.upstream_retries, 0u);
  EXPECT_EQ(m.connections_total[0], 1u);
  EXPECT_EQ(m.connections_open[0], 1u);
}

TEST_F(EdgeServerTest, EdgeAnswersCountAsEdgeRequestsUnderTheirCode) {
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/")));  // no such sandbox
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(eventually([&] {
    EdgeMetrics m = metrics();
    return all_requests(m) == 2 && m.request_duration[at(Source::edge)].count() == 2 &&
           all_errors(m) == 1;
  }));
  EdgeMetrics m = metrics();
  EXPECT_EQ(requests(m, "4xx", Source::edge), 1u);
  EXPECT_EQ(requests(m, "2xx", Source::edge), 1u);  // /healthz is the edge's answer too
  EXPECT_EQ(errors(m, "no_such_sandbox"), 1u);
  EXPECT_EQ(all_errors(m), 1u);
  EXPECT_EQ(m.request_duration[at(Source::edge)].count(), 2u);
  EXPECT_EQ(m.request_duration[at(Source::upstream)].count(), 0u);
  EXPECT_EQ(m.bytes_in, 0u);
  EXPECT_EQ(m.bytes_out, 0u);  // the edge's own pages are not client body bytes
}

TEST_F(EdgeServerTest, HeldRequestThatTimesOutIsObservedAsTimeout) {
  publish(RouteState::stopped);
  waker_.set_manual();  // never released
  EdgeOptions o = options();
  o.wake_timeout = 300ms;
  start(o);
  Client c(port());
  ASSERT_TRUE(c.send(get("/")));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  ASSERT_TRUE(eventually([&] {
    EdgeMetrics m = metrics();
    return m.held_seconds[at(HeldResult::timeout)].count() == 1 &&
           requests(m, "5xx", Source::edge) == 1 && errors(m, "wake_timeout") == 1;
  }));
  EdgeMetrics m = metrics();
  const DurationHistogram& held = m.held_seconds[at(HeldResult::timeout)];
  EXPECT_GE(held.sum, 0.29);
  // Nothing at or below the 0.25 s bound: it was held for the whole wake.timeout.
  for (std::size_t i = 0; kDurationBuckets[i] <= 0.25; ++i) EXPECT_EQ(held.counts[i], 0u) << i;
  for (HeldResult other : {HeldResult::forwarded, HeldResult::refused, HeldResult::failed,
                           HeldResult::gone}) {
    EXPECT_EQ(m.held_seconds[at(other)].count(), 0u);
  }
  EXPECT_EQ(errors(m, "wake_timeout"), 1u);
  EXPECT_EQ(requests(m, "5xx", Source::edge), 1u);
  EXPECT_EQ(m.port_waits, (std::array<std::uint64_t, 3>{}));  // a wake, not a port wait
  EXPECT_EQ(m.held_requests, 0u);
}

TEST_F(EdgeServerTest, RefusedConnectIsAPortWaitCountedOkThenForwarded) {
  app_port_ = closed_port();
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/echo")));
  ASSERT_TRUE(eventually([&] { return server_->stats().held == 1; }));
  EXPECT_EQ(metrics().held_requests, 1u);
  TestUpstream late(app_port_);
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(eventually([&] {
    EdgeMetrics m = metrics();
    return requests(m, "2xx", Source::upstream) == 1 &&
           m.held_seconds[at(HeldResult::forwarded)].count() == 1;
  }));
  EdgeMetrics m = metrics();
  EXPECT_EQ(m.port_waits[at(PortWaitResult::ok)], 1u);
  EXPECT_EQ(m.port_waits[at(PortWaitResult::timeout)], 0u);
  EXPECT_EQ(m.held_seconds[at(HeldResult::forwarded)].count(), 1u);
  EXPECT_EQ(all_errors(m), 0u);
}

TEST_F(EdgeServerTest, PortWaitThatNeverOpensCountsATimeout) {
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
  ASSERT_TRUE(eventually([&] {
    EdgeMetrics m = metrics();
    return errors(m, "port_not_open") == 1 &&
           m.held_seconds[at(HeldResult::timeout)].count() == 1;
  }));
  EdgeMetrics m = metrics();
  EXPECT_EQ(m.port_waits[at(PortWaitResult::timeout)], 1u);
  EXPECT_EQ(m.port_waits[at(PortWaitResult::ok)], 0u);
  EXPECT_EQ(m.held_seconds[at(HeldResult::timeout)].count(), 1u);
}

TEST_F(EdgeServerTest, RefusedWakeAndHoldCapCountAsRefused) {
  publish(RouteState::stopped);
  waker_.set_outcome(WakeOutcome::refused(7));
  EdgeOptions o = options();
  o.max_held_requests_per_sandbox = 1;
  start(o);
  Client a(port());
  ASSERT_TRUE(a.send(get("/")));
  auto r = a.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_TRUE(eventually([&] {
    EdgeMetrics m = metrics();
    return m.held_seconds[at(HeldResult::refused)].count() == 1 &&
           errors(m, "wake_refused") == 1;
  }));

  // The cap: one request is held, the next is refused at once (held for 0 s).
  waker_.set_outcome(WakeOutcome::ok());
  waker_.set_manual();
  Client b(port());
  ASSERT_TRUE(b.send(get("/echo")));
  ASSERT_TRUE(eventually([&] { return server_->stats().held == 1; }));
  Client c(port());
  ASSERT_TRUE(c.send(get("/echo")));
  r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("x-sandbox-error"), "too_many_held");
  EXPECT_TRUE(eventually([&] {
    EdgeMetrics m = metrics();
    return m.held_seconds[at(HeldResult::refused)].count() == 2 &&
           errors(m, "too_many_held") == 1;
  }));
  EXPECT_EQ(metrics().held_seconds[at(HeldResult::refused)].counts[0], 1u);  // le=0.005
  waker_.release();
  r = b.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(eventually(
      [&] { return metrics().held_seconds[at(HeldResult::forwarded)].count() == 1; }));
}

TEST_F(EdgeServerTest, TunnelClosedByTheClientIsCountedAsClient) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(upgrade("/ws")));
  auto r = c.read();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 101);
  ASSERT_TRUE(c.read_until("hello\n"));
  ASSERT_TRUE(eventually(
      [&] { return metrics().tunnels_open[at(TunnelProtocol::websocket)] == 1; }));
  ASSERT_TRUE(c.send("ping-123"));
  ASSERT_TRUE(c.read_until("ping-123"));
  c.shutdown_write();
  EXPECT_TRUE(c.wait_closed());
  // The tunnel is counted closed as it ends, the request just after.
  ASSERT_TRUE(eventually([&] {
    EdgeMetrics m = metrics();
    return m.tunnels_closed[at(TunnelEnd::client)] == 1 &&
           requests(m, "1xx", Source::upstream) == 1;
  }));
  EdgeMetrics m = metrics();
  EXPECT_EQ(m.tunnels_open, (std::array<std::int64_t, 2>{}));
  EXPECT_EQ(std::accumulate(m.tunnels_closed.begin(), m.tunnels_closed.end(), 0ull), 1u);
  EXPECT_EQ(requests(m, "1xx", Source::upstream), 1u);
  EXPECT_EQ(m.request_duration[at(Source::upstream)].count(), 0u);  // tunnels are left out
  EXPECT_EQ(m.bytes_in, 8u);        // "ping-123"
  EXPECT_EQ(m.bytes_out, 6u + 8u);  // "hello\n" and the echo
}

TEST_F(EdgeServerTest, TunnelsEndedForASandboxStopAreCountedAsSandboxStop) {
  publish(RouteState::running);
  start();
  upstream_->release();  // /ws-frames sends its frames whole
  Client ws(port());
  ASSERT_TRUE(ws.send(upgrade("/ws-frames")));
  ASSERT_TRUE(ws.read_until("three"));
  Client raw(port());
  ASSERT_TRUE(raw.send(get("/ws", "Upgrade: test-protocol\r\nConnection: Upgrade\r\n")));
  ASSERT_TRUE(raw.read_until("hello\n"));
  ASSERT_TRUE(eventually([&] {
    EdgeMetrics m = metrics();
    return m.tunnels_open[at(TunnelProtocol::websocket)] == 1 &&
           m.tunnels_open[at(TunnelProtocol::other)] == 1;
  }));
  EXPECT_TRUE(called_within(
      [&](std::function<void()> done) { server_->end_tunnels(id_, std::move(done)); }, 5s));
  EXPECT_TRUE(ws.read_until(std::string("\x03\xe9") + "sandbox stopping", 1s));
  ASSERT_TRUE(ws.send(std::string("\x88\x82\x01\x02\x03\x04") + "\x02\xeb"));
  EXPECT_TRUE(ws.wait_closed(3s));
  EXPECT_TRUE(raw.wait_closed(3s));
  ASSERT_TRUE(eventually(
      [&] { return metrics().tunnels_closed[at(TunnelEnd::sandbox_stop)] == 2; }));
  EdgeMetrics m = metrics();
  EXPECT_EQ(m.tunnels_open, (std::array<std::int64_t, 2>{}));
  EXPECT_EQ(m.tunnels_closed[at(TunnelEnd::client)], 0u);
  EXPECT_EQ(m.tunnels_closed[at(TunnelEnd::upstream)], 0u);
}

TEST_F(EdgeServerTest, IdleTunnelIsCountedAsIdle) {
  publish(RouteState::running);
  EdgeOptions o = options();
  o.websocket_idle = 300ms;
  start(o);
  Client c(port());
  ASSERT_TRUE(c.send(get("/ws", "Upgrade: test-protocol\r\nConnection: Upgrade\r\n")));
  ASSERT_TRUE(c.read_until("hello\n"));
  EXPECT_TRUE(c.wait_closed(5s));
  ASSERT_TRUE(eventually([&] { return metrics().tunnels_closed[at(TunnelEnd::idle)] == 1; }));
  EXPECT_EQ(metrics().tunnels_open[at(TunnelProtocol::other)], 0);
}

// ---- the access log file (SPEC §3.11) ----

// SIGHUP with a new log.access_log (SPEC §9.2, a live key): lines go to the new target from
// the next write, none while it is "", and a target that cannot be opened keeps the old one.
TEST_F(EdgeServerTest, RetargetMovesAccessLinesToTheNewTargetOrTurnsThemOff) {
  const std::string a = dir_ + "/a.log";
  const std::string b = dir_ + "/b.log";
  auto opened = AccessLogWriter::open(a);
  ASSERT_TRUE(opened) << opened.error().message();
  AccessLogWriter& w = **opened;
  AccessLogWriter::Shard& shard = w.add_shard();
  shard.append("one");
  ASSERT_TRUE(w.flush(5s));
  ASSERT_TRUE(w.retarget(b));
  EXPECT_EQ(w.target(), b);
  shard.append("two");
  ASSERT_TRUE(w.flush(5s));
  ASSERT_TRUE(w.retarget(""));
  EXPECT_FALSE(shard.enabled());
  shard.append("dropped");
  ASSERT_TRUE(w.flush(5s));
  EXPECT_FALSE(w.retarget(dir_ + "/missing-dir/c.log"));
  EXPECT_EQ(w.target(), "");
  ASSERT_TRUE(w.retarget(b));
  EXPECT_TRUE(shard.enabled());
  shard.append("three");
  ASSERT_TRUE(w.flush(5s));
  EXPECT_EQ(read_lines(a), (std::vector<std::string>{"one"}));
  EXPECT_EQ(read_lines(b), (std::vector<std::string>{"two", "three"}));
  EXPECT_EQ(w.dropped(), 0u) << "turned off is not dropped";
}

TEST_F(EdgeServerTest, AccessLinesReachTheFileWithinASecond) {
  const std::string path = dir_ + "/default.log";
  auto writer = AccessLogWriter::open(path);  // the default flush interval
  ASSERT_TRUE(writer) << writer.error().message();
  publish(RouteState::running);
  EdgeOptions o = options();
  o.access_log = *writer;
  start(o);
  Client c(port());
  ASSERT_TRUE(c.send(get("/echo?n=1")));
  ASSERT_TRUE(c.read());
  // "At least once a second", with slack for a loaded machine.
  EXPECT_TRUE(eventually([&] { return read_lines(path).size() == 1; }, 1500ms));
  ASSERT_TRUE(c.send(get("/echo?n=2")));
  ASSERT_TRUE(c.read());
  EXPECT_TRUE(eventually([&] { return read_lines(path).size() == 2; }, 1500ms));
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(contains(lines[0], "\"target\":\"/echo?n=1\"")) << lines[0];
  EXPECT_TRUE(contains(lines[1], "\"target\":\"/echo?n=2\"")) << lines[1];
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0640 & ~mask);
}

TEST_F(EdgeServerTest, ReopenSendsLaterLinesToTheNewFile) {
  publish(RouteState::running);
  start();
  Client c(port());
  ASSERT_TRUE(c.send(get("/echo?before")));
  ASSERT_TRUE(c.read());
  ASSERT_TRUE(eventually([&] { return log_lines().size() == 1; }));
  // logrotate's way: move the file, then tell the writer.
  const std::string rotated = log_path_ + ".1";
  ASSERT_EQ(::rename(log_path_.c_str(), rotated.c_str()), 0);
  ASSERT_TRUE(server_->reopen_access_log());
  ASSERT_TRUE(c.send(get("/echo?after")));
  ASSERT_TRUE(c.read());
  ASSERT_TRUE(eventually([&] { return log_lines().size() == 1; }));
  EXPECT_TRUE(contains(log_lines()[0], "/echo?after")) << log_lines()[0];
  const auto old = read_lines(rotated);
  ASSERT_EQ(old.size(), 1u);
  EXPECT_TRUE(contains(old[0], "/echo?before")) << old[0];
}

// A FIFO whose read end is open but not read: once its (one page) buffer is full, a write
// to it blocks, as a write to a stalled disk or an unread stderr pipe would. `drain()`
// then reads it in a thread until the last writer closes it.
class StalledPipe {
 public:
  explicit StalledPipe(std::string path) : path_(std::move(path)) {
    ::signal(SIGPIPE, SIG_IGN);  // as sandboxd does: a write after the reader left fails
    EXPECT_EQ(::mkfifo(path_.c_str(), 0600), 0);
    // Non-blocking, so that this open does not wait for a writer.
    fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    EXPECT_GE(fd_, 0);
    ::fcntl(fd_, F_SETPIPE_SZ, 4096);
  }
  ~StalledPipe() {
    if (!reader_.joinable()) drain(2s);  // a test that failed early: unblock the writer
    reader_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  const std::string& path() const { return path_; }
  int capacity() const { return ::fcntl(fd_, F_GETPIPE_SZ); }
  void drain(std::chrono::milliseconds limit = 20s) {
    reader_ = std::thread([this, limit] {
      const auto until = Clock::now() + limit;
      char buf[65536];
      while (Clock::now() < until) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n == 0) return;  // every writer closed it
        if (n > 0) received_.append(buf, static_cast<std::size_t>(n));
      }
    });
  }
  // After drain(): what was read, once the writer closed its end.
  const std::string& received() {
    reader_.join();
    return received_;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::thread reader_;
  std::string received_;
};

TEST_F(EdgeServerTest, AWriterThatFallsBehindDropsAndCountsLines) {
  StalledPipe pipe(dir_ + "/fifo");
  AccessLogOptions o;
  o.flush_interval = 10ms;
  o.max_buffered_bytes = 4096;
  auto opened = AccessLogWriter::open(pipe.path(), o);
  ASSERT_TRUE(opened) << opened.error().message();
  std::shared_ptr<AccessLogWriter> writer = std::move(*opened);
  AccessLogWriter::Shard& shard = writer->add_shard();
  const std::string line(99, 'x');  // 100 bytes with its newline
  ASSERT_EQ(pipe.capacity(), 4096);
  std::uint64_t appended = 0;
  ASSERT_TRUE(eventually([&] {
    shard.append(line);
    ++appended;
    return writer->dropped() > 0;
  }));
  // The writer is stuck in write(2): appends still return at once, and all but what fits
  // in the pipe, the writer's batch and the shard (40 lines each) are dropped and counted.
  const auto began = Clock::now();
  for (int i = 0; i < 10000; ++i) shard.append(line);
  appended += 10000;
  EXPECT_LT(Clock::now() - began, 1s);
  EXPECT_LE(appended - writer->dropped(), 3u * 40u);
  // Once the pipe is read again, every line that was kept arrives whole.
  pipe.drain();
  EXPECT_TRUE(writer->flush(5s));
  const std::uint64_t dropped = writer->dropped();
  writer.reset();
  const std::string& got = pipe.received();
  const auto lines = static_cast<std::uint64_t>(std::count(got.begin(), got.end(), '\n'));
  EXPECT_EQ(lines + dropped, appended);
  EXPECT_EQ(got.size(), lines * 100);
}

TEST_F(EdgeServerTest, DroppedAccessLinesAreInTheEdgeMetrics) {
  StalledPipe pipe(dir_ + "/fifo");
  AccessLogOptions lo;
  lo.flush_interval = 10ms;
  lo.max_buffered_bytes = 2048;
  auto writer = AccessLogWriter::open(pipe.path(), lo);
  ASSERT_TRUE(writer) << writer.error().message();
  EdgeOptions o = options();
  o.access_log = *writer;
  o.workers = 1;
  start(std::move(o));
  Client c(port());
  // A few hundred bytes a line: the pipe and both buffers are full after some dozens.
  int sent = 0;
  ASSERT_TRUE(eventually([&] {
    if (!c.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")) return false;
    if (!c.read()) return false;
    ++sent;
    return metrics().access_log_dropped > 0;
  }));
  // The last request's line is appended just after its answer went out, so a drop may
  // still come: the metric and the writer agree once it has.
  EXPECT_TRUE(eventually([&] { return metrics().access_log_dropped == (*writer)->dropped(); }));
  // Every request counted, logged or not.
  EXPECT_TRUE(eventually([&] {
    return requests(metrics(), "2xx", Source::edge) == static_cast<std::uint64_t>(sent);
  }));
  pipe.drain();
  server_.reset();
  writer->reset();  // the last owner: the writer closes the pipe once it has written all
  const std::string& got = pipe.received();
  EXPECT_GT(std::count(got.begin(), got.end(), '\n'), 0);
}

TEST(EdgeAccessLogWriter, OpensStderrAndRefusesAPathItCannotOpen) {
  auto err = AccessLogWriter::open("stderr");
  ASSERT_TRUE(err) << err.error().message();
  EXPECT_TRUE((*err)->reopen());  // nothing to reopen
  auto bad = AccessLogWriter::open("/nonexistent-dir/access.log");
  ASSERT_FALSE(bad);
  EXPECT_TRUE(contains(bad.error().message(), "/nonexistent-dir/access.log"))
      << bad.error().message();
  auto off = AccessLogWriter::open("");
  ASSERT_TRUE(off) << off.error().message();
  EXPECT_TRUE((*off)->reopen());
  EXPECT_FALSE((*off)->add_shard().enabled());
}



}  // namespace
}  // namespace sandboxd::edge
