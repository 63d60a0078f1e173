#include "control/api_server.h"

#include "raw_http.h"

#include <gtest/gtest.h>

#include <atomic>

namespace sandboxd::control {
namespace {

using sandboxd::testing::http_get;
using sandboxd::testing::RawConnection;

class SwitchableReadiness : public ReadinessSource {
 public:
  std::atomic<bool> store_ok{true};
  std::vector<ReadyCheck> readiness() override {
    return {{"store", store_ok.load(), store_ok ? "ok" : "no answer"}};
  }
};

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions options;
    options.port = 0;
    options.header_read = std::chrono::milliseconds(300);
    auto started = ApiServer::start(options, ready_);
    ASSERT_TRUE(started) << started.error().message();
    server_ = std::move(*started);
    ASSERT_NE(server_->port(), 0);
  }

  SwitchableReadiness ready_;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(ApiServerTest, ServesHealthz) {
  auto res = http_get(server_->port(), "/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok\n");
  EXPECT_EQ(res->headers["cache-control"], "no-store");
  EXPECT_EQ(res->headers["x-request-id"].size(), 26u);
}

TEST_F(ApiServerTest, HeadHasLengthButNoBody) {
  RawConnection conn(server_->port());
  conn.send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  auto head = conn.read_response(true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers["content-length"], "3");
  // The next response on the same connection starts right away: HEAD sent no body bytes.
  auto get = conn.read_response();
  ASSERT_TRUE(get);
  EXPECT_EQ(get->body, "ok\n");
}

TEST_F(ApiServerTest, ReadyzFollowsTheChecks) {
  auto res = http_get(server_->port(), "/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ready\n");
  ready_.store_ok = false;
  res = http_get(server_->port(), "/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->headers["content-type"], "application/json");
  EXPECT_NE(res->body.find(R"("store":"no answer")"), std::string::npos);
}

TEST_F(ApiServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  RawConnection conn(server_->port());
  for (int i = 0; i < 5; ++i) {
    conn.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    auto res = conn.read_response();
    ASSERT_TRUE(res) << i;
    EXPECT_EQ(res->status, 200);
  }
}

TEST_F(ApiServerTest, MalformedRequestIs400AndCloses) {
  RawConnection conn(server_->port());
  conn.send("GET /healthz HTTP/1.1\r\nHost x\r\n\r\n");
  auto res = conn.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_TRUE(conn.wait_closed());
}

TEST_F(ApiServerTest, BothContentLengthAndTransferEncodingIs400) {
  RawConnection conn(server_->port());
  conn.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  auto res = conn.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
}

TEST_F(ApiServerTest, HugeHeaderBlockIs431) {
  RawConnection conn(server_->port());
  conn.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(17 * 1024, 'a') +
            "\r\n\r\n");
  auto res = conn.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 431);
  EXPECT_TRUE(conn.wait_closed());
}

TEST_F(ApiServerTest, LongTargetIs414) {
  auto res = http_get(server_->port(), "/healthz?" + std::string(9 * 1024, 'q'));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 414);
}

TEST_F(ApiServerTest, SilentClientIsCutAfterHeaderRead) {
  RawConnection conn(server_->port());
  conn.send("GET /healthz HTTP/1.1\r\n");  // never finishes its head
  EXPECT_TRUE(conn.wait_closed(std::chrono::seconds(5)));
}

TEST_F(ApiServerTest, StopClosesTheListener) {
  std::uint16_t port = server_->port();
  server_->stop();
  EXPECT_THROW(RawConnection conn(port), std::runtime_error);
}

}  // namespace
}  // namespace sandboxd::control
