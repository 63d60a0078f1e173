#include "edge/request_head.h"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace sandboxd::edge {
namespace {

using namespace std::string_literals;

// Everything a parse produced, copied out of the parser so that two parses can be compared.
struct Outcome {
  ParseStatus status = ParseStatus::need_more;
  int code = 0;
  std::string reason;
  std::size_t consumed = 0;  // over the whole input; compared only for head_complete
  std::string method, target, origin, authority, host, host_header, upgrade_protocol;
  std::vector<std::pair<std::string, std::string>> headers;
  HttpVersion version = HttpVersion::http11;
  bool absolute_form = false, has_host_header = false, chunked = false, keep_alive = false;
  bool upgrade = false, h2c = false, expect = false;
  std::optional<std::uint64_t> content_length;
  std::size_t head_bytes = 0;

  bool operator==(const Outcome& o) const {
    if (status != o.status) return false;
    if (status == ParseStatus::error) return code == o.code && reason == o.reason;
    return consumed == o.consumed && method == o.method && target == o.target &&
           origin == o.origin && authority == o.authority && host == o.host &&
           host_header == o.host_header && upgrade_protocol == o.upgrade_protocol &&
           headers == o.headers && version == o.version && absolute_form == o.absolute_form &&
           has_host_header == o.has_host_header && chunked == o.chunked &&
           keep_alive == o.keep_alive && upgrade == o.upgrade && h2c == o.h2c &&
           expect == o.expect && content_length == o.content_length && head_bytes == o.head_bytes;
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "status=" << static_cast<int>(o.status) << " code=" << o.code << " reason=" << o.reason
     << " consumed=" << o.consumed << " target=" << o.target << " headers=" << o.headers.size();
  return os;
}

Outcome snapshot(const HeadParser& parser, ParseStatus status, std::size_t consumed) {
  Outcome o;
  o.status = status;
  o.consumed = consumed;
  if (status == ParseStatus::error) {
    o.code = parser.error().status;
    o.reason = std::string(parser.error().reason);
  }
  if (status != ParseStatus::head_complete) return o;
  const RequestHead& h = parser.head();
  o.method = h.method;
  o.target = h.target;
  o.origin = h.origin_target;
  o.authority = h.authority;
  o.host = h.host;
  o.host_header = h.host_header;
  o.upgrade_protocol = h.upgrade_protocol;
  for (const HeaderField& f : h.headers) o.headers.emplace_back(f.name, f.value);
  o.version = h.version;
  o.absolute_form = h.absolute_form;
  o.has_host_header = h.has_host_header;
  o.chunked = h.chunked;
  o.keep_alive = h.keep_alive;
  o.upgrade = h.upgrade;
  o.h2c = h.h2c_upgrade;
  o.expect = h.expect_continue;
  o.content_length = h.content_length;
  o.head_bytes = h.head_bytes;
  return o;
}

// Feeds `input` cut at `cuts` (increasing offsets) and stops at the first final status.
Outcome parse_pieces(HeadParser& parser, std::string_view input,
                     const std::vector<std::size_t>& cuts) {
  std::size_t offset = 0;
  ParseStatus status = ParseStatus::need_more;
  std::size_t consumed = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  for (std::size_t end : ends) {
    // Each piece is a copy of its own, so that a read past its end is an ASan error.
    std::string piece(input.substr(offset, end - offset));
    std::size_t used = 0;
    status = parser.feed(piece, &used);
    EXPECT_LE(used, piece.size());
    consumed = offset + used;
    if (status != ParseStatus::need_more) break;
    offset = end;
  }
  return snapshot(parser, status, consumed);
}

Outcome parse(std::string_view input, const HeadLimits& limits = {}) {
  HeadParser parser(limits);
  return parse_pieces(parser, input, {});
}

// The same input fed whole, at every single split point, and byte by byte: one answer.
void expect_split_invariant(std::string_view input, const HeadLimits& limits = {}) {
  const Outcome whole = parse(input, limits);
  HeadParser parser(limits);
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    parser.reset();
    EXPECT_EQ(parse_pieces(parser, input, {cut}), whole) << "split at " << cut;
  }
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < input.size(); ++i) every.push_back(i);
  parser.reset();
  EXPECT_EQ(parse_pieces(parser, input, every), whole) << "byte by byte";
}

const std::string kGet = "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n";

// ---------------------------------------------------------------------------------------
// Valid heads

