// Private previews at the edge (SPEC §3.14) over real sockets: anonymous requests are refused
// before anything wakes, a token becomes a host-scoped cookie by a redirect that drops it
// from the URL, bearer tokens authorize API clients directly, the edge's credentials never
// reach the app, and key rotation revokes cookies.
#include "edge/edge_server.h"
#include "edge/preview_auth.h"

#include "../server/test_peers.h"
#include "raw_http.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <ctime>

namespace sandboxd::edge {
namespace {

using namespace std::chrono_literals;
using sandboxd::testing::RawConnection;
using sandboxd::testing::RawResponse;

constexpr std::string_view kSuffix = "preview.test";
const PreviewKey kKey{"k1", std::string(32, 's')};
const PreviewKey kNext{"k2", std::string(32, 't')};

std::size_t idx_of(PreviewVia v) { return static_cast<std::size_t>(v); }

// Counts wakes; answers each at once (the route stays as published).
class CountingWaker final : public Waker {
 public:
  void wake(const Ulid&, std::function<void(WakeOutcome)> done) override {
    ++calls;
    done(WakeOutcome::failed("test waker"));
  }
  std::atomic<int> calls{0};
};

class PrivatePreviewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = std::make_unique<testing::TestUpstream>();
    UlidGenerator ids;
    running_ = ids.next();
    stopped_ = ids.next();
    Route a;
    a.id = running_;
    a.state = RouteState::running;
    a.address = *IpAddress::parse("127.0.0.1");
    a.ports = {upstream_->port()};
    a.visibility = Visibility::private_;
    Route b = a;
    b.id = stopped_;
    b.state = RouteState::stopped;
    b.address = IpAddress{};
    routes_.publish(RouteTable::build({a, b}).value());
  }

