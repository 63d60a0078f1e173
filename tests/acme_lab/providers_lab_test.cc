// Issuance through the exec and httpreq providers against the lab: the exec hook is a real
// program (sh + nsupdate with the lab's TSIG key), the httpreq endpoint a small HTTP server
// written for the test that applies the records to BIND.
#include "acme/issuer.h"
#include "acme/storage.h"
#include "lab_fixture.h"
#include "support/http_test_server.h"
#include "support/test_pki.h"

#include <boost/json/parse.hpp>
#include <sys/stat.h>

namespace sandboxd::acme::testing {
namespace {

using namespace std::chrono_literals;

TEST(AcmeLabProviders, ExecHookWithNsupdate) {
  AcmeLab lab;
  TempDataDir data;
  const std::string log = data.path() + "/hook.log";
  const std::string hook = data.path() + "/dns-hook.sh";
  write_file(hook,
             "#!/bin/sh\n"
             "# lego-compatible exec hook: present|cleanup <fqdn> <value>\n"
             "set -e\n"
             "echo \"$1 $2\" >> " + log + "\n"
             "case \"$1\" in\n"
             "  present) change=\"update add $2 60 TXT \\\"$3\\\"\" ;;\n"
             "  cleanup) change=\"update delete $2 TXT \\\"$3\\\"\" ;;\n"
             "  *) exit 2 ;;\n"
             "esac\n"
             "printf 'server 127.0.0.1 " + std::to_string(lab.dns_port()) +
             "\\nzone preview.test.\\n%s\\nsend\\n' \"$change\" | nsupdate -t 5 -k " +
             lab.dir() + "/bind/tsig.key\n");
  ::chmod(hook.c_str(), 0700);
  auto dns = make_exec_provider({.command = hook, .timeout = 20s});
  ASSERT_TRUE(dns.has_value()) << dns.error().message();
  auto storage = make_file_storage(data.acme());
  Issuer issuer(lab_issuer_options(lab), **dns, *storage);
  auto r = issuer.obtain();
  ASSERT_TRUE(r.has_value()) << r.error().code << ": " << r.error().message;
  EXPECT_EQ(verify_chain(r->bundle.chain_pem, lab.root_pem(), "preview.test"), "");
  EXPECT_EQ(read_file(log),
            "present _acme-challenge.preview.test.\npresent _acme-challenge.preview.test.\n"
            "cleanup _acme-challenge.preview.test.\ncleanup _acme-challenge.preview.test.\n");
  EXPECT_TRUE(lab.txt(kChallengeName).empty());
}

TEST(AcmeLabProviders, HttpreqEndpointBackedByBind) {
  AcmeLab lab;
  TempDataDir data;
  auto bind = lab_rfc2136(lab);
  std::mutex mu;
  HttpTestServer endpoint([&](const TestRequest& req) {
    if (req.headers.count("authorization") == 0 ||
        req.headers.at("authorization") != "Basic bGFiOmxhYi1wYXNzd29yZA==") {  // lab:lab-password
      return TestResponse{401, "{}"};
    }
    const auto body = boost::json::parse(req.body).as_object();
    const std::string fqdn(body.at("fqdn").as_string());
    const std::string value(body.at("value").as_string());
    std::lock_guard lock(mu);
    const Status s = req.target == "/present" ? bind->present(fqdn, value) : bind->cleanup(fqdn, value);
    return s ? TestResponse{200, "{}"} : TestResponse{500, s.error().detail};
  });
  auto storage = make_file_storage(data.acme());

  auto refused = make_httpreq_provider({.url = endpoint.url(), .username = "lab", .password = "nope"});
  Issuer bad(lab_issuer_options(lab), **refused, *storage);
  auto r0 = bad.obtain();
  ASSERT_FALSE(r0.has_value());
  EXPECT_EQ(r0.error().code, "dns_auth");

  auto dns = make_httpreq_provider({.url = endpoint.url(), .username = "lab", .password = "lab-password"});
  ASSERT_TRUE(dns.has_value());
  Issuer issuer(lab_issuer_options(lab), **dns, *storage);
  auto r = issuer.obtain();
  ASSERT_TRUE(r.has_value()) << r.error().code << ": " << r.error().message;
  EXPECT_EQ(verify_chain(r->bundle.chain_pem, lab.root_pem(), "app.preview.test"), "");
  std::size_t presents = 0;
  for (const auto& q : endpoint.requests()) presents += q.target == "/present" ? 1 : 0;
  EXPECT_EQ(presents, 3u);  // one refused, then two
  EXPECT_TRUE(lab.txt(kChallengeName).empty());
}

}  // namespace
}  // namespace sandboxd::acme::testing
