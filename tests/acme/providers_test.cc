// The exec, httpreq and cloudflare providers against real local peers: a hook program
// written by the test, and small HTTP servers written for the test (the cloudflare one is a
// fake that follows Cloudflare's documented v4 API for DNS records).
#include "acme/dns_provider.h"
#include "support/http_test_server.h"
#include "support/test_pki.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>

namespace sandboxd::acme {
namespace {

using namespace std::chrono_literals;
using testing::HttpTestServer;
using testing::TestRequest;
using testing::TestResponse;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/acme-providers.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string write_hook(const TempDir& dir, const std::string& body) {
  const std::string path = dir.path() + "/hook.sh";
  testing::write_file(path, "#!/bin/sh\n" + body);
  ::chmod(path.c_str(), 0700);
  return path;
}

// --- exec ------------------------------------------------------------------------------

TEST(ExecProvider, CallsTheHookWithActionFqdnAndValueAndOnlyPath) {
  TempDir dir;
  const std::string log = dir.path() + "/calls.log";
  const std::string hook = write_hook(dir, "echo \"$1|$2|$3\" >> " + log + "\n"
                                           "env > " + dir.path() + "/env.$1\n");
  ::setenv("ACME_TEST_SECRET_TOKEN", "do-not-leak", 1);
  auto p = make_exec_provider({.command = hook, .timeout = 10s});
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ((*p)->name(), "exec");
  ASSERT_TRUE((*p)->present("_acme-challenge.preview.test.", "value-1"));
  ASSERT_TRUE((*p)->present("_acme-challenge.preview.test.", "value-2"));
  ASSERT_TRUE((*p)->cleanup("_acme-challenge.preview.test.", "value-1"));
  ::unsetenv("ACME_TEST_SECRET_TOKEN");
  EXPECT_EQ(testing::read_file(log),
            "present|_acme-challenge.preview.test.|value-1\n"
            "present|_acme-challenge.preview.test.|value-2\n"
            "cleanup|_acme-challenge.preview.test.|value-1\n");
  const std::string env = testing::read_file(dir.path() + "/env.present");
  EXPECT_NE(env.find("PATH="), std::string::npos);
  EXPECT_EQ(env.find("ACME_TEST_SECRET_TOKEN"), std::string::npos) << env;
}

TEST(ExecProvider, NonZeroExitIsAFailureCarryingTheOutput) {
  TempDir dir;
  const std::string hook = write_hook(dir, "echo 'zone preview.test refused the record' >&2\nexit 3\n");
  auto p = make_exec_provider({.command = hook, .timeout = 10s});
  ASSERT_TRUE(p.has_value());
  auto r = (*p)->present("_acme-challenge.preview.test.", "v");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().detail.find("status 3"), std::string::npos) << r.error().detail;
  EXPECT_NE(r.error().detail.find("refused the record"), std::string::npos) << r.error().detail;
}

TEST(ExecProvider, HookIsKilledAtTheTimeout) {
  TempDir dir;
  const std::string hook = write_hook(dir, "sleep 30\n");
  auto p = make_exec_provider({.command = hook, .timeout = 300ms});
  ASSERT_TRUE(p.has_value());
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*p)->present("_acme-challenge.preview.test.", "v");
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::timeout);
  EXPECT_LT(took, 5s);  // the sleep (in the hook's process group) is killed too
}

