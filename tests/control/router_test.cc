#include "router.h"

#include <gtest/gtest.h>

namespace sandboxd::control {
namespace {

class FixedReadiness : public ReadinessSource {
 public:
  std::vector<ReadyCheck> checks;
  std::vector<ReadyCheck> readiness() override { return checks; }
};

TEST(Router, HealthzIsPlainOk) {
  FixedReadiness ready;
  Response r = route({"GET", "/healthz"}, ready);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
}

TEST(Router, QueryStringDoesNotChangeTheRoute) {
  FixedReadiness ready;
  EXPECT_EQ(route({"GET", "/healthz?verbose=1"}, ready).status, 200);
}

TEST(Router, ReadyzWhenEveryCheckPasses) {
  FixedReadiness ready;
  ready.checks = {{"store", true, "ok"}};
  Response r = route({"GET", "/readyz"}, ready);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ready\n");
}

TEST(Router, ReadyzNamesFailingChecks) {
  FixedReadiness ready;
  ready.checks = {{"store", false, "database is locked"}, {"docker", true, "ok"}};
  Response r = route({"GET", "/readyz"}, ready);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body,
            R"({"error":"not ready","code":"unavailable","checks":{"store":"database is locked","docker":"ok"}})");
}

TEST(Router, WrongMethodIs405WithAllow) {
  FixedReadiness ready;
  for (const char* method : {"POST", "DELETE", "OPTIONS", "PUT"}) {
    Response r = route({method, "/healthz"}, ready);
    EXPECT_EQ(r.status, 405) << method;
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0].first, "Allow");
    EXPECT_EQ(r.headers[0].second, "GET, HEAD");
  }
}

TEST(Router, UnknownPathUsesTheFamilyEnvelope) {
  FixedReadiness ready;
  Response legacy = route({"GET", "/nope"}, ready);
  EXPECT_EQ(legacy.status, 404);
  EXPECT_EQ(legacy.body, R"({"error":"not found","code":"not_found"})");
  Response v1 = route({"GET", "/v1/nope"}, ready);
  EXPECT_EQ(v1.status, 404);
  EXPECT_EQ(v1.body, R"({"error":{"code":"not_found","message":"not found","retryable":false}})");
}

TEST(Router, RetryableFollowsTheStatus) {
  EXPECT_NE(error_response("/v1/x", 503, "unavailable", "m").body.find("\"retryable\":true"),
            std::string::npos);
  EXPECT_NE(error_response("/v1/x", 409, "conflict", "m").body.find("\"retryable\":false"),
            std::string::npos);
}

}  // namespace
}  // namespace sandboxd::control
