// A private sandbox behind the real sandboxd and Docker Engine (SPEC §3.14, §2.7.13): an
// anonymous request gets 401 and starts no container; a token minted by the API, opened
// as the preview URL, turns into a cookie for that host only, which then wakes the sandbox
// and reaches the app.
#include "raw_http.h"
#include "sandboxd_fixture.h"

#include <gtest/gtest.h>

namespace sandboxd::testing {
namespace {

class PrivatePreviewTest : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = "auth:\n  preview:\n    secrets:\n"
              "      - kid: k1\n        secret: 0123456789abcdef0123456789abcdef\n";
    return c;
  }

  std::optional<RawResponse> preview(const std::string& host, const std::string& target,
                                     const std::string& extra = "") {
    RawConnection conn(sd().edge_port());
    conn.send("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n" + extra + "\r\n");
    return conn.read_response(false, std::chrono::seconds(60));
  }
};

TEST_F(PrivatePreviewTest, AnonymousIsRefusedWithoutAWakeAndAMintedTokenOpensTheHost) {
  const std::string id = create_v1("u1", "private", R"("visibility":"private")");
  ASSERT_FALSE(id.empty());
  const std::string other = create_v1("u1", "private-2", R"("visibility":"private")");
  ASSERT_FALSE(other.empty());
  ASSERT_TRUE(wait_init_ready(id));
  auto stopped = sd().post("/v1/sandboxes/" + id + "/stop");
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  const std::string since = engine_now();
  const std::string host = preview_host(id, 3000);

  auto r = preview(host, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(engine_container_starts("s-" + id, since), 0) << "an anonymous request woke it";
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "stopped");

  Answer minted = sd().post("/v1/sandboxes/" + id + "/preview-token", R"({"ttl_s":600})");
  ASSERT_EQ(minted.status, 200) << minted.body;
  const std::string url = minted.str("url");
  ASSERT_NE(url.find("?sandbox_token="), std::string::npos) << minted.body;
  EXPECT_FALSE(minted.str("expires_at").empty());
  EXPECT_EQ(engine_container_starts("s-" + id, since), 0) << "minting woke it";
  const std::string target = "/" + url.substr(url.find("?"));

  r = preview(host, target);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 302);
  EXPECT_EQ(r->headers["location"], "/");
  const std::string set = r->headers["set-cookie"];
  const std::string cookie = set.substr(0, set.find(';'));
  ASSERT_EQ(cookie.rfind("sandbox_preview=", 0), 0u) << set;
  EXPECT_EQ(set.find("Domain"), std::string::npos);

  // The cookie wakes the sandbox and reaches the app.
  r = preview(host, "/", "Cookie: " + cookie + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(engine_container_starts("s-" + id, since), 1);
  // It opens nothing else.
  r = preview(preview_host(other, 3000), "/", "Cookie: " + cookie + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);

  Answer m = sd().get("/metrics");
  EXPECT_NE(m.body.find("sandboxd_preview_auth_total{result=\"allowed\",via=\"query\",reason=\"\"} 1"),
            std::string::npos);
  EXPECT_NE(m.body.find("sandboxd_preview_auth_total{result=\"allowed\",via=\"cookie\",reason=\"\"} 1"),
            std::string::npos);
  // Minting is refused for a port the sandbox does not declare.
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/preview-token", R"({"port":9})").status, 400);
}

}  // namespace
}  // namespace sandboxd::testing