TEST(ExecProvider, RefusesARelativeOrMissingCommand) {
  EXPECT_FALSE(make_exec_provider({.command = "hook.sh"}).has_value());
  auto r = make_exec_provider({.command = "/nonexistent/hook"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
}

// --- httpreq ---------------------------------------------------------------------------

TEST(HttpreqProvider, PostsFqdnAndValueWithBasicAuth) {
  HttpTestServer server([](const TestRequest&) { return TestResponse{200, "{}"}; });
  auto p = make_httpreq_provider(
      {.url = server.url() + "/dns/", .username = "acme", .password = "s3cret-pass"});
  ASSERT_TRUE(p.has_value());
  ASSERT_TRUE((*p)->present("_acme-challenge.preview.test.", "abc"));
  ASSERT_TRUE((*p)->cleanup("_acme-challenge.preview.test.", "abc"));
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/dns/present");
  EXPECT_EQ(reqs[1].target, "/dns/cleanup");
  EXPECT_EQ(reqs[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(reqs[0].headers.at("authorization"), "Basic YWNtZTpzM2NyZXQtcGFzcw==");
  const auto body = boost::json::parse(reqs[0].body).as_object();
  EXPECT_EQ(body.at("fqdn").as_string(), "_acme-challenge.preview.test.");
  EXPECT_EQ(body.at("value").as_string(), "abc");
  EXPECT_EQ(body.size(), 2u);
}

TEST(HttpreqProvider, NoAuthHeaderWithoutUsername) {
  HttpTestServer server([](const TestRequest&) { return TestResponse{204, ""}; });
  auto p = make_httpreq_provider({.url = server.url()});
  ASSERT_TRUE(p.has_value());
  ASSERT_TRUE((*p)->present("_acme-challenge.a.test.", "v"));
  EXPECT_EQ(server.requests().at(0).headers.count("authorization"), 0u);
}

TEST(HttpreqProvider, RefusedCredentialsAreAnAuthErrorWithoutThePassword) {
  HttpTestServer server([](const TestRequest&) { return TestResponse{401, "{}"}; });
  auto p = make_httpreq_provider({.url = server.url(), .username = "u", .password = "hunter2-xyz"});
  ASSERT_TRUE(p.has_value());
  auto r = (*p)->present("_acme-challenge.a.test.", "v");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().detail.find("acme.dns.httpreq.username"), std::string::npos);
  EXPECT_EQ(r.error().detail.find("hunter2"), std::string::npos);
}

TEST(HttpreqProvider, ServerErrorsAndUnreachableAreUnavailable) {
  HttpTestServer server([](const TestRequest&) { return TestResponse{500, "boom"}; });
  auto p = make_httpreq_provider({.url = server.url()});
  auto r = (*p)->present("_acme-challenge.a.test.", "v");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().detail.find("500"), std::string::npos);

  std::string dead_url;
  {
    HttpTestServer gone([](const TestRequest&) { return TestResponse{}; });
    dead_url = gone.url();
  }
  auto q = make_httpreq_provider({.url = dead_url, .timeout = 2s});
  auto r2 = (*q)->present("_acme-challenge.a.test.", "v");
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, Errc::unavailable);
}

TEST(HttpreqProvider, RefusesANonHttpUrl) {
  EXPECT_FALSE(make_httpreq_provider({.url = "ftp://x"}).has_value());
}

// --- cloudflare (a fake that follows the documented v4 API) ----------------------------

class FakeCloudflare {
 public:
  FakeCloudflare()
      : server_([this](const TestRequest& r) { return handle(r); }) {}

  std::string url() const { return server_.url() + "/client/v4"; }
  std::map<std::string, std::pair<std::string, std::string>> records() {
    std::lock_guard lock(mu_);
    return records_;
  }

 private:
  static TestResponse ok(boost::json::value result) {
    boost::json::object o;
    o["success"] = true;
    o["errors"] = boost::json::array();
    o["result"] = std::move(result);
    return {200, boost::json::serialize(o)};
  }

  TestResponse handle(const TestRequest& r) {
    std::lock_guard lock(mu_);
    if (r.headers.count("authorization") == 0 || r.headers.at("authorization") != "Bearer good-token") {
      return {403, R"({"success":false,"errors":[{"code":9109,"message":"Invalid access token"}],"result":null})"};
    }
    const std::string prefix = "/client/v4";
    std::string target = r.target.substr(prefix.size());
    const auto q = target.find('?');
    const std::string path = target.substr(0, q);
    const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
    if (r.method == "GET" && path == "/zones") {
      boost::json::array zones;
      if (query == "name=preview.test&status=active") {
        boost::json::object z;
        z["id"] = "zone-1";
        z["name"] = "preview.test";
        zones.push_back(std::move(z));
      }
      return ok(std::move(zones));
    }
    if (path == "/zones/zone-1/dns_records" && r.method == "POST") {
      const auto body = boost::json::parse(r.body).as_object();
      const std::string id = "rec-" + std::to_string(++next_id_);
      records_[id] = {std::string(body.at("name").as_string()), std::string(body.at("content").as_string())};
      ttl_ = body.at("ttl").as_int64();
      boost::json::object rec = body;
      rec["id"] = id;
      return ok(std::move(rec));
    }
    if (path == "/zones/zone-1/dns_records" && r.method == "GET") {
      boost::json::array out;
      for (const auto& [id, rec] : records_) {
        if (query.find("name=" + rec.first) != std::string::npos &&
            query.find("content=" + rec.second) != std::string::npos) {
          boost::json::object o;
          o["id"] = id;
          o["name"] = rec.first;
          o["content"] = rec.second;
          o["type"] = "TXT";
          out.push_back(std::move(o));
        }
      }
      return ok(std::move(out));
    }
    if (path.starts_with("/zones/zone-1/dns_records/") && r.method == "DELETE") {
      const std::string id = path.substr(std::string("/zones/zone-1/dns_records/").size());
      if (records_.erase(id) == 0) {
        return {404, R"({"success":false,"errors":[{"code":81044,"message":"Record does not exist."}]})"};
      }
      boost::json::object o;
      o["id"] = id;
      return ok(std::move(o));
    }
    return {404, R"({"success":false,"errors":[{"code":7003,"message":"No route for that URI"}]})"};
  }

  std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>> records_;
  int next_id_ = 0;
  std::int64_t ttl_ = 0;
  HttpTestServer server_;
};

TEST(CloudflareProvider, FindsTheZoneAddsTwoValuesAndRemovesThemByValue) {
  FakeCloudflare cf;
  auto p = make_cloudflare_provider({.api_token = "good-token", .base_url = cf.url()});
  ASSERT_TRUE(p.has_value());
  const std::string fqdn = "_acme-challenge.preview.test.";
  ASSERT_TRUE((*p)->present(fqdn, "wild"));
  ASSERT_TRUE((*p)->present(fqdn, "apex"));
  auto recs = cf.records();
  ASSERT_EQ(recs.size(), 2u);  // added side by side, never replaced
  for (const auto& [id, rec] : recs) EXPECT_EQ(rec.first, "_acme-challenge.preview.test");
  ASSERT_TRUE((*p)->cleanup(fqdn, "wild"));
  recs = cf.records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs.begin()->second.second, "apex");

  // A new provider (the id was lost, e.g. a restart) finds the record by name and content.
  auto fresh = make_cloudflare_provider({.api_token = "good-token", .base_url = cf.url()});
  ASSERT_TRUE((*fresh)->cleanup(fqdn, "apex"));
  EXPECT_TRUE(cf.records().empty());
}