  void start(std::string redirect_url = {}) {
    EdgeOptions o;
    o.listen_host = "127.0.0.1";
    o.listen_port = 0;
    o.workers = 1;
    o.preview_suffix = std::string(kSuffix);
    o.preview_auth.keys = {kKey};
    o.preview_auth.cookie_ttl = 3600s;
    o.preview_auth.redirect_url = std::move(redirect_url);
    auto server = EdgeServer::start(std::move(o), routes_, waker_, activity_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
  }

  std::string host(const Ulid& id) const {
    std::string text = id.str();
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return "s-" + text + "-" + std::to_string(upstream_->port()) + "." + std::string(kSuffix);
  }
  std::string token(const Ulid& id, const PreviewKey& key = kKey) const {
    const std::int64_t now = std::time(nullptr);
    return make_preview_token(key, id, std::nullopt, now, now + 600);
  }

  std::optional<RawResponse> request(const std::string& head) {
    RawConnection c(server_->port());
    c.send(head);
    return c.read_response();
  }
  std::string get(const Ulid& id, const std::string& target, const std::string& extra = "") const {
    return "GET " + target + " HTTP/1.1\r\nHost: " + host(id) + "\r\n" + extra + "\r\n";
  }
  // "sandbox_preview=<value>" from a Set-Cookie.
  static std::string cookie_pair(const RawResponse& r) {
    const std::string set = r.headers.count("set-cookie") ? r.headers.at("set-cookie") : "";
    return set.substr(0, set.find(';'));
  }

  std::unique_ptr<testing::TestUpstream> upstream_;
  Ulid running_;
  Ulid stopped_;
  RouteTablePublisher routes_;
  CountingWaker waker_;
  ActivityTable activity_;
  std::unique_ptr<EdgeServer> server_;
};

TEST_F(PrivatePreviewTest, AnonymousRequestsAreRefusedAndWakeNothing) {
  start();
  auto r = request(get(running_, "/echo"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(r->body.find("preview_auth_required"), std::string::npos);
  r = request(get(stopped_, "/echo"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // A bad token is refused the same way, with its reason only in the metric.
  r = request(get(stopped_, "/echo?sandbox_token=" + token(stopped_, PreviewKey{"k1", std::string(32, 'x')})));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->body.find("bad_signature"), std::string::npos);
  EXPECT_EQ(waker_.calls.load(), 0);
  EXPECT_EQ(upstream_->accepts(), 0);
  const EdgeMetrics m = server_->metrics();
  EXPECT_EQ(m.preview_auth[1][idx_of(PreviewVia::none)][0], 2u);
  EXPECT_EQ(m.preview_auth[1][idx_of(PreviewVia::query)][static_cast<std::size_t>(TokenCheck::bad_signature)], 1u);
}

TEST_F(PrivatePreviewTest, QueryTokenBecomesAHostCookieByARedirect) {
  start();
  auto r = request(get(running_, "/page?a=1&sandbox_token=" + token(running_) + "&b=2"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 302);
  EXPECT_EQ(r->headers["location"], "/page?a=1&b=2");
  const std::string set = r->headers["set-cookie"];
  EXPECT_EQ(set.rfind("sandbox_preview=", 0), 0u) << set;
  EXPECT_NE(set.find("; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"), std::string::npos) << set;
  EXPECT_EQ(set.find("Domain"), std::string::npos);
  EXPECT_EQ(set.find("Secure"), std::string::npos);  // plain http
  const std::string cookie = cookie_pair(*r);

  // The cookie opens this host; the app never sees it, other cookies pass.
  r = request(get(running_, "/echo", "Cookie: theme=dark; " + cookie + "\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("Cookie: theme=dark\r\n"), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find("sandbox_preview"), std::string::npos);
  // Another sandbox's host does not take it.
  r = request(get(stopped_, "/echo", "Cookie: " + cookie + "\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(waker_.calls.load(), 0);
}

TEST_F(PrivatePreviewTest, BearerTokenAuthorizesApiClientsWithoutARedirect) {
  start();
  const std::string body = "{\"x\":1}";
  auto r = request("POST /echo HTTP/1.1\r\nHost: " + host(running_) + "\r\nAuthorization: Bearer " +
                   token(running_) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.find("Authorization"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find(body), std::string::npos);
  EXPECT_EQ(r->headers["set-cookie"].rfind("sandbox_preview=", 0), 0u);
  // A bearer value that is not a preview token is the app's business.
  r = request(get(running_, "/echo", "Authorization: Bearer app-secret\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // A navigation with a valid bearer gets the redirect and the cookie.
  r = request(get(running_, "/nav", "Authorization: Bearer " + token(running_) + "\r\nSec-Fetch-Mode: navigate\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 302);
  EXPECT_EQ(r->headers["location"], "/nav");
}

TEST_F(PrivatePreviewTest, PostWithAQueryTokenIsForwardedWithoutIt) {
  start();
  auto r = request("POST /echo?sandbox_token=" + token(running_) + "&keep=1 HTTP/1.1\r\nHost: " +
                   host(running_) + "\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("POST /echo?keep=1 HTTP/1.1"), std::string::npos) << r->body;
  EXPECT_FALSE(r->headers["set-cookie"].empty());
}

TEST_F(PrivatePreviewTest, NavigationsGoToTheLoginPageWhenOneIsSet) {
  start("https://app.example/login?sandbox={sandbox_id}&return={return}");
  auto r = request(get(stopped_, "/x?q=1&sandbox_token=bad", "Accept: text/html\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 302);
  EXPECT_EQ(r->headers["location"], "https://app.example/login?sandbox=" + stopped_.str() +
                                        "&return=http%3A%2F%2F" + host(stopped_) + "%2Fx%3Fq%3D1");
  // API clients still get the 401.
  r = request(get(stopped_, "/x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(waker_.calls.load(), 0);
}

TEST_F(PrivatePreviewTest, PreflightIsForwardedOnlyToARunningSandbox) {
  start();
  const std::string preflight = "OPTIONS /api HTTP/1.1\r\nHost: {}\r\nOrigin: https://x\r\n"
                                "Access-Control-Request-Method: POST\r\n\r\n";
  auto with_host = [&](const Ulid& id) {
    std::string h = preflight;
    h.replace(h.find("{}"), 2, host(id));
    return h;
  };
  auto r = request(with_host(running_));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);  // the test app's answer
  r = request(with_host(stopped_));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(waker_.calls.load(), 0);
}

TEST_F(PrivatePreviewTest, DroppingAKeyRevokesItsCookies) {
  start();
  auto r = request(get(running_, "/?sandbox_token=" + token(running_)));
  ASSERT_TRUE(r);
  const std::string cookie = cookie_pair(*r);
  // k2 is added in front: the old cookie still works while k1 stays listed.
  PreviewAuthSettings s;
  s.keys = {kNext, kKey};
  server_->set_preview_auth(s);
  r = request(get(running_, "/echo", "Cookie: " + cookie + "\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  s.keys = {kNext};
  server_->set_preview_auth(s);
  r = request(get(running_, "/echo", "Cookie: " + cookie + "\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // Tokens signed with the new key work.
  r = request(get(running_, "/echo", "Authorization: Bearer " + token(running_, kNext) + "\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace sandboxd::edge
