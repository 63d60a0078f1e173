#include "edge/forward_head.h"

#include <gtest/gtest.h>

#include <string>

namespace sandboxd::edge {
namespace {

constexpr std::string_view kRequestId = "01J9Z3K4X7M2Q8R5T6V0W1Y2ZA";

// Parses `head` (it must be valid) and builds the upstream head with `ctx`.
std::string forward(const std::string& head, ForwardContext ctx = {}) {
  HeadParser parser;
  std::size_t used = 0;
  EXPECT_EQ(parser.feed(head, &used), ParseStatus::head_complete) << parser.error().reason;
  if (ctx.client_ip.empty()) ctx.client_ip = "192.0.2.7";
  if (ctx.listener_port == 0) ctx.listener_port = 443;
  if (ctx.request_id.empty()) ctx.request_id = kRequestId;
  ctx.https = true;
  std::string out = "stale bytes from the last request";
  build_forward_head(parser.head(), ctx, out);
  return out;
}

// What the edge appends for an untrusted client of 192.0.2.7 on https:443.
std::string edge_fields(std::string_view host) {
  return "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: " +
         std::string(host) +
         "\r\nX-Forwarded-Port: 443\r\nX-Request-Id: " + std::string(kRequestId) + "\r\n";
}

TEST(ForwardHead, KeepsFieldsInOrderAndAddsTheForwardingFields) {
  EXPECT_EQ(forward("GET /p?q=1 HTTP/1.1\r\nHost: S-x-3000.Example.com:8443\r\nAccept: */*\r\n"
                    "Set: 1\r\nset: 2\r\n\r\n"),
            "GET /p?q=1 HTTP/1.1\r\nHost: S-x-3000.Example.com:8443\r\nAccept: */*\r\n"
            "Set: 1\r\nset: 2\r\n" +
                edge_fields("S-x-3000.Example.com:8443") + "\r\n");
}

TEST(ForwardHead, RemovesHopByHopFieldsAndThoseConnectionNames) {
  EXPECT_EQ(forward("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Drop, close\r\n"
                    "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
                    "Trailer: X-T\r\nUpgrade: websocket\r\nProxy-Authorization: Basic eA==\r\n"
                    "Proxy-Authenticate: Basic\r\nX-Drop: 1\r\nx-drop: 2\r\nX-Keep: 3\r\n"
                    "HTTP2-Settings: AA\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: h\r\nX-Keep: 3\r\n" + edge_fields("h") + "\r\n");
}

TEST(ForwardHead, ConnectionCannotRemoveHostOrContentLength) {
  EXPECT_EQ(forward("POST / HTTP/1.1\r\nHost: h\r\nConnection: Host, Content-Length, X-A\r\n"
                    "Content-Length: 2\r\nX-A: 1\r\n\r\n"),
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n" + edge_fields("h") + "\r\n");
}

TEST(ForwardHead, ChunkedStaysChunked) {
  EXPECT_EQ(
      forward("POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: h\r\n\r\n"),
      "POST /u HTTP/1.1\r\nHost: h\r\n" + edge_fields("h") + "Transfer-Encoding: chunked\r\n\r\n");
}

TEST(ForwardHead, TunnelKeepsUpgradeAndSaysConnectionUpgrade) {
  const std::string head =
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\r\n";
  ForwardContext ctx;
  ctx.tunnel = true;
  EXPECT_EQ(forward(head, ctx),
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n"
            "Sec-WebSocket-Version: 13\r\n" +
                edge_fields("h") + "Connection: Upgrade\r\n\r\n");
  // The same request not tunnelled (e.g. h2c) loses Upgrade.
  EXPECT_EQ(forward(head),
            "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\n"
            "Sec-WebSocket-Version: 13\r\n" +
                edge_fields("h") + "\r\n");
}

TEST(ForwardHead, H2cUpgradeIsStrippedWithItsSettings) {
  EXPECT_EQ(forward("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: h\r\n" + edge_fields("h") + "\r\n");
}

TEST(ForwardHead, UntrustedClientsLoseTheirForwardingFields) {
  EXPECT_EQ(forward("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\n"
                    "X-Forwarded-Proto: http\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Port: 1\r\n"
                    "X-Forwarded-Prefix: /x\r\nForwarded: for=6.6.6.6\r\n"
                    "X-Request-Id: mine\r\nX-Real: 1\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: h\r\nX-Real: 1\r\n" + edge_fields("h") + "\r\n");
}

TEST(ForwardHead, TrustedClientsKeepTheirsAndTheForwardedForListGrows) {
  ForwardContext ctx;
  ctx.trusted = true;
  EXPECT_EQ(forward("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1\r\n"
                    "X-Forwarded-Proto: http\r\nX-Forwarded-For: 198.51.100.2, 10.0.0.1\r\n"
                    "Forwarded: for=198.51.100.1\r\nX-Request-Id: upstream-id\r\n\r\n",
                    ctx),
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\n"
            "Forwarded: for=198.51.100.1\r\nX-Request-Id: upstream-id\r\n"
            "X-Forwarded-For: 198.51.100.1, 198.51.100.2, 10.0.0.1, 192.0.2.7\r\n"
            "X-Forwarded-Host: h\r\nX-Forwarded-Port: 443\r\n\r\n");
  // Without fields of its own, a trusted client gets the edge's.
  EXPECT_EQ(forward("GET / HTTP/1.1\r\nHost: h\r\n\r\n", ctx),
            "GET / HTTP/1.1\r\nHost: h\r\n" + edge_fields("h") + "\r\n");
}

TEST(ForwardHead, ForwardedHeaderWhenConfigured) {
  ForwardContext ctx;
  ctx.forwarded_header = true;
  ctx.client_ip = "2001:db8::7";
  EXPECT_EQ(forward("GET / HTTP/1.1\r\nHost: h.example:8443\r\n\r\n", ctx),
            "GET / HTTP/1.1\r\nHost: h.example:8443\r\nX-Forwarded-For: 2001:db8::7\r\n"
            "X-Forwarded-Proto: https\r\nX-Forwarded-Host: h.example:8443\r\n"
            "X-Forwarded-Port: 443\r\n"
            "Forwarded: for=\"[2001:db8::7]\";host=\"h.example:8443\";proto=https\r\n"
            "X-Request-Id: " +
                std::string(kRequestId) + "\r\n\r\n");
  ctx.client_ip = "192.0.2.7";
  EXPECT_NE(forward("GET / HTTP/1.1\r\nHost: h\r\n\r\n", ctx)
                .find("\r\nForwarded: for=192.0.2.7;host=h;proto=https\r\n"),
            std::string::npos);
}

TEST(ForwardHead, AbsoluteFormBecomesOriginFormWithTheAuthorityAsHost) {
  EXPECT_EQ(forward("GET http://A.example:81?x=1 HTTP/1.1\r\nHost: other\r\nX: y\r\n\r\n"),
            "GET /?x=1 HTTP/1.1\r\nHost: A.example:81\r\nX: y\r\n" + edge_fields("A.example:81") +
                "\r\n");
  // HTTP/1.0 without Host: the upstream still gets one, and HTTP/1.1.
  EXPECT_EQ(forward("GET http://a.example/x HTTP/1.0\r\n\r\n"),
            "GET /x HTTP/1.1\r\nHost: a.example\r\n" + edge_fields("a.example") + "\r\n");
}

TEST(ForwardHead, TargetOverrideReplacesTheTarget) {
  ForwardContext ctx;
  ctx.target = "/p?keep=1";
  EXPECT_EQ(forward("GET /p?sandbox_token=abc&keep=1 HTTP/1.1\r\nHost: h\r\n\r\n", ctx),
            "GET /p?keep=1 HTTP/1.1\r\nHost: h\r\n" + edge_fields("h") + "\r\n");
}

TEST(ForwardHead, PreviewCookieIsCutOutOfCookie) {
  ForwardContext ctx;
  ctx.preview_cookie = "__Host-sandbox_preview";
  EXPECT_EQ(forward("GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; __Host-sandbox_preview=tok;b=2\r\n"
                    "Cookie: __Host-sandbox_preview=tok\r\nCookie: c=3;  d=4\r\n"
                    "Cookie: x__Host-sandbox_preview=5\r\n\r\n",
                    ctx),
            "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2\r\nCookie: c=3;  d=4\r\n"
            "Cookie: x__Host-sandbox_preview=5\r\n" +
                edge_fields("h") + "\r\n");
}

TEST(ForwardHead, AuthorizationGoesOnlyWhenItWasAPreviewToken) {
  const std::string head = "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t\r\n\r\n";
  EXPECT_NE(forward(head).find("\r\nAuthorization: Bearer t\r\n"), std::string::npos);
  ForwardContext ctx;
  ctx.drop_authorization = true;
  EXPECT_EQ(forward(head, ctx).find("Authorization"), std::string::npos);
}

TEST(ForwardHead, ExpectAndContentLengthPassThrough) {
  EXPECT_EQ(forward("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                    "Content-Length: 9\r\n\r\n"),
            "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 9\r\n" +
                edge_fields("h") + "\r\n");
}

TEST(ForwardHead, ExpectFromAnHttp10ClientIsIgnored) {
  EXPECT_EQ(forward("PUT /f HTTP/1.0\r\nHost: h\r\nExpect: 100-continue\r\n"
                    "Content-Length: 9\r\n\r\n"),
            "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n" + edge_fields("h") + "\r\n");
}

TEST(ForwardHead, ReusesTheBuffer) {
  HeadParser parser;
  std::size_t used = 0;
  ASSERT_EQ(
      parser.feed("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(500, 'v') + "\r\n\r\n", &used),
      ParseStatus::head_complete);
  ForwardContext ctx;
  ctx.client_ip = "192.0.2.7";
  std::string out;
  build_forward_head(parser.head(), ctx, out);
  const std::size_t capacity = out.capacity();
  const char* data = out.data();
  parser.reset();
  ASSERT_EQ(parser.feed("GET /x HTTP/1.1\r\nHost: h\r\n\r\n", &used), ParseStatus::head_complete);
  build_forward_head(parser.head(), ctx, out);
  EXPECT_EQ(out.capacity(), capacity);
  EXPECT_EQ(out.data(), data);
  EXPECT_EQ(out.substr(0, 18), "GET /x HTTP/1.1\r\nH");
}

}  // namespace
}  // namespace sandboxd::edge
