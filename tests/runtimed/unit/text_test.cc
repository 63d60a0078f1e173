#include "runtimed/events.h"
#include "runtimed/paths.h"
#include "runtimed/text.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <csignal>

namespace sandboxd::runtimed {
namespace {

Clock::WallTime at_ms(std::int64_t ms) {
  return Clock::WallTime(std::chrono::duration_cast<Clock::WallTime::duration>(
      std::chrono::milliseconds(ms)));
}

TEST(TextTest, TimesHaveMillisecondsAndParseBack) {
  auto t = at_ms(1795359787123);  // 2026-11-22T15:03:07.123Z
  EXPECT_EQ(format_time_ms(t), "2026-11-22T15:03:07.123Z");
  EXPECT_EQ(format_time_ms(at_ms(0)), "1970-01-01T00:00:00.000Z");
  auto parsed = parse_time_ms("2026-11-22T15:03:07.123Z");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, t);
  for (const char* bad : {"", "2026-11-22T14:23:07Z", "2026-11-22 14:23:07.123Z",
                          "2026-13-22T14:23:07.123Z", "2026-11-22T14:23:07.123", "x"}) {
    EXPECT_FALSE(parse_time_ms(bad)) << bad;
  }
}

TEST(TextTest, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(valid_utf8("plain"), "plain");
  EXPECT_EQ(valid_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(valid_utf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(valid_utf8("\xC3"), "\xEF\xBF\xBD");              // truncated sequence
  EXPECT_EQ(valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(TextTest, CutsNeverSplitACharacter) {
  std::string s = "ab\xE2\x82\xAC" "cd";  // "ab€cd"
  EXPECT_EQ(utf8_cut(s, 100), s.size());
  EXPECT_EQ(utf8_cut(s, 2), 2u);
  EXPECT_EQ(utf8_cut(s, 3), 2u);
  EXPECT_EQ(utf8_cut(s, 4), 2u);
  EXPECT_EQ(utf8_cut(s, 5), 5u);
  EXPECT_EQ(utf8_cut("\xFF\xFF\xFF", 2), 2u);  // invalid bytes count one each
  EXPECT_EQ(first_chars("h\xC3\xA9llo", 2), "h\xC3\xA9");
  EXPECT_EQ(first_chars("hi", 200), "hi");
}

TEST(TextTest, SignalNamesAndConstantTimeCompare) {
  EXPECT_EQ(signal_name(SIGKILL), "SIGKILL");
  EXPECT_EQ(signal_name(SIGTERM), "SIGTERM");
  EXPECT_EQ(signal_name(77), "SIG77");
  EXPECT_TRUE(equal_constant_time("secret", "secret"));
  EXPECT_FALSE(equal_constant_time("secret", "secreT"));
  EXPECT_FALSE(equal_constant_time("secret", "secret2"));
  EXPECT_FALSE(equal_constant_time("", "x"));
  EXPECT_TRUE(equal_constant_time("", ""));
}

TEST(TextTest, EventLineIsTheEnvelope) {
  boost::json::object data;
  data["text"] = "hi \"there\"";
  std::string line = event_line(7, "stdout", at_ms(1795359787123), data);
  EXPECT_EQ(line,
            R"({"id":7,"type":"stdout","ts":"2026-11-22T15:03:07.123Z","data":{"text":"hi \"there\""}})"
            "\n");
}

TEST(PathsTest, RelativePathsAreNormalizedOrRefused) {
  EXPECT_EQ(*normalize_relative_path("workspace/app", "cwd"), "workspace/app");
  EXPECT_EQ(*normalize_relative_path("./workspace//app/", "cwd"), "workspace/app");
  EXPECT_EQ(*normalize_relative_path(".", "cwd"), ".");
  struct Bad {
    std::string path;
    std::string words;
  };
  for (const Bad& b : std::vector<Bad>{{"", "empty"},
                                        {"/etc", "absolute"},
                                        {"a/../b", ".."},
                                        {"..", ".."},
                                        {std::string("a\0b", 3), "NUL"},
                                        {std::string(4097, 'a'), "4096"},
                                        {std::string(256, 'a'), "255"}}) {
    auto r = normalize_relative_path(b.path, "cwd");
    ASSERT_FALSE(r) << b.path;
    EXPECT_NE(r.error().detail.find("cwd: "), std::string::npos);
    EXPECT_NE(r.error().detail.find(b.words), std::string::npos) << r.error().detail;
  }
}

TEST(PathsTest, AgentPathsBecomeWorkspaceRelative) {
  EXPECT_EQ(workspace_relative("/home/sandbox/workspace/app/src/a.ts", "/home/sandbox", "workspace/app"),
            "workspace/app/src/a.ts");
  EXPECT_EQ(workspace_relative("src/a.ts", "/home/sandbox", "workspace/app"), "workspace/app/src/a.ts");
  EXPECT_EQ(workspace_relative("../b.ts", "/home/sandbox", "workspace/app"), "workspace/b.ts");
  EXPECT_EQ(workspace_relative("/etc/passwd", "/home/sandbox", "workspace/app"), "/etc/passwd");
  EXPECT_EQ(workspace_relative("/home/sandboxes/x", "/home/sandbox", "."), "/home/sandboxes/x");
  EXPECT_EQ(workspace_relative("../../../x", "/home/sandbox", "workspace/app"), "../../../x");
}

}  // namespace
}  // namespace sandboxd::runtimed