TEST(HeadParser, ParsesASimpleGet) {
  Outcome o = parse(kGet);
  ASSERT_EQ(o.status, ParseStatus::head_complete) << o;
  EXPECT_EQ(o.consumed, kGet.size());
  EXPECT_EQ(o.method, "GET");
  EXPECT_EQ(o.target, "/");
  EXPECT_EQ(o.origin, "/");
  EXPECT_EQ(o.host, "a.example");
  EXPECT_EQ(o.host_header, "a.example");
  EXPECT_TRUE(o.has_host_header);
  EXPECT_EQ(o.version, HttpVersion::http11);
  EXPECT_TRUE(o.keep_alive);
  EXPECT_FALSE(o.chunked);
  EXPECT_FALSE(o.content_length);
  EXPECT_FALSE(o.upgrade);
  EXPECT_EQ(o.head_bytes, kGet.size());
  ASSERT_EQ(o.headers.size(), 1u);
  EXPECT_EQ(o.headers[0], (std::pair<std::string, std::string>{"Host", "a.example"}));
}

struct Valid {
  const char* name;
  std::string input;
  std::function<void(const Outcome&)> check;
};

void PrintTo(const Valid& v, std::ostream* os) { *os << v.name; }

class HeadParserAccepts : public ::testing::TestWithParam<Valid> {};

TEST_P(HeadParserAccepts, AtEverySplitPoint) {
  const Valid& v = GetParam();
  Outcome o = parse(v.input);
  ASSERT_EQ(o.status, ParseStatus::head_complete) << o;
  EXPECT_EQ(o.consumed, v.input.size());
  v.check(o);
  expect_split_invariant(v.input);
}

using H = std::pair<std::string, std::string>;

