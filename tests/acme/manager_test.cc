// CertificateManager without a CA: what it does with the certificate it finds in storage.
// The directory URL points at a closed loopback port, so any attempt fails fast.
#include "acme/manager.h"
#include "support/test_pki.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <sys/stat.h>
#include <thread>

namespace sandboxd::acme {
namespace {

using namespace std::chrono_literals;

const std::vector<std::string> kNames = {"*.preview.test", "preview.test"};

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/acme-manager.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    storage_ = make_file_storage(dir_ + "/acme");
    ca_ = testing::make_ca("Manager Test CA");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void store_pair(const testing::Pem& leaf) {
    ASSERT_TRUE(storage_->store("certs/preview.test/key.pem", leaf.key));
    ASSERT_TRUE(storage_->store("certs/preview.test/cert.pem", leaf.cert + ca_.cert));
  }

  ManagerOptions options(std::vector<std::string> names = kNames) {
    ManagerOptions o;
    o.issuer.directory_url = "https://127.0.0.1:1/dir";
    o.issuer.names = std::move(names);
    o.issuer.http_timeout = 2s;
    o.cert_name = "preview.test";
    o.clock = &clock_;
    o.random01 = [] { return 0.0; };
    return o;
  }

  std::unique_ptr<DnsProvider> provider() {
    auto p = make_httpreq_provider({.url = "http://127.0.0.1:1"});
    return std::move(*p);
  }

  template <class Pred>
  static bool eventually(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return pred();
  }

