// sandboxd with `tls.mode: files` (SPEC §3.15): the pair is served from start, SIGHUP loads
// it again, a broken pair is refused while the old one keeps serving, and connections
// opened before a swap carry on. Certificates come from a throwaway CA made by the test.
#include "raw_http.h"
#include "sandboxd_fixture.h"
#include "support/test_pki.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>

#include <filesystem>

namespace sandboxd::testing {
namespace {

using acme::testing::make_ca;
using acme::testing::make_leaf;
using acme::testing::Pem;
using acme::testing::write_file;

const std::vector<std::string> kNames{"DNS:*.preview.test", "DNS:preview.test"};

class TlsFilesTest : public SandboxdTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tls-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ca_ = make_ca("sandboxd files test CA");
    first_ = make_leaf(ca_, kNames);
    install(first_);
    SandboxdTest::SetUp();
  }
  void TearDown() override {
    SandboxdTest::TearDown();
    std::filesystem::remove_all(dir_);
  }

  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.edge_lines = "  https:\n    listen: 127.0.0.1:0\n";
    c.extra = "preview:\n  suffix: preview.test\n"
              "tls:\n  mode: files\n  files:\n    cert: " + dir_ + "/cert.pem\n    key: " + dir_ + "/key.pem\n";
    return c;
  }

  void install(const Pem& pem) {
    write_file(dir_ + "/cert.pem", pem.cert);
    write_file(dir_ + "/key.pem", pem.key);
  }

  std::unique_ptr<RawConnection> connect() {
    auto c = std::make_unique<RawConnection>(sd().edge_https_port());
    TlsClientOptions o;
    o.sni = "s-x.preview.test";
    o.trust_pem = ca_.cert;
    o.verify_host = o.sni;
    if (auto failed = c->start_tls(o)) {
      ADD_FAILURE() << "handshake: " << *failed;
      return nullptr;
    }
    return c;
  }

  static int health(RawConnection& c) {
    c.send("GET /healthz HTTP/1.1\r\nHost: preview.test\r\n\r\n");
    auto r = c.read_response();
    return r ? r->status : 0;
  }

  json::object certificate() {
    Answer a = sd().get("/v1/certificates");
    if (!a.json.is_object()) return {};
    return a.json.as_object().at("certificates").as_array().at(0).as_object();
  }

  std::string dir_;
  Pem ca_;
  Pem first_;
};

TEST_F(TlsFilesTest, ServesThePairAndSwapsItOnSighupOnlyWhenItIsGood) {
  auto before = connect();
  ASSERT_TRUE(before);
  const std::string first_serial = before->peer_serial();
  // /healthz of a non-preview host the certificate covers.
  EXPECT_EQ(health(*before), 200);
  json::object cert = certificate();
  EXPECT_EQ(str_of(cert, "source"), "files");
  EXPECT_EQ(str_of(cert, "status"), "valid");
  EXPECT_EQ(json::serialize(cert.at("paths")),
            "[\"" + dir_ + "/cert.pem\",\"" + dir_ + "/key.pem\"]");

  // A key that does not match: the reload is refused with the reason logged, and the old
  // pair keeps serving.
  Pem other = make_leaf(ca_, kNames);
  install(Pem{other.cert, first_.key});
  sd().signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] {
    return sd().log().find("tls.files.key: the key does not match the certificate") != std::string::npos;
  }, 10s)) << sd().log();
  auto still = connect();
  ASSERT_TRUE(still);
  EXPECT_EQ(still->peer_serial(), first_serial);

  // A good pair: new handshakes get it, the open connection carries on.
  install(other);
  sd().signal(SIGHUP);
  std::unique_ptr<RawConnection> after;
  ASSERT_TRUE(wait_until([&] {
    after = connect();
    return after && after->peer_serial() != first_serial;
  }, 10s)) << "new handshakes never got the new pair";
  EXPECT_EQ(str_of(certificate(), "status"), "valid");
  EXPECT_EQ(health(*before), 200);
  EXPECT_EQ(before->peer_serial(), first_serial);
  Answer m = sd().get("/metrics");
  EXPECT_NE(m.body.find("sandboxd_tls_reloads_total{result=\"ok\"} 2"), std::string::npos);
}

}  // namespace
}  // namespace sandboxd::testing
