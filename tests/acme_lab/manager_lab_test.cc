// The CertificateManager against the lab: first issuance, storage, the callback, reload
// without re-issuing, renew_now, renewal of a short-lived certificate, and backoff while the
// CA is down (visible in status) followed by recovery.
#include "acme/manager.h"
#include "ari.h"
#include "base/json.h"
#include "http_client.h"
#include "lab_fixture.h"
#include "support/http_test_server.h"
#include "support/test_pki.h"

#include <boost/json/serialize.hpp>

#include <sys/stat.h>

#include <condition_variable>
#include <mutex>

namespace sandboxd::acme::testing {
namespace {

using namespace std::chrono_literals;

// Collects the certificates handed to the callback.
class Published {
 public:
  CertificateManager::OnCertificate callback() {
    return [this](std::shared_ptr<const CertificateBundle> b) {
      std::lock_guard lock(mu_);
      got_.push_back(std::move(b));
      cv_.notify_all();
    };
  }
  // Waits until `n` certificates arrived; false at the deadline.
  bool wait_for(std::size_t n, std::chrono::seconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return got_.size() >= n; });
  }
  std::vector<std::shared_ptr<const CertificateBundle>> all() {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<const CertificateBundle>> got_;
};

template <class Pred>
bool eventually(std::chrono::seconds limit, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

ManagerOptions manager_options(const AcmeLab& lab) {
  ManagerOptions o;
  o.issuer = lab_issuer_options(lab);
  o.cert_name = "preview.test";
  return o;
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST(AcmeLabManager, IssuesStoresPublishesReloadsAndRenewsOnRequest) {
  AcmeLab lab;
  TempDataDir data;
  auto storage = make_file_storage(data.acme());
  Published published;
  std::string first_serial;
  {
    CertificateManager mgr(manager_options(lab), lab_rfc2136(lab), storage, published.callback());
    ASSERT_TRUE(mgr.start());
    ASSERT_TRUE(published.wait_for(1, 60s)) << "no certificate; status " << mgr.status().status;
    const auto cert = published.all().at(0);
    first_serial = cert->serial;
    EXPECT_EQ(mgr.current(), cert);
    EXPECT_EQ(verify_chain(cert->chain_pem, lab.root_pem(), "s-01h-3000.preview.test"), "");

    ASSERT_TRUE(eventually(10s, [&] { return !mgr.status().in_progress; }));
    const CertificateStatus s = mgr.status();
    EXPECT_EQ(s.status, "valid");
    EXPECT_EQ(s.name, "preview.test");
    EXPECT_EQ(s.domains, kNames);
    EXPECT_EQ(s.serial, cert->serial);
    EXPECT_EQ(s.consecutive_failures, 0);
    EXPECT_FALSE(s.last_error.has_value());
    EXPECT_FALSE(s.next_attempt_at.has_value());
    ASSERT_TRUE(s.next_renewal_at.has_value());
    ASSERT_TRUE(s.not_before && s.not_after);
    // ⅔ of the lifetime, minus at most 6 h of jitter.
    const auto life = *s.not_after - *s.not_before;
    const auto expected = *s.not_before + std::chrono::duration_cast<std::chrono::seconds>(life * 0.6667);
    EXPECT_LE(*s.next_renewal_at, expected + 1s);
    EXPECT_GE(*s.next_renewal_at, expected - 6h - 1s);
    EXPECT_TRUE(s.account_url.has_value());
    EXPECT_TRUE(s.last_success_at.has_value());

    const std::string certs = data.acme() + "/certs/preview.test";
    EXPECT_EQ(mode_of(data.acme()), 0700u);
    EXPECT_EQ(mode_of(certs), 0700u);
    for (const char* f : {"/key.pem", "/cert.pem", "/meta.json"}) EXPECT_EQ(mode_of(certs + f), 0600u) << f;
    EXPECT_EQ(read_file(certs + "/cert.pem"), cert->chain_pem);

    // An explicit renewal skips the wait and publishes a new certificate.
    EXPECT_EQ(mgr.renew_now(), RenewRequest::started);
    ASSERT_TRUE(published.wait_for(2, 60s));
    EXPECT_NE(published.all().at(1)->serial, first_serial);
    first_serial = published.all().at(1)->serial;
    mgr.stop();
  }

  // A new manager on the same storage serves the stored certificate at once and does not
  // issue again (its renewal is years away).
  Published again;
  CertificateManager mgr(manager_options(lab), lab_rfc2136(lab), storage, again.callback());
  ASSERT_TRUE(mgr.start());
  ASSERT_EQ(again.all().size(), 1u);  // published inside start()
  EXPECT_EQ(again.all().at(0)->serial, first_serial);
  const CertificateStatus s = mgr.status();
  EXPECT_EQ(s.status, "valid");
  EXPECT_FALSE(s.in_progress);
  mgr.stop();
  EXPECT_EQ(again.all().size(), 1u);
}

TEST(AcmeLabManager, RenewsAShortLivedCertificateAtHalfItsLifetime) {
  AcmeLab lab(LabOptions{.cert_validity_seconds = 16});
  TempDataDir data;
  Published published;
  CertificateManager mgr(manager_options(lab), lab_rfc2136(lab), make_file_storage(data.acme()),
                         published.callback());
  ASSERT_TRUE(mgr.start());
  ASSERT_TRUE(published.wait_for(1, 60s));
  const auto first = published.all().at(0);
  const auto s = mgr.status();
  ASSERT_TRUE(s.next_renewal_at.has_value());
  const auto half = first->not_before + (first->not_after - first->not_before) / 2;
  EXPECT_LE(*s.next_renewal_at, half + 1s);
  EXPECT_GE(*s.next_renewal_at, half - 2s);
  ASSERT_TRUE(published.wait_for(2, 60s)) << "no renewal; status " << mgr.status().status;
  EXPECT_NE(published.all().at(1)->serial, first->serial);
  mgr.stop();
}

TEST(AcmeLabManager, BacksOffWhileTheCaIsDownAndRecovers) {
  AcmeLab lab;
  lab.stop_pebble();
  TempDataDir data;
  Published published;
  auto opts = manager_options(lab);
  opts.backoff = BackoffPolicy{.base = 500ms, .cap = 2s};
  CertificateManager mgr(opts, lab_rfc2136(lab), make_file_storage(data.acme()), published.callback());
  ASSERT_TRUE(mgr.start());
  ASSERT_TRUE(eventually(30s, [&] { return mgr.status().consecutive_failures >= 2; }));
  const CertificateStatus s = mgr.status();
  EXPECT_EQ(s.status, "missing");
  ASSERT_TRUE(s.last_error.has_value());
  EXPECT_EQ(s.last_error->code, "ca_unavailable");
  EXPECT_EQ(s.last_error->step, "directory");
  EXPECT_NE(s.last_error->message.find("unreachable"), std::string::npos) << s.last_error->message;
  ASSERT_TRUE(s.last_attempt_at.has_value());
  if (s.next_attempt_at) {  // absent only if the next attempt already started
    const auto gap = *s.next_attempt_at - s.last_error->at;
    const auto expected = backoff_delay(s.consecutive_failures, 0.5, opts.backoff);
    EXPECT_GE(gap, expected * 9 / 10 - 5ms);
    EXPECT_LE(gap, expected * 11 / 10 + 5ms);
  }
  EXPECT_TRUE(published.all().empty());

  lab.start_pebble();
  ASSERT_TRUE(published.wait_for(1, 60s)) << "no recovery; last error "
                                          << mgr.status().last_error.value_or(LastError{}).message;
  ASSERT_TRUE(eventually(10s, [&] { return !mgr.status().in_progress; }));
  const CertificateStatus after = mgr.status();
  EXPECT_EQ(after.status, "valid");
  EXPECT_EQ(after.consecutive_failures, 0);
  EXPECT_FALSE(after.last_error.has_value());
  mgr.stop();
}

// SPEC §10.2 ARI. Debian's pebble (2.4) predates RFC 9773, so a FAKE stands in for the CA's
// ARI only: it serves pebble's directory with `renewalInfo` added and answers the renewal
// info itself; every other ACME request goes to pebble. The first certificate asked about
// gets a window a few seconds ahead, later ones a window a month away.
TEST(AcmeLabManager, TheAriWindowDecidesWhenToRenew) {
  AcmeLab lab;
  HttpClient http(HttpClientOptions{.ca_file = lab.https_ca_file(), .system_cas = false});
  auto dir = http.send({.method = "GET", .url = lab.directory_url(), .headers = {}, .body = {}});
  ASSERT_TRUE(dir && dir->status == 200);
  auto directory = parse_json_object(dir->body);
  ASSERT_TRUE(directory);
  std::mutex mu;
  std::vector<std::string> asked;
  HttpTestServer* self = nullptr;
  HttpTestServer fake([&](const TestRequest& r) -> TestResponse {
    if (r.target == "/dir") {
      boost::json::object d = *directory;
      d["renewalInfo"] = self->url() + "/ari";
      return {200, boost::json::serialize(d)};
    }
    if (r.target.rfind("/ari/", 0) == 0) {
      const std::string id = r.target.substr(5);
      std::lock_guard lock(mu);
      asked.push_back(id);
      const bool first = asked.front() == id;
      const auto now = std::chrono::system_clock::now();
      const auto start = first ? now + 2s : now + 30 * 24h;
      const auto end = first ? now + 4s : now + 31 * 24h;
      return {200, "{\"suggestedWindow\":{\"start\":\"" + format_rfc3339(start) + "\",\"end\":\"" +
                       format_rfc3339(end) + "\"}}"};
    }
    return {404, "{}"};
  });
  self = &fake;

  TempDataDir data;
  Published published;
  ManagerOptions opts = manager_options(lab);
  opts.issuer.directory_url = fake.url() + "/dir";
  CertificateManager mgr(opts, lab_rfc2136(lab), make_file_storage(data.acme()), published.callback());
  ASSERT_TRUE(mgr.start());
  ASSERT_TRUE(published.wait_for(1, 60s));
  const auto first = published.all().at(0);
  ASSERT_TRUE(eventually(20s, [&] { return mgr.status().renewal_method == "ari"; }));
  CertificateStatus s = mgr.status();
  ASSERT_TRUE(s.ari_window_start && s.ari_window_end && s.next_renewal_at);
  EXPECT_GE(*s.next_renewal_at, *s.ari_window_start);
  EXPECT_LE(*s.next_renewal_at, *s.ari_window_end);
  {
    std::lock_guard lock(mu);
    ASSERT_FALSE(asked.empty());
    EXPECT_EQ(asked.front(), ari_cert_id(first->chain_pem).value());
  }
  // The window, seconds ahead, is long before the ratio time: the renewal follows ARI.
  ASSERT_TRUE(published.wait_for(2, 30s)) << "no ARI-driven renewal";
  const auto second = published.all().at(1);
  EXPECT_NE(second->serial, first->serial);
  // The new certificate is asked about in turn and gets the month-away window.
  ASSERT_TRUE(eventually(20s, [&] {
    const CertificateStatus t = mgr.status();
    return t.serial == second->serial && t.renewal_method == "ari" && t.next_renewal_at &&
           *t.next_renewal_at > std::chrono::system_clock::now() + 29 * 24h;
  }));
  mgr.stop();
}

// Without `renewalInfo` (pebble itself) the ratio rule applies.
TEST(AcmeLabManager, WithoutAriTheRatioApplies) {
  AcmeLab lab;
  TempDataDir data;
  Published published;
  CertificateManager mgr(manager_options(lab), lab_rfc2136(lab), make_file_storage(data.acme()),
                         published.callback());
  ASSERT_TRUE(mgr.start());
  ASSERT_TRUE(published.wait_for(1, 60s));
  const CertificateStatus s = mgr.status();
  EXPECT_EQ(s.renewal_method, "ratio");
  EXPECT_FALSE(s.ari_window_start);
  mgr.stop();
}

}  // namespace
}  // namespace sandboxd::acme::testing