  std::string dir_;
  std::shared_ptr<Storage> storage_;
  testing::Pem ca_;
  ManualClock clock_{std::chrono::system_clock::now()};
};

TEST_F(ManagerTest, PublishesTheStoredPairAtStartAndReportsItsLifecycle) {
  const auto leaf = testing::make_leaf(ca_, {"DNS:*.preview.test", "DNS:preview.test"}, 30);
  store_pair(leaf);
  std::vector<std::shared_ptr<const CertificateBundle>> got;
  CertificateManager mgr(options(), provider(), storage_,
                         [&](std::shared_ptr<const CertificateBundle> b) { got.push_back(b); });
  ASSERT_TRUE(mgr.start());
  ASSERT_EQ(got.size(), 1u);  // before start() returned
  EXPECT_EQ(got[0]->chain_pem, leaf.cert + ca_.cert);
  EXPECT_EQ(mgr.current(), got[0]);

  CertificateStatus s = mgr.status();
  EXPECT_EQ(s.status, "valid");
  EXPECT_EQ(s.issuer, "CN=Manager Test CA");
  ASSERT_TRUE(s.next_renewal_at && s.not_before && s.not_after);
  // random01 = 0: no jitter, exactly ⅔ (0.6667) of the lifetime.
  const auto life = std::chrono::duration_cast<std::chrono::milliseconds>(*s.not_after - *s.not_before);
  EXPECT_EQ(*s.next_renewal_at,
            *s.not_before + std::chrono::milliseconds(static_cast<std::int64_t>(life.count() * 0.6667)));
  EXPECT_FALSE(s.in_progress);
  EXPECT_EQ(s.consecutive_failures, 0);

  clock_.set_wall(*s.next_renewal_at + 1s);
  EXPECT_EQ(mgr.status().status, "renewing");
  clock_.set_wall(*s.not_after + 1s);
  EXPECT_EQ(mgr.status().status, "expired");
  mgr.stop();
  EXPECT_EQ(got.size(), 1u);
}

TEST_F(ManagerTest, IgnoresAPairWhoseKeyDoesNotMatchAndTriesToIssue) {
  const auto one = testing::make_leaf(ca_, {"DNS:*.preview.test", "DNS:preview.test"});
  const auto two = testing::make_leaf(ca_, {"DNS:*.preview.test", "DNS:preview.test"});
  ASSERT_TRUE(storage_->store("certs/preview.test/key.pem", two.key));
  ASSERT_TRUE(storage_->store("certs/preview.test/cert.pem", one.cert));
  int published = 0;
  auto opts = options();
  opts.backoff = BackoffPolicy{.base = 1h, .cap = 1h};
  CertificateManager mgr(opts, provider(), storage_, [&](auto) { ++published; });
  ASSERT_TRUE(mgr.start());
  EXPECT_EQ(published, 0);
  ASSERT_TRUE(eventually([&] { return mgr.status().consecutive_failures == 1; }));
  const CertificateStatus s = mgr.status();
  EXPECT_EQ(s.status, "missing");
  ASSERT_TRUE(s.last_error.has_value());
  EXPECT_EQ(s.last_error->code, "ca_unavailable");
  EXPECT_EQ(s.last_error->step, "directory");
  ASSERT_TRUE(s.next_attempt_at.has_value());
  EXPECT_EQ(*s.next_attempt_at - s.last_error->at, std::chrono::milliseconds(54min));  // 1 h − 10 %
  mgr.stop();

  // The failure count and the backoff survive a restart (meta.json).
  CertificateManager again(opts, provider(), storage_, [&](auto) { ++published; });
  ASSERT_TRUE(again.start());
  EXPECT_EQ(again.status().consecutive_failures, 1);
  EXPECT_EQ(again.status().last_error->code, "ca_unavailable");
  again.stop();
}

TEST_F(ManagerTest, NamesThatDifferFromTheConfigAreIssuedAtOnce) {
  store_pair(testing::make_leaf(ca_, {"DNS:*.old.test", "DNS:old.test"}, 30));
  int published = 0;
  CertificateManager mgr(options(), provider(), storage_, [&](auto) { ++published; });
  ASSERT_TRUE(mgr.start());
  EXPECT_EQ(published, 1);  // the old one still serves meanwhile
  ASSERT_TRUE(eventually([&] { return mgr.status().consecutive_failures >= 1; }));
  const CertificateStatus s = mgr.status();
  EXPECT_EQ(s.status, "error");  // a certificate, and the last attempt failed
  EXPECT_NE(mgr.current(), nullptr);
  mgr.stop();
}

TEST_F(ManagerTest, RenewNowSkipsTheBackoff) {
  int published = 0;
  auto opts = options();
  opts.backoff = BackoffPolicy{.base = 1h, .cap = 1h};
  CertificateManager mgr(opts, provider(), storage_, [&](auto) { ++published; });
  ASSERT_TRUE(mgr.start());
  ASSERT_TRUE(eventually([&] { return mgr.status().consecutive_failures == 1; }));
  ASSERT_TRUE(eventually([&] { return !mgr.status().in_progress; }));
  EXPECT_EQ(mgr.renew_now(), RenewRequest::started);
  ASSERT_TRUE(eventually([&] { return mgr.status().consecutive_failures == 2; }));
  mgr.stop();
}

TEST_F(ManagerTest, RemovesLeftoverTxtValuesWhenItStarts) {
  store_pair(testing::make_leaf(ca_, {"DNS:*.preview.test", "DNS:preview.test"}, 30));
  ASSERT_TRUE(storage_->store(
      "pending.json", R"([{"fqdn":"_acme-challenge.preview.test.","value":"old-value","provider":"exec"}])"));
  const std::string log = dir_ + "/hook.log";
  const std::string hook = dir_ + "/hook.sh";
  testing::write_file(hook, "#!/bin/sh\necho \"$1 $2 $3\" >> " + log + "\n");
  ::chmod(hook.c_str(), 0700);
  auto p = make_exec_provider({.command = hook});
  ASSERT_TRUE(p.has_value());
  CertificateManager mgr(options(), std::move(*p), storage_, nullptr);
  ASSERT_TRUE(mgr.start());
  ASSERT_TRUE(eventually([&] {
    auto pending = storage_->load("pending.json");
    return pending && !pending->has_value();
  }));
  EXPECT_EQ(testing::read_file(log), "cleanup _acme-challenge.preview.test. old-value\n");
  mgr.stop();
}

}  // namespace
}  // namespace sandboxd::acme
