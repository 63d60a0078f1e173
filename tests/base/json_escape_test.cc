#include "base/json_escape.h"

#include <gtest/gtest.h>

namespace sandboxd {
namespace {

std::string esc(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(JsonEscape, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(esc("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(esc("\n\r\t"), R"("\n\r\t")");
  EXPECT_EQ(esc(std::string_view("\x01\x7f", 2)), R"("\u0001\u007f")");
  EXPECT_EQ(esc(std::string_view("\0", 1)), R"("\u0000")");
}

TEST(JsonEscape, KeepsValidUtf8) {
  EXPECT_EQ(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

TEST(JsonEscape, ReplacesInvalidUtf8) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(esc("\xff"), "\"" + r + "\"");
  EXPECT_EQ(esc("\xc3"), "\"" + r + "\"");                // truncated
  EXPECT_EQ(esc("\xc0\xaf"), "\"" + r + r + "\"");        // overlong '/'
  EXPECT_EQ(esc("\xed\xa0\x80"), "\"" + r + r + r + "\"");  // surrogate
}

}  // namespace
}  // namespace sandboxd