TEST(CloudflareProvider, UsesTheConfiguredZoneId) {
  FakeCloudflare cf;
  auto p = make_cloudflare_provider({.api_token = "good-token", .zone_id = "zone-1", .base_url = cf.url()});
  ASSERT_TRUE((*p)->present("_acme-challenge.preview.test.", "v"));
  EXPECT_EQ(cf.records().size(), 1u);
}

TEST(CloudflareProvider, BadTokenIsAnAuthErrorNamingTheKey) {
  FakeCloudflare cf;
  auto p = make_cloudflare_provider({.api_token = "wrong-token-123", .base_url = cf.url()});
  auto r = (*p)->present("_acme-challenge.preview.test.", "v");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().detail.find("Invalid access token"), std::string::npos);
  EXPECT_NE(r.error().detail.find("acme.dns.cloudflare.api_token"), std::string::npos);
  EXPECT_EQ(r.error().detail.find("wrong-token-123"), std::string::npos);
}

TEST(CloudflareProvider, UnknownZoneIsAConfigError) {
  FakeCloudflare cf;
  auto p = make_cloudflare_provider({.api_token = "good-token", .base_url = cf.url()});
  auto r = (*p)->present("_acme-challenge.elsewhere.example.", "v");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail.find("no active zone"), std::string::npos);
}

}  // namespace
}  // namespace sandboxd::acme
