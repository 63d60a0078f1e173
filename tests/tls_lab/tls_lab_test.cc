// sandboxd with `tls.mode: acme` against the ACME lab (a real BIND9 taking RFC 2136 updates
// and pebble validating DNS-01 against it, both started by the test) and the real Docker
// Engine: the wildcard certificate is obtained, served by the edge's https listener to a
// client that verifies it against pebble's root, renewed by itself while an open connection
// carries on, kept while the CA is down, and never replaced by a broken attempt.
#include "lab.h"
#include "raw_http.h"
#include "sandboxd_fixture.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

namespace sandboxd::testing {
namespace {

using acme::testing::AcmeLab;
using acme::testing::LabOptions;

const std::string kChallenge = "_acme-challenge.preview.test.";

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Serial numbers as the API prints them: lower-case hex without leading zeros.
std::string canonical_serial(std::string hex) {
  hex = lower(std::move(hex));
  const auto first = hex.find_first_not_of('0');
  return first == std::string::npos ? "0" : hex.substr(first);
}

class TlsLabTest : public SandboxdTest {
 protected:
  virtual LabOptions lab_options() const { return {}; }
  virtual std::string tsig_secret() const { return lab_->tsig_secret(); }

  void SetUp() override {
    lab_ = std::make_unique<AcmeLab>(lab_options());
    SandboxdTest::SetUp();
  }

  SandboxdConfig config() const override {
    const std::string dns = lab_->dns_address();
    SandboxdConfig c;
    c.edge_lines = "  https:\n    listen: 127.0.0.1:0\n";
    c.extra = "preview:\n  suffix: preview.test\n"
              "tls:\n  mode: acme\n"
              "acme:\n"
              "  directory_url: " + lab_->directory_url() + "\n"
              "  email: ci@preview.test\n"
              "  ca_bundle: " + lab_->https_ca_file() + "\n"
              "  dns:\n"
              "    provider: rfc2136\n"
              "    propagation:\n"
              "      timeout: 30s\n"
              "      nameservers: [\"" + dns + "\"]\n"
              "    rfc2136:\n"
              "      nameserver: " + dns + "\n"
              "      tsig_name: " + lab_->tsig_name + "\n"
              "      tsig_secret: " + tsig_secret() + "\n";
    return c;
  }

  // The one certificate of GET /v1/certificates.
  json::object certificate() {
    Answer a = sd().get("/v1/certificates");
    EXPECT_EQ(a.status, 200) << a.body;
    if (!a.json.is_object()) return {};
    EXPECT_EQ(str_of(a.json, "mode"), "acme");
    const json::value* certs = a.json.as_object().if_contains("certificates");
    if (certs == nullptr || !certs->is_array() || certs->as_array().size() != 1) {
      ADD_FAILURE() << a.body;
      return {};
    }
    return certs->as_array()[0].as_object();
  }

  // A valid certificate, and the attempt that got it finished (its TXT records removed).
  ::testing::AssertionResult wait_valid() {
    return wait_certificate([](const json::object& c) {
      const json::value* busy = c.if_contains("in_progress");
      return field(c, "status") == "valid" && busy != nullptr && busy->is_bool() && !busy->as_bool();
    });
  }

