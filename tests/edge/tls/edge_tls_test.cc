// The edge's https listener over real sockets on 127.0.0.1 (SPEC §3.1, §3.15): a test
// upstream behind it, OpenSSL clients in front, certificates made by the edge's own
// placeholder maker (self-signed, so each one is its own trust root).
#include "edge/edge_server.h"
#include "edge/tls.h"

#include "../server/test_peers.h"
#include "raw_http.h"

#include <gtest/gtest.h>

#include <openssl/ssl.h>

#include <cctype>
#include <functional>
#include <thread>

namespace sandboxd::edge {
namespace {

using namespace std::chrono_literals;
using sandboxd::testing::RawConnection;
using sandboxd::testing::RawResponse;
using sandboxd::testing::TlsClientOptions;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kSuffix = "preview.test";
constexpr std::string_view kControlHost = "api.control.test";

bool eventually(const std::function<bool()>& ready, std::chrono::milliseconds limit = 10s) {
  const auto until = Clock::now() + limit;
  while (!ready()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

TlsCertificate make_cert(std::vector<std::string> names) {
  auto cert = make_placeholder_certificate(names, std::chrono::hours(24));
  EXPECT_TRUE(cert) << cert.error().message();
  return cert ? *cert : TlsCertificate{};
}

// The route is always running at the test upstream: these tests are about the listener.
class NoWaker final : public Waker {
 public:
  void wake(const Ulid&, std::function<void(WakeOutcome)> done) override {
    done(WakeOutcome{});
  }
};

class EdgeTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = std::make_unique<testing::TestUpstream>();
    id_ = UlidGenerator().next();
    preview_ = make_cert({"*." + std::string(kSuffix), std::string(kSuffix)});
    Route r;
    r.id = id_;
    r.state = RouteState::running;
    r.address = *IpAddress::parse("127.0.0.1");
    r.ports = {upstream_->port()};
    routes_.publish(RouteTable::build({r}).value());
  }

  EdgeOptions options() {
    EdgeOptions o;
    o.listen_host = "127.0.0.1";
    o.listen_port = 0;
    o.tls = true;
    o.https_listen_host = "127.0.0.1";
    o.https_listen_port = 0;
    o.workers = 2;
    o.preview_suffix = std::string(kSuffix);
    o.header_read = 2s;
    o.certificates.preview = preview_;
    return o;
  }

  void start(EdgeOptions o) {
    auto server = EdgeServer::start(std::move(o), routes_, waker_, activity_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
  }

  std::string host() const {
    std::string text = id_.str();
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return "s-" + text + "-" + std::to_string(upstream_->port()) + "." + std::string(kSuffix);
  }

  // A TLS connection to the https listener, verified against `trust`.
  std::unique_ptr<RawConnection> connect(const std::string& sni, const std::string& trust,
                                         TlsClientOptions o = {}) {
    auto c = std::make_unique<RawConnection>(server_->https_port());
    o.sni = sni;
    o.trust_pem = trust;
    if (auto failed = c->start_tls(o)) {
      ADD_FAILURE() << "handshake: " << *failed;
      return nullptr;
    }
    return c;
  }

  std::optional<RawResponse> get(RawConnection& c, const std::string& target,
                                 const std::string& host_header) {
    c.send("GET " + target + " HTTP/1.1\r\nHost: " + host_header + "\r\n\r\n");
    return c.read_response();
  }

  std::unique_ptr<testing::TestUpstream> upstream_;
  Ulid id_;
  TlsCertificate preview_;
  RouteTablePublisher routes_;
  NoWaker waker_;
  ActivityTable activity_;
  std::unique_ptr<EdgeServer> server_;
};

TEST_F(EdgeTlsTest, PreviewIsServedOverTlsWithSniAndAlpnHttp11) {
  start(options());
  ASSERT_NE(server_->https_port(), 0);
  auto c = connect(host(), preview_.chain_pem, TlsClientOptions{.verify_host = host()});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tls_version(), "TLSv1.3");
  EXPECT_EQ(c->alpn(), "http/1.1");
  auto r = get(*c, "/echo", host());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("X-Forwarded-Proto: https"), std::string::npos) << r->body;
  // Keep-alive: a second request on the same TLS connection.
  r = get(*c, "/echo", host());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // Counted just after the last byte went out.
  ASSERT_TRUE(eventually([&] {
    const EdgeMetrics m = server_->metrics();
    return m.tls_handshakes_ok[1] == 1 && m.requests[1][1][0] == 2;  // https, 2xx, upstream
  }));
  const EdgeMetrics m = server_->metrics();
  EXPECT_EQ(m.connections_total[1], 1u);
  EXPECT_EQ(m.connections_total[0], 0u);
  EXPECT_EQ(m.tls_reloads_ok, 1u);
}

TEST_F(EdgeTlsTest, NoAlpnWhenTheClientOffersOnlyH2) {
  start(options());
  auto c = connect(host(), preview_.chain_pem, TlsClientOptions{.alpn = {"h2"}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->alpn(), "");
  auto r = get(*c, "/echo", host());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(EdgeTlsTest, Tls12OnlyWithEcdheAeadSuites) {
  start(options());
  // TLS 1.2 with an ECDHE-GCM suite works.
  auto ok = connect(host(), preview_.chain_pem,
                    TlsClientOptions{.max_version = TLS1_2_VERSION,
                                     .tls12_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->tls_version(), "TLSv1.2");
  // A CBC suite without forward secrecy is refused.
  RawConnection cbc(server_->https_port());
  auto failed = cbc.start_tls(TlsClientOptions{.sni = host(), .max_version = TLS1_2_VERSION,
                                               .tls12_ciphers = "AES128-SHA:ECDHE-ECDSA-AES128-SHA"});
  EXPECT_TRUE(failed);
  EXPECT_TRUE(eventually([&] { return server_->metrics().tls_handshakes_failed == 1; }));
  EXPECT_EQ(server_->metrics().rejected[static_cast<std::size_t>(RejectReason::tls_handshake)], 1u);
}

TEST_F(EdgeTlsTest, MinVersion13RefusesTls12) {
  EdgeOptions o = options();
  o.tls13_only = true;
  start(std::move(o));
  RawConnection old(server_->https_port());
  EXPECT_TRUE(old.start_tls(TlsClientOptions{.sni = host(), .max_version = TLS1_2_VERSION}));
  auto c = connect(host(), preview_.chain_pem);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tls_version(), "TLSv1.3");
}

TEST_F(EdgeTlsTest, SniChoosesTheControlCertificateOnlyForItsName) {
  EdgeOptions o = options();
  const TlsCertificate control = make_cert({std::string(kControlHost)});
  o.certificates.control = control;
  start(std::move(o));
  auto api = connect(std::string(kControlHost), control.chain_pem);
  ASSERT_TRUE(api);
  EXPECT_EQ(api->peer_names(), std::vector<std::string>{std::string(kControlHost)});
  // Upper case in SNI is matched lower-cased.
  auto upper = connect("API.CONTROL.TEST", control.chain_pem);
  ASSERT_TRUE(upper);
  // The preview name, an unknown name and no SNI all get the preview certificate.
  for (const std::string& sni : {host(), std::string("unknown.example"), std::string()}) {
    auto c = connect(sni, preview_.chain_pem);
    ASSERT_TRUE(c) << sni;
    EXPECT_EQ(c->peer_names().front(), "*.preview.test") << sni;
  }
}

TEST_F(EdgeTlsTest, HostNotCoveredByTheChosenCertificateGets421) {
  EdgeOptions o = options();
  const TlsCertificate control = make_cert({std::string(kControlHost)});
  o.certificates.control = control;
  start(std::move(o));
  auto c = connect(host(), preview_.chain_pem);
  ASSERT_TRUE(c);
  auto r = get(*c, "/echo", std::string(kControlHost));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 421);
  EXPECT_EQ(r->body, "421 Misdirected Request\n");
  // The connection stays usable for a host the certificate covers.
  r = get(*c, "/echo", host() + ":443");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // Two labels under the wildcard are not covered.
  r = get(*c, "/echo", "a.b.preview.test");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 421);
  EXPECT_EQ(upstream_->accepts(), 1);
}

TEST_F(EdgeTlsTest, SwapServesNewHandshakesWhileOpenConnectionsCarryOn) {
  start(options());
  auto before = connect(host(), preview_.chain_pem);
  ASSERT_TRUE(before);
  auto r = get(*before, "/echo", host());
  ASSERT_TRUE(r);
  const std::string old_serial = before->peer_serial();
  SSL_SESSION* session = before->session();
  ASSERT_NE(session, nullptr);

  const TlsCertificate next = make_cert({"*." + std::string(kSuffix), std::string(kSuffix)});
  ASSERT_TRUE(server_->set_certificates(TlsCertificates{.preview = next}));

  auto after = connect(host(), next.chain_pem);
  ASSERT_TRUE(after);
  EXPECT_NE(after->peer_serial(), old_serial);
  r = get(*after, "/echo", host());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // The connection opened before the swap still works, on its old certificate.
  r = get(*before, "/echo", host());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(before->peer_serial(), old_serial);
  // Ticket keys outlive the swap: the old session resumes.
  RawConnection resumed(server_->https_port());
  ASSERT_FALSE(resumed.start_tls(TlsClientOptions{.sni = host(), .session = session}));
  EXPECT_TRUE(resumed.session_reused());
  SSL_SESSION_free(session);
  EXPECT_EQ(server_->metrics().tls_reloads_ok, 2u);
}

TEST_F(EdgeTlsTest, BrokenSetIsRefusedAndTheOldOneKeepsServing) {
  start(options());
  TlsCertificate mismatched = make_cert({"*.preview.test"});
  mismatched.key_pem = make_cert({"other.test"}).key_pem;
  auto refused = server_->set_certificates(TlsCertificates{.preview = mismatched});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("does not match"), std::string::npos)
      << refused.error().message();
  auto garbage = server_->set_certificates(
      TlsCertificates{.preview = TlsCertificate{"-----BEGIN CERTIFICATE-----\nxx\n", "nope"}});
  EXPECT_FALSE(garbage);
  EXPECT_EQ(server_->metrics().tls_reloads_error, 2u);
  auto c = connect(host(), preview_.chain_pem);
  ASSERT_TRUE(c);
  auto r = get(*c, "/echo", host());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(EdgeTlsTest, StartRefusesABrokenFirstSet) {
  EdgeOptions o = options();
  o.certificates.preview.key_pem = "not a key";
  auto server = EdgeServer::start(std::move(o), routes_, waker_, activity_);
  ASSERT_FALSE(server);
  EXPECT_NE(server.error().message().find("preview certificate"), std::string::npos)
      << server.error().message();
}

TEST_F(EdgeTlsTest, SilentClientIsCutAtHeaderReadDuringTheHandshake) {
  start(options());
  RawConnection silent(server_->https_port());
  const auto t0 = Clock::now();
  EXPECT_TRUE(silent.wait_closed(10s));
  EXPECT_GE(Clock::now() - t0, 1500ms);
  EXPECT_TRUE(eventually([&] {
    return server_->metrics().rejected[static_cast<std::size_t>(RejectReason::tls_handshake)] == 1;
  }));
}

TEST_F(EdgeTlsTest, PlainHttpIsRedirectedToHttpsOnTheSameConnection) {
  start(options());
  RawConnection c(server_->port());
  c.send("GET /a/b?x=1 HTTP/1.1\r\nHost: " + host() + ":8080\r\n\r\n");
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 301);
  EXPECT_EQ(r->headers["location"],
            "https://" + host() + ":" + std::to_string(server_->https_port()) + "/a/b?x=1");
  EXPECT_EQ(r->headers["content-length"], "0");
  // Other methods keep their method and body: 308.
  c.send("POST /form HTTP/1.1\r\nHost: " + host() + "\r\nContent-Length: 3\r\n\r\nabc");
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 308);
  // /healthz on a non-preview host stays plain.
  c.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(upstream_->accepts(), 0);
}

TEST_F(EdgeTlsTest, NoRedirectWhenTurnedOffOrWhileThePlaceholderServes) {
  EdgeOptions o = options();
  o.certificates.placeholder = true;
  start(std::move(o));
  RawConnection c(server_->port());
  c.send("GET /echo HTTP/1.1\r\nHost: " + host() + "\r\n\r\n");
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // A real certificate arrives: from now on plain HTTP is redirected.
  ASSERT_TRUE(server_->set_certificates(TlsCertificates{.preview = preview_}));
  c.send("GET /echo HTTP/1.1\r\nHost: " + host() + "\r\n\r\n");
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 301);
  server_.reset();

  EdgeOptions off = options();
  off.redirect_http = false;
  start(std::move(off));
  RawConnection plain(server_->port());
  plain.send("GET /echo HTTP/1.1\r\nHost: " + host() + "\r\n\r\n");
  r = plain.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("X-Forwarded-Proto: http\r\n"), std::string::npos);
}

}  // namespace
}  // namespace sandboxd::edge
