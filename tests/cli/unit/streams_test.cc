// NDJSON lines, Server-Sent Events and exec frames as sandboxctl reads them, split at every
// point and on malformed input.
#include "cli/streams.h"

#include <gtest/gtest.h>

#include <random>

namespace sandboxd::cli {
namespace {

std::vector<std::string> lines_of(std::string_view in, std::size_t cut) {
  LineSplitter s;
  std::vector<std::string> out;
  EXPECT_TRUE(s.feed(in.substr(0, cut), out));
  EXPECT_TRUE(s.feed(in.substr(cut), out));
  if (auto last = s.finish()) out.push_back(*last);
  return out;
}

TEST(LineSplitter, EverySplitPoint) {
  const std::string in = "{\"a\":1}\n\r\n{\"b\":2}\r\nlast";
  for (std::size_t cut = 0; cut <= in.size(); ++cut) {
    EXPECT_EQ(lines_of(in, cut), (std::vector<std::string>{"{\"a\":1}", "", "{\"b\":2}", "last"}))
        << cut;
  }
}

TEST(LineSplitter, LimitsLineLength) {
  LineSplitter s(8);
  std::vector<std::string> out;
  EXPECT_TRUE(s.feed("12345678\n", out));
  EXPECT_FALSE(s.feed("123456789", out));
  LineSplitter t(8);
  EXPECT_TRUE(t.feed("1234", out));
  EXPECT_FALSE(t.feed("56789\n", out));
}

std::vector<SseEvent> sse_of(std::string_view in, std::size_t cut, SseParser* p = nullptr) {
  SseParser local;
  SseParser& parser = p ? *p : local;
  std::vector<SseEvent> out;
  EXPECT_TRUE(parser.feed(in.substr(0, cut), out));
  EXPECT_TRUE(parser.feed(in.substr(cut), out));
  return out;
}

TEST(Sse, ParsesTheTaskEventStreamAtEverySplitPoint) {
  const std::string in =
      "retry: 2000\n\n"
      ": ping\n\n"
      "id: 1\nevent: started\ndata: {\"id\":1}\n\n"
      "id: 2\r\nevent: stdout\r\ndata: line one\r\ndata:line two\r\n\r\n"
      "id:3\rdata: x\r\r"
      "data\n\n"
      "id: 4\nevent: done\n\n";  // no data: not dispatched, but the id counts
  for (std::size_t cut = 0; cut <= in.size(); ++cut) {
    SseParser p;
    auto events = sse_of(in, cut, &p);
    ASSERT_EQ(events.size(), 4u) << cut;
    EXPECT_EQ(events[0].id, "1");
    EXPECT_EQ(events[0].event, "started");
    EXPECT_EQ(events[0].data, "{\"id\":1}");
    EXPECT_EQ(events[1].id, "2");
    EXPECT_EQ(events[1].data, "line one\nline two");
    EXPECT_EQ(events[2].id, "3");
    EXPECT_EQ(events[2].event, "message");
    EXPECT_EQ(events[2].data, "x");
    EXPECT_EQ(events[3].data, "");
    EXPECT_EQ(p.last_event_id(), "4") << cut;
    EXPECT_EQ(p.retry_ms(), 2000u);
  }
}

TEST(Sse, ResetKeepsTheLastIdAndDropsAPartialEvent) {
  SseParser p;
  std::vector<SseEvent> out;
  ASSERT_TRUE(p.feed("id: 7\ndata: done\n\nid: 8\ndata: half", out));
  ASSERT_EQ(out.size(), 1u);
  p.reset();
  EXPECT_EQ(p.last_event_id(), "8");
  ASSERT_TRUE(p.feed("\n\ndata: fresh\n\n", out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].data, "fresh");
}

TEST(Sse, OversizeEventsAreErrors) {
  SseParser p(16);
  std::vector<SseEvent> out;
  EXPECT_FALSE(p.feed("data: 0123456789abcdefXYZ\n\n", out));
  SseParser q(16);
  EXPECT_FALSE(q.feed("data: 0123456789\ndata: 0123456789\n\n", out));
  EXPECT_TRUE(out.empty());
}

TEST(Sse, RandomInputNeverCrashes) {
  std::mt19937 rng(777);
  const std::string alphabet = "data:id event retry: \r\n\n0123{}\"";
  for (int round = 0; round < 20000; ++round) {
    std::string in(rng() % 80, '\0');
    for (char& c : in)
      c = rng() % 5 == 0 ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    SseParser p(64);
    LineSplitter l(32);
    std::vector<SseEvent> events;
    std::vector<std::string> lines;
    std::size_t at = 0;
    while (at < in.size()) {
      std::size_t n = 1 + rng() % 9;
      auto piece = std::string_view(in).substr(at, n);
      (void)p.feed(piece, events);
      if (!l.feed(piece, lines)) break;
      at += n;
    }
    for (const auto& line : lines) (void)parse_exec_frame(line);
  }
}

TEST(ExecFrames, Parse) {
  auto start = parse_exec_frame(R"({"type":"start","exec_id":"01J"})");
  ASSERT_TRUE(start);
  EXPECT_EQ(start->type, ExecFrame::Type::start);
  EXPECT_EQ(start->exec_id, "01J");
  auto out = parse_exec_frame(R"({"type":"stdout","data":"hi\n"})");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->type, ExecFrame::Type::stdout_);
  EXPECT_EQ(out->data, "hi\n");
  auto raw = parse_exec_frame(R"({"type":"stderr","data_b64":"/wA="})");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->type, ExecFrame::Type::stderr_);
  EXPECT_EQ(raw->data, std::string("\xff\0", 2));
  EXPECT_TRUE(raw->binary);
  auto exit =
      parse_exec_frame(R"({"type":"exit","exit_code":3,"timed_out":false,"duration_ms":12})");
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 3);
  EXPECT_EQ(exit->duration_ms, 12);
  auto null_exit = parse_exec_frame(R"({"type":"exit","exit_code":null,"timed_out":true})");
  ASSERT_TRUE(null_exit);
  EXPECT_EQ(null_exit->exit_code, std::nullopt);
  EXPECT_TRUE(null_exit->timed_out);
  auto err = parse_exec_frame(R"({"type":"error","code":"internal","message":"docker went away"})");
  ASSERT_TRUE(err);
  EXPECT_EQ(err->type, ExecFrame::Type::error);
  EXPECT_EQ(err->message, "docker went away");
  EXPECT_EQ(parse_exec_frame(R"({"type":"heartbeat"})")->type, ExecFrame::Type::heartbeat);
  EXPECT_EQ(parse_exec_frame(R"({"type":"progress","pct":5})")->type, ExecFrame::Type::unknown);
}

TEST(ExecFrames, RefuseMalformedFrames) {
  for (const char* bad :
       {"", "not json", "[]", "{}", R"({"type":5})", R"({"type":"stdout"})",
        R"({"type":"stdout","data_b64":"!!"})", R"({"type":"exit"})",
        R"({"type":"exit","exit_code":"3"})", R"({"type":"exit","exit_code":1.5})",
        R"({"type":"exit","exit_code":99999999999})", R"({"type":"stdout","data":"a"} trailing)",
        R"({"type":"stdout","type":"stderr","data":"dup"})"}) {
    auto f = parse_exec_frame(bad);
    EXPECT_FALSE(f) << bad;
    if (!f) {
      EXPECT_EQ(exit_code_of(f.error(), true), 125) << bad;
    }
  }
}

TEST(Base64, Decodes) {
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_EQ(base64_decode("aGk="), "hi");
  EXPECT_EQ(base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(base64_decode("aGVsbG8h"), "hello!");
  for (const char* bad : {"a", "a===", "aG=k", "=aGk", "aGk=aGk=", "aG k"}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
}

}  // namespace
}  // namespace sandboxd::cli