INSTANTIATE_TEST_SUITE_P(
    Table, HeadParserAccepts,
    ::testing::Values(
        Valid{"http10_without_host", "GET /x HTTP/1.0\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_EQ(o.version, HttpVersion::http10);
                EXPECT_FALSE(o.has_host_header);
                EXPECT_EQ(o.host, "");
                EXPECT_FALSE(o.keep_alive);
              }},
        Valid{"http10_keep_alive", "GET / HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n",
              [](const Outcome& o) { EXPECT_TRUE(o.keep_alive); }},
        Valid{"http10_keep_alive_and_close",
              "GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
              [](const Outcome& o) { EXPECT_FALSE(o.keep_alive); }},
        Valid{"http11_close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
              [](const Outcome& o) { EXPECT_FALSE(o.keep_alive); }},
        Valid{"http11_close_in_second_field",
              "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nconnection: CLOSE\r\n\r\n",
              [](const Outcome& o) { EXPECT_FALSE(o.keep_alive); }},
        Valid{"content_length", "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_EQ(o.method, "POST");
                EXPECT_EQ(o.content_length, 5u);
              }},
        Valid{"content_length_zero_padded",
              "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
              [](const Outcome& o) { EXPECT_EQ(o.content_length, 7u); }},
        Valid{"content_length_two_to_the_53",
              "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740992\r\n\r\n",
              [](const Outcome& o) { EXPECT_EQ(o.content_length, 9007199254740992u); }},
        Valid{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_TRUE(o.chunked);
                EXPECT_FALSE(o.content_length);
              }},
        Valid{"chunked_after_an_empty_list_element",
              "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n",
              [](const Outcome& o) { EXPECT_TRUE(o.chunked); }},
        Valid{"websocket",
              "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
              "Upgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_TRUE(o.upgrade);
                EXPECT_FALSE(o.h2c);
                EXPECT_EQ(o.upgrade_protocol, "websocket");
              }},
        Valid{"upgrade_without_connection_option",
              "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_FALSE(o.upgrade);
                EXPECT_EQ(o.upgrade_protocol, "websocket");
              }},
        Valid{"h2c",
              "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
              "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_FALSE(o.upgrade);
                EXPECT_TRUE(o.h2c);
              }},
        Valid{"upgrade_ignored_in_http10",
              "GET / HTTP/1.0\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
              [](const Outcome& o) { EXPECT_FALSE(o.upgrade); }},
        Valid{"expect_continue",
              "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
              [](const Outcome& o) { EXPECT_TRUE(o.expect); }},
        Valid{"expect_ignored_in_http10",
              "PUT / HTTP/1.0\r\nExpect: something\r\nContent-Length: 1\r\n\r\n",
              [](const Outcome& o) { EXPECT_FALSE(o.expect); }},
        Valid{"absolute_form", "GET http://S-x.Example:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_TRUE(o.absolute_form);
                EXPECT_EQ(o.authority, "S-x.Example:8080");
                EXPECT_EQ(o.host, "S-x.Example:8080");
                EXPECT_EQ(o.host_header, "other");
                EXPECT_EQ(o.origin, "/p?q=1");
                EXPECT_EQ(o.target, "http://S-x.Example:8080/p?q=1");
              }},
        Valid{"absolute_form_https_upper_scheme_no_path",
              "GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_EQ(o.authority, "h");
                EXPECT_EQ(o.origin, "/");
              }},
        Valid{"absolute_form_query_only", "GET http://h?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
              [](const Outcome& o) { EXPECT_EQ(o.origin, "/?x=1"); }},
        Valid{"absolute_form_http10_without_host", "GET http://[::1]:81/ HTTP/1.0\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_EQ(o.host, "[::1]:81");
                EXPECT_FALSE(o.has_host_header);
              }},
        Valid{"options_asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
              [](const Outcome& o) { EXPECT_EQ(o.origin, "*"); }},
        Valid{"leading_empty_lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_EQ(o.target, "/");
                EXPECT_EQ(o.head_bytes, 4 + 27u);
              }},
        Valid{"value_whitespace_trimmed",
              "GET / HTTP/1.1\r\nHost:a\r\nX-A:   two  words \t\r\nX-B:\r\nX-C: \t \r\n\r\n",
              [](const Outcome& o) {
                EXPECT_EQ(o.headers,
                          (std::vector<H>{
                              {"Host", "a"}, {"X-A", "two  words"}, {"X-B", ""}, {"X-C", ""}}));
              }},
        Valid{"repeats_kept_in_order",
              "GET / HTTP/1.1\r\nhOsT: a\r\nSet: 1\r\nX: y\r\nSet: 2\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_EQ(o.headers,
                          (std::vector<H>{{"hOsT", "a"}, {"Set", "1"}, {"X", "y"}, {"Set", "2"}}));
                EXPECT_EQ(o.host, "a");
              }},
        Valid{"obs_text_and_tab_in_value",
              "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\tau lait\r\n\r\n",
              [](const Outcome& o) { EXPECT_EQ(o.headers[1].second, "caf\xc3\xa9\tau lait"); }},
        Valid{"target_bytes_untouched",
              "GET /a/../%2e%2E/b;c?d=e&f=%zz|{}^` HTTP/1.1\r\nHost: a\r\n\r\n",
              [](const Outcome& o) { EXPECT_EQ(o.target, "/a/../%2e%2E/b;c?d=e&f=%zz|{}^`"); }},
        Valid{"ipv6_host_with_port", "GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
              [](const Outcome& o) { EXPECT_EQ(o.host, "[2001:db8::1]:8080"); }},
        Valid{"host_trailing_dot_and_port", "GET / HTTP/1.1\r\nHost: A.Example.:00080\r\n\r\n",
              [](const Outcome& o) { EXPECT_EQ(o.host, "A.Example.:00080"); }},
        Valid{"empty_host_value", "GET / HTTP/1.1\r\nHost:\r\n\r\n",
              [](const Outcome& o) {
                EXPECT_TRUE(o.has_host_header);
                EXPECT_EQ(o.host, "");
              }},
        Valid{"webdav_method", "PROPFIND /d HTTP/1.1\r\nHost: a\r\nDepth: 1\r\n\r\n",
              [](const Outcome& o) { EXPECT_EQ(o.method, "PROPFIND"); }}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(HeadParser, AcceptsExactly128Fields) {
  std::string in = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 1; i < 128; ++i) in += "X-" + std::to_string(i) + ": v\r\n";
  in += "\r\n";
  Outcome o = parse(in);
  ASSERT_EQ(o.status, ParseStatus::head_complete) << o;
  EXPECT_EQ(o.headers.size(), 128u);
}

TEST(HeadParser, AcceptsAHeadOfExactlyTheLimit) {
  HeadLimits limits;
  limits.max_header_bytes = kGet.size();
  EXPECT_EQ(parse(kGet, limits).status, ParseStatus::head_complete);
  limits.max_header_bytes = kGet.size() - 1;
  Outcome o = parse(kGet, limits);
  EXPECT_EQ(o.status, ParseStatus::error);
  EXPECT_EQ(o.code, 431);
}