  ::testing::AssertionResult wait_certificate(const std::function<bool(const json::object&)>& ok,
                                              std::chrono::milliseconds deadline = 90s) {
    json::object last;
    if (wait_until([&] {
          last = certificate();
          return ok(last);
        }, deadline)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "certificate never got there: " << json::serialize(last);
  }

  static std::string field(const json::object& o, const char* key) {
    const json::value* v = o.if_contains(key);
    return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
  }

  std::string host(const std::string& id) const { return "s-" + lower(id) + "-3000.preview.test"; }

  // A TLS connection to the https listener with SNI `sni`, verified against pebble's root
  // when `verify` is set.
  std::unique_ptr<RawConnection> tls_connect(const std::string& sni, bool verify = true) {
    auto c = std::make_unique<RawConnection>(sd().edge_https_port());
    TlsClientOptions o;
    o.sni = sni;
    if (verify) {
      o.trust_pem = lab_->root_pem();
      o.verify_host = sni;
    }
    if (auto failed = c->start_tls(o)) {
      ADD_FAILURE() << "handshake with " << sni << ": " << *failed;
      return nullptr;
    }
    return c;
  }

  std::optional<RawResponse> get(RawConnection& c, const std::string& host_header,
                                 const std::string& target = "/") {
    c.send("GET " + target + " HTTP/1.1\r\nHost: " + host_header + "\r\n\r\n");
    return c.read_response(false, std::chrono::seconds(30));
  }

  std::unique_ptr<AcmeLab> lab_;
};

TEST_F(TlsLabTest, ObtainsTheWildcardAndServesAPreviewVerifiedAgainstTheCaRoot) {
  ASSERT_TRUE(wait_valid());
  const json::object cert = certificate();
  EXPECT_EQ(field(cert, "source"), "acme");
  EXPECT_EQ(json::serialize(cert.at("domains")), R"(["*.preview.test","preview.test"])");
  EXPECT_NE(field(cert, "issuer").find("Pebble"), std::string::npos) << json::serialize(cert);
  EXPECT_FALSE(field(cert, "next_renewal_at").empty());
  EXPECT_FALSE(field(cert.at("account").as_object(), "url").empty());
  // Every TXT value presented is gone again.
  EXPECT_TRUE(lab_->txt(kChallenge).empty());

  const std::string id = create_v1("tls-user", "tls-project");
  ASSERT_FALSE(id.empty());
  auto c = tls_connect(host(id));
  ASSERT_TRUE(c);
  EXPECT_EQ(canonical_serial(c->peer_serial()), field(cert, "serial"));
  EXPECT_EQ(c->alpn(), "http/1.1");
  auto r = get(*c, host(id));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;

  // Plain HTTP is redirected to the https listener now that a real certificate serves.
  RawConnection plain(sd().edge_port());
  plain.send("GET /x?y=1 HTTP/1.1\r\nHost: " + host(id) + "\r\n\r\n");
  r = plain.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 301);
  EXPECT_EQ(r->headers["location"],
            "https://" + host(id) + ":" + std::to_string(sd().edge_https_port()) + "/x?y=1");

