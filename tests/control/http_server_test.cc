// The control listener's HTTP handling on real sockets, with a small handler standing in
// for the API (the API itself is exercised end to end by tests/integration).
#include "http_server.h"
#include "router.h"

#include "raw_http.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace sandboxd::control {
namespace {

using sandboxd::testing::http_get;
using sandboxd::testing::RawConnection;

class EchoHandler : public HttpHandler {
 public:
  int handled = 0;
  std::optional<Response> check_head(Request& r, std::optional<std::uint64_t> length) override {
    if (r.path == "/deny") return error_response(r.path, 401, "unauthorized", "no");
    if (length && *length > 100) return error_response(r.path, 413, "payload_too_large", "big");
    if (r.path != "/echo" && r.path != "/stream") return error_response(r.path, 404, "not_found", "nope");
    return std::nullopt;
  }
  std::uint64_t body_limit(const Request&) const override { return 100; }
  boost::asio::awaitable<Response> handle(Request& r) override {
    ++handled;
    Response res;
    if (r.path == "/stream") {
      res.content_type = "text/plain";
      res.stream = [](BodySink& sink) -> boost::asio::awaitable<void> {
        co_await sink.write("one\n");
        co_await sink.write("two\n");
      };
      co_return res;
    }
    res.body = r.method + " " + r.body;
    co_return res;
  }
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions options;
    options.port = 0;
    options.header_read = std::chrono::milliseconds(300);
    server_ = std::make_unique<HttpServer>(ioc_.get_executor(), options, handler_);
    auto st = server_->listen();
    ASSERT_TRUE(st) << st.error().message();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    std::promise<void> closed;
    boost::asio::post(ioc_, [&] {
      server_->close();
      closed.set_value();
    });
    closed.get_future().wait();
    ioc_.stop();
    thread_.join();
  }

  boost::asio::io_context ioc_;
  EchoHandler handler_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

TEST_F(HttpServerTest, AnswersWithCommonHeaders) {
  auto res = http_get(server_->port(), "/echo");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "GET ");
  EXPECT_EQ(res->headers["cache-control"], "no-store");
  EXPECT_EQ(res->headers["x-request-id"].size(), 26u);
}

TEST_F(HttpServerTest, ReadsBodiesAndKeepsTheConnection) {
  RawConnection conn(server_->port());
  for (int i = 0; i < 3; ++i) {
    conn.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    auto res = conn.read_response();
    ASSERT_TRUE(res) << i;
    EXPECT_EQ(res->body, "POST hello");
  }
}

TEST_F(HttpServerTest, EarlyAnswerSkipsTheBodyAndClosesWhenOneWasSent) {
  RawConnection conn(server_->port());
  conn.send("POST /deny HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  auto res = conn.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401) << "the final status, never 100, for a refused request";
  EXPECT_TRUE(conn.wait_closed());
  EXPECT_EQ(handler_.handled, 0);
}

TEST_F(HttpServerTest, ExpectContinueGetsAContinueWhenAccepted) {
  RawConnection conn(server_->port());
  conn.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
  auto cont = conn.read_response();
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->status, 100);
  conn.send("hi");
  auto res = conn.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "POST hi");
}

TEST_F(HttpServerTest, DeclaredOversizeIs413) {
  RawConnection conn(server_->port());
  conn.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
  auto res = conn.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_TRUE(conn.wait_closed());
}

TEST_F(HttpServerTest, ChunkedOversizeIs413WhileStreaming) {
  RawConnection conn(server_->port());
  std::string chunk(80, 'x');
  conn.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n" + chunk +
            "\r\n50\r\n" + chunk + "\r\n0\r\n\r\n");
  auto res = conn.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
}

TEST_F(HttpServerTest, StreamedBodyIsChunked) {
  RawConnection conn(server_->port());
  conn.send("GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(conn.wait_closed());
}

TEST_F(HttpServerTest, MalformedRequestIs400AndCloses) {
  RawConnection conn(server_->port());
  conn.send("GET /echo HTTP/1.1\r\nHost x\r\n\r\n");
  auto res = conn.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_TRUE(conn.wait_closed());
}

TEST_F(HttpServerTest, BothContentLengthAndTransferEncodingIs400) {
  RawConnection conn(server_->port());
  conn.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  auto res = conn.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
}

TEST_F(HttpServerTest, HugeHeaderBlockIs431) {
  RawConnection conn(server_->port());
  conn.send("GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(17 * 1024, 'a') + "\r\n\r\n");
  auto res = conn.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 431);
  EXPECT_TRUE(conn.wait_closed());
}

TEST_F(HttpServerTest, LongTargetIs414) {
  auto res = http_get(server_->port(), "/echo?" + std::string(9 * 1024, 'q'));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 414);
}

TEST_F(HttpServerTest, SilentClientIsCutAfterHeaderRead) {
  RawConnection conn(server_->port());
  conn.send("GET /echo HTTP/1.1\r\n");  // never finishes its head
  EXPECT_TRUE(conn.wait_closed(std::chrono::seconds(5)));
}

}  // namespace
}  // namespace sandboxd::control