// ---------------------------------------------------------------------------------------
// Rejections: every rule of SPEC §3.3 that the head decides, with its status and reason.

struct Bad {
  const char* name;
  std::string input;
  int status;
  std::string reason;
  HeadLimits limits = {};
};

void PrintTo(const Bad& b, std::ostream* os) { *os << b.name; }

class HeadParserRejects : public ::testing::TestWithParam<Bad> {};

TEST_P(HeadParserRejects, WithStatusAndReasonAtEverySplitPoint) {
  const Bad& b = GetParam();
  Outcome o = parse(b.input, b.limits);
  ASSERT_EQ(o.status, ParseStatus::error) << o;
  EXPECT_EQ(o.code, b.status);
  EXPECT_EQ(o.reason, b.reason);
  expect_split_invariant(b.input, b.limits);
}

std::string with_fields(const std::string& fields, const char* version = "HTTP/1.1") {
  return std::string("GET / ") + version + "\r\n" + fields + "\r\n";
}

std::string post(const std::string& fields, const char* version = "HTTP/1.1") {
  return std::string("POST / ") + version + "\r\nHost: a\r\n" + fields + "\r\n";
}

std::string many_fields(int n) {
  std::string f = "Host: a\r\n";
  for (int i = 1; i < n; ++i) f += "F" + std::to_string(i) + ": v\r\n";
  return with_fields(f);
}

HeadLimits small_limits(std::size_t head, std::size_t line) {
  HeadLimits l;
  l.max_header_bytes = head;
  l.max_request_line_bytes = line;
  return l;
}

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

HeadLimits body_limit(std::uint64_t max) {
  HeadLimits l;
  l.max_request_body = max;
  return l;
}