  // The API's preview URL names the https listener.
  Answer got = sd().get("/v1/sandboxes/" + id);
  EXPECT_NE(got.body.find("https://" + host(id) + ":" + std::to_string(sd().edge_https_port())),
            std::string::npos)
      << got.body;
  Answer m = sd().get("/metrics");
  EXPECT_NE(m.body.find("sandboxd_tls_handshakes_total{result=\"ok\",version=\"TLSv1.3\"}"),
            std::string::npos);
  EXPECT_NE(m.body.find("sandboxd_certificate_not_after_timestamp_seconds{cert=\"preview\",source=\"acme\"}"),
            std::string::npos);
}

class TlsLabShortLivedTest : public TlsLabTest {
 protected:
  LabOptions lab_options() const override { return LabOptions{.cert_validity_seconds = 40}; }
};

TEST_F(TlsLabShortLivedTest, RenewalSwapsTheCertificateWhileAnOpenConnectionKeepsWorking) {
  ASSERT_TRUE(wait_valid());
  const std::string first = field(certificate(), "serial");
  const std::string id = create_v1("tls-user", "tls-project");
  ASSERT_FALSE(id.empty());
  auto before = tls_connect(host(id));
  ASSERT_TRUE(before);
  auto r = get(*before, host(id));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  ASSERT_EQ(canonical_serial(before->peer_serial()), first);

  // Renewal at half of a lifetime under 10 days: about 20 s after issuance.
  ASSERT_TRUE(wait_certificate([&](const json::object& c) {
    return field(c, "status") == "valid" && field(c, "serial") != first;
  }, 60s));
  const std::string second = field(certificate(), "serial");
  // The manager reports the new certificate a moment before the edge has swapped it in:
  // new handshakes get it within a deadline.
  std::unique_ptr<RawConnection> after;
  ASSERT_TRUE(wait_until([&] {
    after = tls_connect(host(id));
    return after && canonical_serial(after->peer_serial()) == second;
  }, 10s)) << "new handshakes never got " << second;
  r = get(*after, host(id));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // The keep-alive connection opened before the swap is untouched.
  r = get(*before, host(id));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(canonical_serial(before->peer_serial()), first);
  EXPECT_TRUE(lab_->txt(kChallenge).empty());
}

TEST_F(TlsLabTest, WithTheCaDownTheOldCertificateKeepsServingAndTheFailureShows) {
  ASSERT_TRUE(wait_valid());
  const std::string serial = field(certificate(), "serial");
  lab_->stop_pebble();
  Answer renew = sd().post("/v1/certificates/renew");
  EXPECT_EQ(renew.status, 202) << renew.body;
  ASSERT_TRUE(wait_certificate([](const json::object& c) {
    const json::value* n = c.if_contains("consecutive_failures");
    return n != nullptr && n->is_int64() && n->as_int64() >= 1;
  }, 60s));
  const json::object cert = certificate();
  EXPECT_EQ(field(cert, "status"), "error") << json::serialize(cert);
  EXPECT_EQ(field(cert, "serial"), serial);
  ASSERT_TRUE(cert.contains("last_error"));
  EXPECT_EQ(field(cert.at("last_error").as_object(), "code"), "ca_unavailable");
  EXPECT_EQ(field(cert.at("last_error").as_object(), "step"), "directory");
  EXPECT_FALSE(field(cert, "next_attempt_at").empty()) << "no backoff: " << json::serialize(cert);
  // The certificate in hand keeps serving.
  auto c = tls_connect("preview.test", false);
  ASSERT_TRUE(c);
  EXPECT_EQ(canonical_serial(c->peer_serial()), serial);
  Answer m = sd().get("/metrics");
  EXPECT_NE(m.body.find("sandboxd_acme_failures_total{step=\"directory\"} 1"), std::string::npos)
      << m.body.substr(0, 200);
}

class TlsLabWrongTsigTest : public TlsLabTest {
 protected:
  // A valid base64 secret that BIND does not know.
  std::string tsig_secret() const override { return "d3JvbmcgdHNpZyBzZWNyZXQgZm9yIHRoZSB0ZXN0IQ=="; }
};

TEST_F(TlsLabWrongTsigTest, GivesAClearErrorKeepsThePlaceholderAndNoCrash) {
  ASSERT_TRUE(wait_certificate([](const json::object& c) { return c.contains("last_error"); }, 60s));
  const json::object cert = certificate();
  EXPECT_EQ(field(cert, "status"), "missing") << json::serialize(cert);
  EXPECT_EQ(field(cert, "source"), "placeholder");
  const json::object& e = cert.at("last_error").as_object();
  EXPECT_EQ(field(e, "step"), "dns_present") << json::serialize(e);
  EXPECT_EQ(field(e, "code"), "dns_auth") << json::serialize(e);
  EXPECT_EQ(sd().log().find(tsig_secret()), std::string::npos) << "the secret was logged";
  // The placeholder serves the configured names, and plain HTTP is not redirected.
  auto c = tls_connect("s-x.preview.test", false);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->peer_names(), (std::vector<std::string>{"*.preview.test", "preview.test"}));
  RawConnection plain(sd().edge_port());
  plain.send("GET / HTTP/1.1\r\nHost: s-01j9zzzzzzzzzzzzzzzzzzzzzz-3000.preview.test\r\n\r\n");
  auto r = plain.read_response();
  ASSERT_TRUE(r);
  EXPECT_NE(r->status, 301);
  EXPECT_EQ(sd().get("/healthz").status, 200);
  EXPECT_TRUE(lab_->txt(kChallenge).empty());
}

}  // namespace
}  // namespace sandboxd::testing
