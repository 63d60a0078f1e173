#include "router.h"

#include <gtest/gtest.h>

namespace sandboxd::control {
namespace {

boost::asio::awaitable<Response> nothing(Request&) { co_return Response{}; }

Router table() {
  Router r;
  r.add({"GET", "/healthz", nothing, true});
  r.add({"GET", "/v1/sandboxes/{id}", nothing});
  r.add({"DELETE", "/v1/sandboxes/{id}", nothing, false, true});
  r.add({"POST", "/v1/sandboxes/{id}/start", nothing, false, true, true});
  return r;
}

TEST(Router, MatchesLiteralAndParameterSegments) {
  Router r = table();
  auto m = r.match("GET", "/v1/sandboxes/01ARZ3NDEKTSV4RRFFQ69G5FAV");
  ASSERT_TRUE(m.route);
  EXPECT_EQ(m.route->pattern, "/v1/sandboxes/{id}");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0], "01ARZ3NDEKTSV4RRFFQ69G5FAV");
}

TEST(Router, HeadUsesTheGetRoute) {
  Router r = table();
  auto m = r.match("HEAD", "/healthz");
  ASSERT_TRUE(m.route);
  EXPECT_EQ(m.route->method, "GET");
}

TEST(Router, ParametersAreDecodedExactlyOnce) {
  Router r = table();
  auto m = r.match("GET", "/v1/sandboxes/%252E%2E");
  ASSERT_TRUE(m.route);
  EXPECT_EQ(m.params[0], "%2E.");
  auto bad = r.match("GET", "/v1/sandboxes/%zz");
  ASSERT_TRUE(bad.route);
  EXPECT_TRUE(bad.bad_escape);
}

TEST(Router, KnownPathWrongMethodListsAllowed) {
  Router r = table();
  auto m = r.match("PUT", "/v1/sandboxes/x");
  EXPECT_FALSE(m.route);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "GET, HEAD, DELETE");
}

TEST(Router, UnknownPathsDoNotMatch) {
  Router r = table();
  for (const char* path : {"/", "/v1", "/v1/sandboxes", "/v1/sandboxes/", "/v1/sandboxes/a/b",
                           "/healthz/", "/HEALTHZ"}) {
    auto m = r.match("GET", path);
    EXPECT_FALSE(m.route) << path;
    EXPECT_FALSE(m.path_known) << path;
  }
}

TEST(Router, ErrorBodiesFollowThePathFamily) {
  EXPECT_EQ(error_response("/nope", 404, "not_found", "not found").body,
            R"({"error":"not found","code":"not_found"})");
  EXPECT_EQ(error_response("/v1/nope", 404, "not_found", "not found").body,
            R"({"error":{"code":"not_found","message":"not found","retryable":false}})");
  EXPECT_NE(error_response("/v1/x", 503, "unavailable", "m").body.find("\"retryable\":true"),
            std::string::npos);
}

}  // namespace
}  // namespace sandboxd::control