INSTANTIATE_TEST_SUITE_P(
    RequestLine, HeadParserRejects,
    ::testing::Values(
        Bad{"bad_method_char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request line"},
        Bad{"leading_space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request line"},
        Bad{"two_spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request line"},
        Bad{"tab_separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request line"},
        Bad{"no_version", "GET /\r\n\r\n", 400, "bad request line"},
        Bad{"space_after_version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "bad request line"},
        Bad{"lowercase_protocol", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, "bad request line"},
        Bad{"rtsp", "GET / RTSP/1.0\r\nHost: a\r\n\r\n", 400, "bad request line"},
        Bad{"long_version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, "bad request line"},
        Bad{"space_in_target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request line"},
        Bad{"raw_utf8_in_target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "bad character in the request target"},
        Bad{"ctl_in_target", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "bad character in the request target"},
        Bad{"del_in_target", "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "bad character in the request target"},
        Bad{"nul_in_target", std::string("GET /") + '\0' + " HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "bad character in the request target"},
        Bad{"relative_target", "GET a HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request target"},
        Bad{"ftp_scheme", "GET ftp://h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request target"},
        Bad{"bad_char_in_authority", "GET http://h<x/ HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "bad request target"},
        Bad{"userinfo", "GET http://u@h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "userinfo in request target"},
        Bad{"empty_authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "bad authority in request target"},
        Bad{"authority_port_zero", "GET http://h:0/ HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "bad authority in request target"},
        Bad{"authority_port_65536", "GET http://h:65536/ HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "bad authority in request target"},
        Bad{"asterisk_outside_options", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "asterisk-form outside OPTIONS"},
        Bad{"bare_lf_after_request_line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF"},
        Bad{"leading_bare_lf", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare LF"},
        Bad{"cr_inside_request_line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400, "CR without LF"},
        Bad{"leading_cr_alone", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "CR without LF"},
        Bad{"unknown_method", "FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 501, "unknown method"},
        Bad{"lowercase_method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 501, "unknown method"},
        Bad{"rtsp_method", "DESCRIBE / HTTP/1.1\r\nHost: a\r\n\r\n", 501, "unknown method"},
        Bad{"connect", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405,
            "CONNECT is not allowed"},
        Bad{"http_2_0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "HTTP version not supported"},
        Bad{"http_0_9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, "HTTP version not supported"},
        Bad{"http_1_2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "HTTP version not supported"},
        Bad{"h2_preface", std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, "HTTP/2 preface"},
        Bad{"pri_otherwise", "PRI / HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "PRI outside the HTTP/2 preface"},
        Bad{"line_over_limit", "GET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n", 414,
            "request line too long", small_limits(1024, 20)},
        Bad{"line_over_head_limit", "GET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n", 414,
            "request line too long", small_limits(20, 1024)}),
    [](const auto& p) { return std::string(p.param.name); });

INSTANTIATE_TEST_SUITE_P(
    Fields, HeadParserRejects,
    ::testing::Values(
        Bad{"obs_fold", with_fields("Host: a\r\nX: a\r\n b\r\n"), 400, "obs-fold"},
        Bad{"obs_fold_tab", with_fields("Host: a\r\nX: a\r\n\tb\r\n"), 400, "obs-fold"},
        Bad{"space_before_first_field", with_fields(" Host: a\r\n"), 400, "obs-fold"},
        Bad{"space_before_colon", with_fields("Host : a\r\n"), 400, "whitespace before ':'"},
        Bad{"tab_before_colon", with_fields("Host\t: a\r\n"), 400, "whitespace before ':'"},
        Bad{"bare_lf_after_field", with_fields("Host: a\n"), 400, "bare LF"},
        Bad{"bare_lf_final", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF"},
        Bad{"cr_in_value", with_fields("Host: a\rb\r\n"), 400, "CR without LF"},
        Bad{"cr_final", "GET / HTTP/1.1\r\nHost: a\r\n\rX", 400, "CR without LF"},
        Bad{"nul_in_value", with_fields(std::string("Host: a\r\nX: a\0b\r\n", 17)), 400,
            "NUL in a field value"},
        Bad{"ctl_in_value",
            with_fields("Host: a\r\nX: a\x01"
                        "b\r\n"),
            400, "control character in a field value"},
        Bad{"del_in_value", with_fields("Host: a\r\nX: a\x7f\r\n"), 400,
            "control character in a field value"},
        Bad{"empty_field_name", with_fields("Host: a\r\n: v\r\n"), 400, "empty field name"},
        Bad{"no_colon", with_fields("Host: a\r\nXv\r\n"), 400, "field line without ':'"},
        Bad{"bad_name_char", with_fields("Host: a\r\nX(: v\r\n"), 400,
            "bad character in a field name"},
        Bad{"utf8_name", with_fields("Host: a\r\nX\xc3\xa9: v\r\n"), 400,
            "bad character in a field name"},
        Bad{"too_many_fields", many_fields(129), 431, "too many header fields"},
        Bad{"head_over_limit", with_fields("Host: a\r\nX: 0123456789\r\n"), 431, "head too large",
            small_limits(30, 1024)},
        Bad{"leading_lines_over_limit", repeat("\r\n", 20), 431, "head too large",
            small_limits(30, 1024)}),
    [](const auto& p) { return std::string(p.param.name); });

INSTANTIATE_TEST_SUITE_P(
    Host, HeadParserRejects,
    ::testing::Values(
        Bad{"missing_host", with_fields("X: a\r\n"), 400, "missing Host"},
        Bad{"two_hosts", with_fields("Host: a\r\nHost: a\r\n"), 400, "several Host fields"},
        Bad{"two_hosts_http10", with_fields("Host: a\r\nhost: b\r\n", "HTTP/1.0"), 400,
            "several Host fields"},
        Bad{"underscore", with_fields("Host: a_b\r\n"), 400, "bad character in Host"},
        Bad{"slash", with_fields("Host: a/b\r\n"), 400, "bad character in Host"},
        Bad{"space_inside", with_fields("Host: a b\r\n"), 400, "bad character in Host"},
        Bad{"at_sign", with_fields("Host: u@a\r\n"), 400, "bad character in Host"},
        Bad{"utf8", with_fields("Host: caf\xc3\xa9\r\n"), 400, "bad character in Host"},
        Bad{"port_zero", with_fields("Host: a:0\r\n"), 400, "bad port in Host"},
        Bad{"port_65536", with_fields("Host: a:65536\r\n"), 400, "bad port in Host"},
        Bad{"port_empty", with_fields("Host: a:\r\n"), 400, "bad port in Host"},
        Bad{"port_huge", with_fields("Host: a:99999999999999999999\r\n"), 400, "bad port in Host"},
        Bad{"two_ports", with_fields("Host: a:80:80\r\n"), 400, "bad port in Host"},
        Bad{"ipv6_port_zero", with_fields("Host: [::1]:0\r\n"), 400, "bad port in Host"},
        Bad{"unclosed_bracket", with_fields("Host: [::1\r\n"), 400, "bad Host"},
        Bad{"stray_bracket", with_fields("Host: a]\r\n"), 400, "bad Host"},
        Bad{"junk_after_bracket", with_fields("Host: [::1]x\r\n"), 400, "bad Host"},
        Bad{"port_without_name", with_fields("Host: :80\r\n"), 400, "bad Host"}),
    [](const auto& p) { return std::string(p.param.name); });

INSTANTIATE_TEST_SUITE_P(
    Framing, HeadParserRejects,
    ::testing::Values(
        Bad{"cl_then_te", post("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"), 400,
            "both Content-Length and Transfer-Encoding"},
        Bad{"te_then_cl", post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"), 400,
            "both Content-Length and Transfer-Encoding"},
        Bad{"cl_twice_equal", post("Content-Length: 3\r\nContent-Length: 3\r\n"), 400,
            "several Content-Length fields"},
        Bad{"cl_twice_different", post("Content-Length: 3\r\nContent-Length: 4\r\n"), 400,
            "several Content-Length fields"},
        Bad{"cl_list", post("Content-Length: 3, 3\r\n"), 400, "bad Content-Length"},
        Bad{"cl_negative", post("Content-Length: -1\r\n"), 400, "bad Content-Length"},
        Bad{"cl_plus", post("Content-Length: +1\r\n"), 400, "bad Content-Length"},
        Bad{"cl_hex", post("Content-Length: 0x10\r\n"), 400, "bad Content-Length"},
        Bad{"cl_inner_space", post("Content-Length: 1 2\r\n"), 400, "bad Content-Length"},
        Bad{"cl_empty", post("Content-Length:\r\n"), 400, "bad Content-Length"},
        Bad{"cl_above_2_53", post("Content-Length: 9007199254740993\r\n"), 400,
            "Content-Length above 2^53"},
        Bad{"cl_above_2_64", post("Content-Length: 99999999999999999999999\r\n"), 400,
            "Content-Length above 2^53"},
        Bad{"te_in_http10", post("Transfer-Encoding: chunked\r\n", "HTTP/1.0"), 400,
            "Transfer-Encoding in HTTP/1.0"},
        // llhttp refuses anything after "chunked", even an empty list element.
        Bad{"te_chunked_not_last", post("Transfer-Encoding: chunked, gzip\r\n"), 400,
            "bad Transfer-Encoding"},
        Bad{"te_chunked_not_last_across_fields",
            post("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"), 400,
            "bad Transfer-Encoding"},
        Bad{"te_trailing_empty_element", post("Transfer-Encoding: chunked ,\r\n"), 400,
            "bad Transfer-Encoding"},
        Bad{"te_chunked_with_parameter", post("Transfer-Encoding: chunked;x=1\r\n"), 400,
            "Transfer-Encoding without chunked last"},
        Bad{"te_without_chunked", post("Transfer-Encoding: gzip\r\n"), 400,
            "Transfer-Encoding without chunked last"},
        Bad{"te_empty", post("Transfer-Encoding:\r\n"), 400,
            "Transfer-Encoding without chunked last"},
        Bad{"te_chunked_twice", post("Transfer-Encoding: chunked, chunked\r\n"), 400,
            "bad Transfer-Encoding"},
        Bad{"te_chunked_twice_across_fields",
            post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400,
            "bad Transfer-Encoding"},
        Bad{"te_other_coding_across_fields",
            post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), 501,
            "transfer coding other than chunked"},
        Bad{"te_other_coding", post("Transfer-Encoding: gzip, chunked\r\n"), 501,
            "transfer coding other than chunked"},
        Bad{"expect_other", post("Expect: 200-ok\r\nContent-Length: 1\r\n"), 417,
            "Expect other than 100-continue"},
        Bad{"expect_list", post("Expect: 100-continue, x\r\n"), 417,
            "Expect other than 100-continue"},
        Bad{"expect_empty", post("Expect:\r\n"), 417, "Expect other than 100-continue"},
        Bad{"body_over_limit", post("Content-Length: 11\r\n"), 413, "body over max_request_body",
            body_limit(10)}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(HeadParser, BodyAtTheLimitIsAccepted) {
  Outcome o = parse(post("Content-Length: 10\r\n"), body_limit(10));
  EXPECT_EQ(o.status, ParseStatus::head_complete) << o;
}

// ---------------------------------------------------------------------------------------
// Streams: body bytes, pipelining, reuse.

TEST(HeadParser, StopsAtTheEndOfTheHeadAndLeavesTheBody) {
  const std::string head = "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
  const std::string in = head + "hello";
  HeadParser parser;
  std::size_t used = 0;
  ASSERT_EQ(parser.feed(in, &used), ParseStatus::head_complete);
  EXPECT_EQ(used, head.size());
  EXPECT_EQ(in.substr(used), "hello");
  // Complete: further bytes are not taken.
  EXPECT_EQ(parser.feed("more", &used), ParseStatus::head_complete);
  EXPECT_EQ(used, 0u);
}

TEST(HeadParser, BodyBytesThatLookLikeJunkAreNotParsed) {
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n";
  for (std::size_t cut = 0; cut <= head.size(); ++cut) {
    HeadParser parser;
    std::size_t used = 0;
    const std::string first = head.substr(0, cut);
    const std::string second = head.substr(cut) + "\0\n\r "s;
    ParseStatus s = parser.feed(first, &used);
    std::size_t left = first.size() - used + second.size();
    if (s == ParseStatus::need_more) {
      s = parser.feed(second, &used);
      left = second.size() - used;
    }
    ASSERT_EQ(s, ParseStatus::head_complete) << cut;
    EXPECT_EQ(left, 4u) << cut;
  }
}

TEST(HeadParser, ParsesPipelinedRequestsAtEverySplitPoint) {
  const std::string a = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
  const std::string b = "GET /b HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
  const std::string c = "GET /c HTTP/1.0\r\n\r\n";
  const std::string stream = a + "xyz" + b + c;
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    // The connection reads the stream in two reads, cut anywhere.
    std::vector<std::string> reads = {stream.substr(0, cut), stream.substr(cut)};
    HeadParser parser;
    std::vector<std::string> targets;
    std::uint64_t body_left = 0;
    for (const std::string& read : reads) {
      std::string_view rest = read;
      while (!rest.empty()) {
        if (body_left > 0) {
          std::size_t skip = std::min<std::size_t>(body_left, rest.size());
          rest.remove_prefix(skip);
          body_left -= skip;
          continue;
        }
        std::size_t used = 0;
        ParseStatus s = parser.feed(rest, &used);
        ASSERT_NE(s, ParseStatus::error) << cut << ": " << parser.error().reason;
        rest.remove_prefix(used);
        if (s == ParseStatus::head_complete) {
          targets.emplace_back(parser.head().target);
          body_left = parser.head().content_length.value_or(0);
          parser.reset();
        }
      }
    }
    EXPECT_EQ(targets, (std::vector<std::string>{"/a", "/b", "/c"})) << cut;
    EXPECT_FALSE(parser.started());
  }
}

TEST(HeadParser, ResetMakesItReusableAndForgetsTheLastHead) {
  HeadParser parser;
  std::size_t used = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string target = "/r" + std::to_string(i);
    const std::string in = "GET " + target + " HTTP/1.1\r\nHost: h" + std::to_string(i % 7) +
                           "\r\nX-I: " + std::to_string(i) + "\r\n\r\n";
    ASSERT_EQ(parser.feed(in, &used), ParseStatus::head_complete);
    EXPECT_EQ(parser.head().target, target);
    EXPECT_EQ(parser.head().headers.size(), 2u);
    EXPECT_EQ(parser.head().field("x-i"), std::to_string(i));
    parser.reset();
    EXPECT_TRUE(parser.head().headers.empty());
    EXPECT_EQ(parser.status(), ParseStatus::need_more);
  }
  // After an error, too.
  ASSERT_EQ(parser.feed("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &used), ParseStatus::error);
  EXPECT_EQ(parser.feed(kGet, &used), ParseStatus::error);
  EXPECT_EQ(used, 0u);
  parser.reset();
  EXPECT_EQ(parser.feed(kGet, &used), ParseStatus::head_complete);
}

TEST(HeadParser, StartedTellsWhetherPartOfAHeadCame) {
  HeadParser parser;
  std::size_t used = 0;
  EXPECT_FALSE(parser.started());
  EXPECT_EQ(parser.feed("", &used), ParseStatus::need_more);
  EXPECT_FALSE(parser.started());
  EXPECT_EQ(parser.feed("GE", &used), ParseStatus::need_more);
  EXPECT_TRUE(parser.started());
  parser.reset();
  EXPECT_FALSE(parser.started());
}

TEST(HeadParser, MovedParserKeepsParsing) {
  HeadParser a;
  std::size_t used = 0;
  ASSERT_EQ(a.feed("GET / HTTP/1.1\r\nHo", &used), ParseStatus::need_more);
  HeadParser b(std::move(a));
  ASSERT_EQ(b.feed("st: x\r\n\r\n", &used), ParseStatus::head_complete);
  EXPECT_EQ(b.head().host, "x");
}

TEST(HeadParser, FieldLooksUpCaseInsensitively) {
  HeadParser parser;
  std::size_t used = 0;
  ASSERT_EQ(parser.feed("GET / HTTP/1.1\r\nHost: a\r\nX-Y: 1\r\nx-y: 2\r\n\r\n", &used),
            ParseStatus::head_complete);
  EXPECT_EQ(parser.head().field("X-y"), "1");
  EXPECT_FALSE(parser.head().field("X-Z"));
}

// ---------------------------------------------------------------------------------------
// Mutations: random edits of valid heads never crash, never read out of bounds (ASan), and
// give the same answer whole and in random pieces.

TEST(HeadParser, SurvivesMutatedInputAndStaysSplitInvariant) {
  const std::vector<std::string> corpus = {
      kGet,
      "POST /upload?x=1 HTTP/1.1\r\nHost: s-01arz3ndektsv4rrffq69g5fav-3000.preview.test\r\n"
      "Content-Length: 12\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\n\r\n",
      "PUT /c HTTP/1.1\r\nHost: [::1]:8080\r\nTransfer-Encoding: chunked\r\n"
      "Connection: keep-alive\r\n\r\n",
      "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      "GET http://a.example:81/p HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\nAccess-Control-Request-Method: PUT\r\n\r\n",
  };
  const std::string alphabet = "\r\n \t:,;\0\x7f\x80-./0123456789aAzZ[]@?#"s;
  std::mt19937 rng(20240611);
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n)(rng); };
  HeadLimits limits;
  limits.max_header_bytes = 400;
  limits.max_request_line_bytes = 120;
  limits.max_header_fields = 8;
  HeadParser whole_parser(limits);
  HeadParser split_parser(limits);
  int completes = 0;
  int errors = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string in = corpus[pick(corpus.size() - 1)];
    const std::size_t edits = 1 + pick(3);
    for (std::size_t e = 0; e < edits && !in.empty(); ++e) {
      const std::size_t at = pick(in.size() - 1);
      switch (pick(5)) {
        case 0:
          in[at] = alphabet[pick(alphabet.size() - 1)];
          break;
        case 1:
          in.insert(in.begin() + static_cast<std::ptrdiff_t>(at),
                    alphabet[pick(alphabet.size() - 1)]);
          break;
        case 2:
          in.erase(at, 1 + pick(3));
          break;
        case 3:
          in.insert(at, in.substr(pick(in.size() - 1), pick(40)));
          break;
        case 4:
          in.resize(at);
          break;
        default:
          in[at] = static_cast<char>(pick(255));
          break;
      }
    }
    whole_parser.reset();
    const Outcome whole = parse_pieces(whole_parser, in, {});
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < in.size(); ++i) {
      if (pick(7) == 0) cuts.push_back(i);
    }
    split_parser.reset();
    const Outcome split = parse_pieces(split_parser, in, cuts);
    ASSERT_EQ(whole, split) << "iteration " << iter << ": " << testing::PrintToString(in);
    if (whole.status == ParseStatus::head_complete) {
      ++completes;
      EXPECT_LE(whole.consumed, in.size());
      EXPECT_FALSE(whole.method.empty());
      EXPECT_TRUE(whole.version == HttpVersion::http10 || whole.has_host_header);
      EXPECT_FALSE(whole.chunked && whole.content_length);
    } else if (whole.status == ParseStatus::error) {
      ++errors;
      EXPECT_FALSE(whole.reason.empty());
    }
  }
  // The loop explores both sides of the grammar.
  EXPECT_GT(completes, 1000);
  EXPECT_GT(errors, 1000);
}

}  // namespace
}  // namespace sandboxd::edge
