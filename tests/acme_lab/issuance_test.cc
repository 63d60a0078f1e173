// One issuance against the lab, then every failure path of SPEC §10.1 that must still clean
// up: the TXT records are checked by asking BIND directly.
#include "acme/issuer.h"
#include "acme/storage.h"
#include "lab_fixture.h"
#include "support/test_pki.h"

#include <sys/stat.h>

#include <iostream>

namespace sandboxd::acme::testing {
namespace {

using namespace std::chrono_literals;

std::int64_t ms_between(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - a)
      .count();
}

void expect_no_leftovers(const AcmeLab& lab, Storage& storage) {
  EXPECT_TRUE(lab.txt(kChallengeName).empty()) << "TXT records left at " << kChallengeName;
  auto pending = storage.load("pending.json");
  ASSERT_TRUE(pending.has_value());
  EXPECT_FALSE(pending->has_value()) << "pending.json still lists: " << pending->value_or("");
}

TEST(AcmeLabIssuance, ObtainsWildcardAndApexChainedToPebblesRoot) {
  AcmeLab lab;
  TempDataDir data;
  auto storage = make_file_storage(data.acme());
  auto dns = lab_rfc2136(lab);
  Issuer issuer(lab_issuer_options(lab), *dns, *storage);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = issuer.obtain();
  const auto took = ms_between(t0);
  ASSERT_TRUE(r.has_value()) << r.error().code << " at " << r.error().step << ": " << r.error().message;

  std::cout << "[ timing ] issuance " << took << " ms:";
  for (const auto& [step, ms] : r->step_ms) std::cout << " " << step << "=" << ms;
  std::cout << "\n";
  EXPECT_LT(took, 30'000);

  const auto& b = r->bundle;
  std::vector<std::string> names = b.names;
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"*.preview.test", "preview.test"}));
  EXPECT_EQ(b.key_type, "ec256");
  EXPECT_TRUE(b.issuer.starts_with("CN=Pebble Intermediate CA")) << b.issuer;
  EXPECT_GT(b.not_after, std::chrono::system_clock::now());
  EXPECT_FALSE(r->account_url.empty());

  const std::string root = lab.root_pem();
  EXPECT_EQ(verify_chain(b.chain_pem, root, "app.preview.test"), "");
  EXPECT_EQ(verify_chain(b.chain_pem, root, "preview.test"), "");
  EXPECT_NE(verify_chain(b.chain_pem, root, "a.b.preview.test"), "");  // one label only
  EXPECT_NE(verify_chain(b.chain_pem, make_ca("stranger").cert, "app.preview.test"), "");

  // pebble really asked BIND for the records, and none are left.
  EXPECT_NE(lab.named_log().find("_acme-challenge.preview.test IN TXT"), std::string::npos);
  expect_no_leftovers(lab, *storage);

  // The account is stored privately; a second issuance reuses it.
  struct stat st {};
  const std::string account_dir = data.acme() + "/" + account_storage_prefix(lab.directory_url());
  ASSERT_EQ(::stat((account_dir + "/account.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Issuer again(lab_issuer_options(lab), *dns, *storage);
  auto r2 = again.obtain();
  ASSERT_TRUE(r2.has_value()) << r2.error().message;
  EXPECT_EQ(r2->account_url, r->account_url);
  EXPECT_NE(r2->bundle.serial, b.serial);
}

TEST(AcmeLabIssuance, RegistersAgainWhenTheCaForgotTheStoredAccount) {
  AcmeLab lab;
  TempDataDir data;
  auto storage = make_file_storage(data.acme());
  auto dns = lab_rfc2136(lab);
  Issuer first(lab_issuer_options(lab), *dns, *storage);
  auto r1 = first.obtain();
  ASSERT_TRUE(r1.has_value()) << r1.error().message;

  lab.stop_pebble();  // a new pebble knows no account
  lab.start_pebble();
  Issuer second(lab_issuer_options(lab), *dns, *storage);
  auto r2 = second.obtain();
  ASSERT_TRUE(r2.has_value()) << r2.error().code << ": " << r2.error().message;
  EXPECT_NE(r2->account_url, r1->account_url);
  EXPECT_EQ(verify_chain(r2->bundle.chain_pem, lab.root_pem(), "preview.test"), "");
  auto stored = storage->load(account_storage_prefix(lab.directory_url()) + "/account.json");
  ASSERT_TRUE(stored.has_value() && stored->has_value());
  EXPECT_NE(stored->value().find(r2->account_url), std::string::npos);
}

TEST(AcmeLabIssuance, InvalidChallengeCleansUpBothValues) {
  AcmeLab lab;
  TempDataDir data;
  auto storage = make_file_storage(data.acme());
  // The second value presented is wrong: pebble finds it missing and fails that authorization.
  FaultyProvider dns(lab_rfc2136(lab), [](int call, const std::string& v) {
    return call == 1 ? "wrong-" + v : v;
  });
  auto opts = lab_issuer_options(lab);
  opts.propagation.check = PropagationCheck::off;  // the gate would never pass
  Issuer issuer(opts, dns, *storage);
  auto r = issuer.obtain();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "challenge_invalid") << r.error().message;
  EXPECT_EQ(r.error().step, "validation");
  EXPECT_NE(r.error().message.find("invalid"), std::string::npos) << r.error().message;
  expect_no_leftovers(lab, *storage);
}

TEST(AcmeLabIssuance, PropagationTimeoutCleansUpAndAnswersNothing) {
  AcmeLab lab;
  TempDataDir data;
  auto storage = make_file_storage(data.acme());
  // The second value is never published, so the authoritative check cannot pass.
  FaultyProvider dns(lab_rfc2136(lab), [](int call, const std::string& v) {
    return call == 1 ? std::string() : v;
  });
  auto opts = lab_issuer_options(lab);
  opts.propagation.timeout = 1500ms;
  Issuer issuer(opts, dns, *storage);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = issuer.obtain();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "propagation_timeout") << r.error().message;
  EXPECT_EQ(r.error().step, "propagation");
  EXPECT_NE(r.error().message.find("check: off"), std::string::npos) << r.error().message;
  EXPECT_LT(ms_between(t0), 10'000);
  expect_no_leftovers(lab, *storage);
}

TEST(AcmeLabIssuance, WrongTsigSecretIsAClearDnsAuthError) {
  AcmeLab lab;
  TempDataDir data;
  auto storage = make_file_storage(data.acme());
  const std::string wrong = "c2VjcmV0LXRoYXQtYmluZC1kb2VzLW5vdC1rbm93LTEyMzQ=";
  auto dns = lab_rfc2136(lab, wrong);

  auto direct = dns->present(kChallengeName, "value");
  ASSERT_FALSE(direct);
  EXPECT_EQ(direct.error().code, Errc::invalid_argument);
  EXPECT_NE(direct.error().detail.find("tsig_secret"), std::string::npos) << direct.error().detail;
  EXPECT_EQ(direct.error().detail.find(wrong), std::string::npos);

  Issuer issuer(lab_issuer_options(lab), *dns, *storage);
  auto r = issuer.obtain();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "dns_auth");
  EXPECT_EQ(r.error().step, "dns_present");
  EXPECT_NE(r.error().message.find("NOTAUTH"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find(wrong), std::string::npos);
  EXPECT_TRUE(lab.txt(kChallengeName).empty());
  // Nothing was added, but the value stays in pending.json until a removal succeeds.
  auto pending = storage->load("pending.json");
  ASSERT_TRUE(pending.has_value());
  EXPECT_TRUE(pending->has_value());

  // With the right key the leftover goes away at the start of the next attempt.
  auto good = lab_rfc2136(lab);
  Issuer fixed(lab_issuer_options(lab), *good, *storage);
  EXPECT_TRUE(fixed.cleanup_leftovers());
  expect_no_leftovers(lab, *storage);
}

TEST(AcmeLabIssuance, SurvivesPebbleRejectingTwentyPercentOfNonces) {
  AcmeLab lab(LabOptions{.nonce_reject_percent = 20});
  TempDataDir data;
  auto storage = make_file_storage(data.acme());
  auto dns = lab_rfc2136(lab);
  Issuer issuer(lab_issuer_options(lab), *dns, *storage);
  auto r = issuer.obtain();
  ASSERT_TRUE(r.has_value()) << r.error().code << ": " << r.error().message;
  EXPECT_EQ(verify_chain(r->bundle.chain_pem, lab.root_pem(), "x.preview.test"), "");
  expect_no_leftovers(lab, *storage);
}

TEST(AcmeLabIssuance, ExternalAccountBindingWhenTheCaRequiresIt) {
  AcmeLab lab(LabOptions{.require_eab = true});
  TempDataDir data;
  auto storage = make_file_storage(data.acme());
  auto dns = lab_rfc2136(lab);

  Issuer without(lab_issuer_options(lab), *dns, *storage);
  auto refused = without.obtain();
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, "account");
  EXPECT_NE(refused.error().message.find("acme.eab"), std::string::npos) << refused.error().message;

  auto opts = lab_issuer_options(lab);
  opts.eab_kid = lab.eab_kid();
  opts.eab_hmac = "AAAA" + lab.eab_hmac().substr(4);  // a wrong MAC key is refused
  Issuer wrong(opts, *dns, *storage);
  auto bad = wrong.obtain();
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, "account") << bad.error().message;

  opts.eab_hmac = lab.eab_hmac();
  Issuer with(opts, *dns, *storage);
  auto r = with.obtain();
  ASSERT_TRUE(r.has_value()) << r.error().code << ": " << r.error().message;
  expect_no_leftovers(lab, *storage);
}

TEST(AcmeLabIssuance, CancelStopsAWaitingAttemptAndCleansUp) {
  AcmeLab lab;
  TempDataDir data;
  auto storage = make_file_storage(data.acme());
  FaultyProvider dns(lab_rfc2136(lab), [](int call, const std::string& v) {
    return call == 1 ? std::string() : v;  // the gate waits forever (until the timeout)
  });
  auto opts = lab_issuer_options(lab);
  opts.propagation.timeout = 60s;
  Issuer issuer(opts, dns, *storage);
  std::thread canceller([&] {
    std::this_thread::sleep_for(1500ms);
    issuer.cancel();
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = issuer.obtain();
  canceller.join();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "cancelled");
  EXPECT_LT(ms_between(t0), 10'000);
  expect_no_leftovers(lab, *storage);
}

}  // namespace
}  // namespace sandboxd::acme::testing
