// Bearer-token authentication of the control API (SPEC §2.3).
#include "sandboxd_fixture.h"

namespace sandboxd::testing {
namespace {

constexpr const char* kAdmin = "admin-secret-0123456789";
constexpr const char* kReader = "reader-secret-0123456789";

class Auth : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = std::string("auth:\n"
                          "  required: true\n"
                          "  tokens:\n"
                          "    - name: admin\n"
                          "      secret: ") + kAdmin + "\n"
              "    - name: reader\n"
              "      secret: " + kReader + "\n"
              "      read_only: true\n";
    return c;
  }

  Answer as(const std::string& authorization, const std::string& method, const std::string& path,
            const std::string& body = "") {
    std::vector<std::string> headers;
    if (!authorization.empty()) headers.push_back("Authorization: " + authorization);
    return sd().call(method, path, body, headers);
  }
};

// GET /llm.txt is open and cacheable (SPEC §2.5.12); snapshot routes are routed, need a
// token, and answer 501 in their family's envelope with no side effect (SPEC §2.8).
TEST_F(Auth, LlmTxtIsOpenAndSnapshotRoutesAre501AfterAuthentication) {
  Answer llm = as("", "GET", "/llm.txt");
  EXPECT_EQ(llm.status, 200);
  EXPECT_EQ(llm.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(llm.header("cache-control"), "public, max-age=300");
  EXPECT_NE(llm.body.find("POST /v1/sandboxes"), std::string::npos) << llm.body;

  EXPECT_EQ(as("", "POST", "/v1/snapshots").status, 401);
  const std::string admin = std::string("Bearer ") + kAdmin;
  Answer v1 = as(admin, "POST", "/v1/snapshots", "not even json");
  EXPECT_EQ(v1.status, 501) << v1.body;
  EXPECT_EQ(v1.error_code(), "not_implemented");
  EXPECT_EQ(v1.json.at("error").at("retryable"), json::value(false)) << v1.body;
  EXPECT_EQ(as(admin, "GET", "/v1/snapshots/01KZ3NDEKTSV4RRFFQ69G5FAVB").status, 501);
  EXPECT_EQ(as(admin, "DELETE", "/v1/snapshots/anything").status, 501);
  Answer legacy = as(admin, "POST", "/sandbox/01KZ3NDEKTSV4RRFFQ69G5FAVB/restore");
  EXPECT_EQ(legacy.status, 501);
  EXPECT_EQ(legacy.body, R"({"error":"snapshots are not available in this version","code":"not_implemented"})");
  EXPECT_EQ(as(std::string("Bearer ") + kReader, "POST", "/v1/snapshots").status, 403);
  EXPECT_EQ(as(admin, "GET", "/v1/sandboxes").json.at("sandboxes").as_array().size(), 0u);
}

TEST_F(Auth, TokensAreCheckedOnEveryRouteButTheOpenOnes) {
  // Open routes need nothing (the fixture's readiness wait already went through /readyz).
  EXPECT_EQ(as("", "GET", "/healthz").status, 200);
  EXPECT_EQ(as("", "GET", "/readyz").status, 200);
  EXPECT_EQ(as("Bearer wrong-token-but-open-route", "GET", "/healthz").status, 200);

  // Missing: 401 with a challenge, in the family's envelope.
  Answer v1 = as("", "GET", "/v1/sandboxes");
  EXPECT_EQ(v1.status, 401);
  EXPECT_EQ(v1.header("www-authenticate"), R"(Bearer realm="sandboxd")");
  EXPECT_EQ(v1.error_code(), "unauthorized") << v1.body;
  EXPECT_EQ(v1.json.at("error").at("retryable"), json::value(false));
  Answer legacy = as("", "GET", "/sandboxes");
  EXPECT_EQ(legacy.status, 401);
  EXPECT_EQ(legacy.body, R"({"error":"unauthorized","code":"unauthorized"})");
  EXPECT_EQ(legacy.header("www-authenticate"), R"(Bearer realm="sandboxd")");
  // Also before a 404 or a body check: nothing is revealed to anonymous callers.
  EXPECT_EQ(as("", "GET", "/v1/no-such-route").status, 401);
  EXPECT_EQ(as("", "POST", "/v1/sandboxes", "not json").status, 401);

  // Wrong, malformed or other-scheme tokens: 401 saying the token is invalid.
  for (const std::string& bad : {std::string("Bearer not-a-configured-secret"),
                                std::string("Bearer ") + kAdmin + "x", std::string("Basic abc"),
                                std::string("Bearer"), std::string(kAdmin)}) {
    Answer a = as(bad, "GET", "/v1/sandboxes");
    EXPECT_EQ(a.status, 401) << bad;
    EXPECT_NE(a.header("www-authenticate").find(R"(error="invalid_token")"), std::string::npos)
        << bad << ": " << a.header("www-authenticate");
    EXPECT_EQ(a.body.find(kAdmin), std::string::npos);
  }

  // Two Authorization fields are one malformed value, whichever comes first.
  Answer twice = sd().call("GET", "/v1/sandboxes", "",
                           {std::string("Authorization: Bearer ") + kAdmin,
                            std::string("Authorization: Bearer ") + kReader});
  EXPECT_EQ(twice.status, 401) << twice.body;

  // The scheme is case-insensitive.
  EXPECT_EQ(as(std::string("bearer ") + kAdmin, "GET", "/v1/sandboxes").status, 200);
  EXPECT_EQ(as(std::string("BEARER ") + kReader, "GET", "/sandboxes").status, 200);

  // A read-only token reads but cannot change anything: 403 naming the token.
  Answer denied = as(std::string("Bearer ") + kReader, "POST", "/v1/sandboxes",
                     R"({"project":{"id":"p","user_id":"u"}})");
  EXPECT_EQ(denied.status, 403) << denied.body;
  EXPECT_EQ(denied.error_code(), "forbidden");
  EXPECT_NE(denied.body.find("reader"), std::string::npos) << denied.body;
  Answer legacy_denied = as(std::string("Bearer ") + kReader, "POST", "/sandbox", "{}");
  EXPECT_EQ(legacy_denied.status, 403);
  EXPECT_EQ(legacy_denied.error_code(), "forbidden") << legacy_denied.body;
  EXPECT_EQ(sd().get("/v1/sandboxes").status, 401);

  // The admin token can.
  Answer made = as(std::string("Bearer ") + kAdmin, "POST", "/v1/sandboxes",
                   R"({"project":{"id":"p","user_id":"u"}})");
  ASSERT_EQ(made.status, 201) << made.body;
  std::string id = made.str("id");
  EXPECT_EQ(as(std::string("Bearer ") + kReader, "GET", "/v1/sandboxes/" + id).status, 200);
  EXPECT_EQ(as(std::string("Bearer ") + kReader, "DELETE", "/v1/sandboxes/" + id).status, 403);
  EXPECT_EQ(as(std::string("Bearer ") + kReader, "POST", "/v1/sandboxes/" + id + "/stop").status,
            403);
  EXPECT_EQ(as(std::string("Bearer ") + kReader, "POST", "/sandbox/" + id + "/purge").status, 403);
  EXPECT_EQ(as("", "DELETE", "/v1/sandboxes/" + id).status, 401);
  EXPECT_EQ(as(std::string("Bearer ") + kAdmin, "GET", "/v1/sandboxes/" + id).str("status"),
            "running");
  EXPECT_EQ(as(std::string("Bearer ") + kAdmin, "DELETE", "/v1/sandboxes/" + id).status, 204);
  // The secrets never reach the log.
  std::string log = sd().log();
  EXPECT_EQ(log.find(kAdmin), std::string::npos);
  EXPECT_EQ(log.find(kReader), std::string::npos);
}

class OptionalAuth : public Auth {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c = Auth::config();
    c.extra.replace(c.extra.find("required: true"), 14, "required: false");
    return c;
  }
};

TEST_F(OptionalAuth, NoTokenIsAllowedButAWrongOneIsNot) {
  EXPECT_EQ(as("", "GET", "/v1/sandboxes").status, 200);
  Answer wrong = as("Bearer not-a-configured-secret", "GET", "/v1/sandboxes");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_NE(wrong.header("www-authenticate").find("invalid_token"), std::string::npos);
  EXPECT_EQ(as(std::string("Bearer ") + kReader, "POST", "/sandbox", "{}").status, 403);
}

}  // namespace
}  // namespace sandboxd::testing
