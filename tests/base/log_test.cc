#include "base/log.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>

namespace sandboxd::log {
namespace {

// 2026-11-22T15:02:07.123Z
constexpr std::int64_t kTs = 1795359727123;

TEST(LogFormat, TextIsOneLineWithFields) {
  std::string line = format_line(Format::text, Level::info, "store", "migration applied",
                                 {{"version", 3}, {"name", "init"}, {"ok", true}}, kTs);
  EXPECT_EQ(line,
            "2026-11-22T15:02:07.123Z info  store: migration applied version=3 name=init ok=true\n");
}

TEST(LogFormat, TextQuotesValuesThatWouldBeAmbiguous) {
  std::string line = format_line(Format::text, Level::warn, "config", "reload failed",
                                 {{"error", "a b=c"}, {"empty", ""}, {"nl", "x\ny"}}, kTs);
  EXPECT_EQ(line, "2026-11-22T15:02:07.123Z warn  config: reload failed error=\"a b=c\" "
                  "empty=\"\" nl=\"x\\ny\"\n");
}

TEST(LogFormat, JsonKeepsNumbersUnquotedAndEscapesStrings) {
  std::string line = format_line(Format::json, Level::error, "app", "bad \"thing\"",
                                 {{"n", -7}, {"s", "tab\there"}, {"b", false}}, kTs);
  EXPECT_EQ(line,
            "{\"ts\":\"2026-11-22T15:02:07.123Z\",\"level\":\"error\",\"module\":\"app\","
            "\"msg\":\"bad \\\"thing\\\"\",\"n\":-7,\"s\":\"tab\\there\",\"b\":false}\n");
}

TEST(LogWrite, RespectsLevelAndWritesToTheSink) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  set_fd(fds[1]);
  set_level(Level::warn);
  constexpr Logger kLog{"test"};
  kLog.info("dropped");
  kLog.warn("kept", {{"k", 1}});
  set_fd(2);
  set_level(Level::info);
  close(fds[1]);
  char buf[512];
  ssize_t n = read(fds[0], buf, sizeof buf);
  close(fds[0]);
  ASSERT_GT(n, 0);
  std::string got(buf, static_cast<std::size_t>(n));
  EXPECT_EQ(got.find("dropped"), std::string::npos);
  EXPECT_NE(got.find("test: kept k=1\n"), std::string::npos);
}

TEST(LogLevel, Parses) {
  Level l{};
  EXPECT_TRUE(parse_level("debug", &l));
  EXPECT_EQ(l, Level::debug);
  EXPECT_FALSE(parse_level("DEBUG", &l));
  EXPECT_FALSE(parse_level("verbose", &l));
}

}  // namespace
}  // namespace sandboxd::log
