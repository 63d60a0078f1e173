// The HTTP/1.1 client's parsers: response heads and chunked bodies, split at every point,
// and malformed or random input (never a crash, never a hang).
#include "cli/http_parse.h"

#include <gtest/gtest.h>

#include <random>

namespace sandboxd::cli {
namespace {

TEST(ResponseHead, Parses) {
  std::string text =
      "HTTP/1.1 201 Created\r\n"
      "Content-Type: application/json\r\n"
      "Transfer-Encoding: gzip, chunked\r\n"
      "X-Empty:\r\n"
      "\r\n";
  EXPECT_EQ(find_head_end(text + "body"), text.size());
  auto h = parse_response_head(text);
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->status, 201);
  EXPECT_EQ(h->reason, "Created");
  EXPECT_EQ(h->header("content-type"), "application/json");
  EXPECT_EQ(h->header("x-empty"), "");
  EXPECT_TRUE(h->chunked());
  bool bad = true;
  EXPECT_EQ(h->content_length(&bad), std::nullopt);
  EXPECT_FALSE(bad);

  auto bare = parse_response_head("HTTP/1.0 204\n\n");
  ASSERT_TRUE(bare) << bare.error().message;
  EXPECT_EQ(bare->status, 204);
  EXPECT_EQ(bare->version_minor, 0);
  EXPECT_EQ(find_head_end("HTTP/1.0 204\n\n"), 14u);
  EXPECT_EQ(find_head_end("HTTP/1.1 200 OK\r\nA: b\r\n"), std::string_view::npos);
}

TEST(ResponseHead, ContentLength) {
  bool bad = false;
  auto one =
      parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 42\r\ncontent-length: 42\r\n\r\n");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->content_length(&bad), 42u);
  EXPECT_FALSE(bad);
  for (const char* v : {"-1", "1 2", "0x10", "", "99999999999999999999", "4,2"}) {
    auto h =
        parse_response_head(std::string("HTTP/1.1 200 OK\r\nContent-Length: ") + v + "\r\n\r\n");
    ASSERT_TRUE(h) << v;
    EXPECT_EQ(h->content_length(&bad), std::nullopt) << v;
    EXPECT_TRUE(bad) << v;
  }
  auto conflict =
      parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(conflict->content_length(&bad), std::nullopt);
  EXPECT_TRUE(bad);
}

TEST(ResponseHead, RefusesMalformedHeads) {
  for (const char* bad :
       {"", "\r\n", "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1 099 Low\r\n\r\n", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: novalue\r\n\r\n", "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "HTTP/1.1 200 OK\r\nA: b\r\n",
        "ICY 200 OK\r\n\r\n"}) {
    auto h = parse_response_head(bad);
    EXPECT_FALSE(h) << bad;
    if (!h) {
      EXPECT_EQ(exit_code_of(h.error()), 1);
    }
  }
}

std::string decode_split(std::string_view in, const std::vector<std::size_t>& cuts, bool* ok,
                         bool* done) {
  ChunkedDecoder d;
  std::string out;
  std::size_t start = 0;
  *ok = true;
  for (std::size_t cut : cuts) {
    if (!d.feed(in.substr(start, cut - start), out)) {
      *ok = false;
      return out;
    }
    start = cut;
  }
  *ok = static_cast<bool>(d.feed(in.substr(start), out));
  *done = d.done();
  return out;
}

TEST(Chunked, DecodesAtEverySplitPoint) {
  const std::string body =
      "5\r\nhello\r\n7;ext=1\r\n, world\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nextra";
  for (std::size_t i = 0; i <= body.size(); ++i) {
    for (std::size_t j = i; j <= body.size(); j += 7) {
      bool ok = false, done = false;
      std::string out = decode_split(body, {i, j}, &ok, &done);
      ASSERT_TRUE(ok) << i << "," << j;
      EXPECT_TRUE(done) << i << "," << j;
      EXPECT_EQ(out, "hello, world0123456789") << i << "," << j;
    }
  }
  // Bare LF line ends and upper-case hex are accepted.
  bool ok = false, done = false;
  EXPECT_EQ(decode_split("B\nhello world\n0\n\n", {}, &ok, &done), "hello world");
  EXPECT_TRUE(ok);
  EXPECT_TRUE(done);
}

TEST(Chunked, RefusesMalformedBodies) {
  for (const char* bad : {"g\r\nx\r\n", "\r\n", "5\r\nhelloX\r\n", "5\r\nhello\rX",
                          "1ffffffffffffffff\r\n", "-1\r\n", " ;x\r\n"}) {
    bool ok = true, done = false;
    decode_split(bad, {}, &ok, &done);
    EXPECT_FALSE(ok) << bad;
  }
  // A size line longer than the limit is refused before it is buffered whole.
  ChunkedDecoder d;
  std::string out;
  std::string long_line(ChunkedDecoder::kMaxChunkLine + 1, '0');
  EXPECT_FALSE(d.feed(long_line, out));
  // After a failure the decoder stays failed.
  EXPECT_FALSE(d.feed("0\r\n\r\n", out));
  // A huge declared size is fine: it is only counted down, never allocated.
  ChunkedDecoder big;
  std::string got;
  EXPECT_TRUE(big.feed("fffffffffffffff\r\nabc", got));
  EXPECT_EQ(got, "abc");
  EXPECT_FALSE(big.done());
}

TEST(Chunked, RandomInputNeverCrashes) {
  std::mt19937 rng(12345);
  const std::string alphabet = "0123456789abcdefABCDEFxg;= \r\n\t:";
  for (int round = 0; round < 20000; ++round) {
    std::string in(rng() % 64, '\0');
    for (char& c : in)
      c = rng() % 4 == 0 ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    ChunkedDecoder d;
    std::string out;
    std::size_t at = 0;
    while (at < in.size()) {
      std::size_t n = 1 + rng() % 8;
      if (!d.feed(std::string_view(in).substr(at, n), out)) break;
      at += n;
    }
    EXPECT_LE(out.size(), in.size());
    (void)parse_response_head(in);
    (void)find_head_end(in);
  }
}

}  // namespace
}  // namespace sandboxd::cli
