#include "runtimed/line_splitter.h"

#include <gtest/gtest.h>

namespace sandboxd::runtimed {
namespace {

struct Out {
  std::string text;
  bool partial;
  bool operator==(const Out&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Out& o) {
  return os << "{\"" << o.text << "\"," << (o.partial ? "partial" : "whole") << "}";
}

std::vector<Out> run(const std::vector<std::string>& chunks, std::size_t max) {
  LineSplitter s(max);
  std::vector<LineSplitter::Piece> pieces;
  for (const auto& c : chunks) s.feed(c, pieces);
  s.finish(pieces);
  std::vector<Out> out;
  for (auto& p : pieces) out.push_back({p.text, p.partial});
  return out;
}

struct Case {
  std::string input;
  std::size_t max;
  std::vector<Out> expected;
};

const std::vector<Case> kCases{
    {"", 16, {}},
    {"a\nb\n", 16, {{"a", false}, {"b", false}}},
    {"a\r\nb\r\n", 16, {{"a", false}, {"b", false}}},
    {"a\rb\r", 16, {{"a", false}, {"b", false}}},
    {"a\r\rb", 16, {{"a", false}, {"", false}, {"b", false}}},
    {"a\n\r\nb", 16, {{"a", false}, {"", false}, {"b", false}}},
    {"\n\n", 16, {{"", false}, {"", false}}},
    {"no end", 16, {{"no end", false}}},
    {"progress 10%\rprogress 20%\rdone\n", 64,
     {{"progress 10%", false}, {"progress 20%", false}, {"done", false}}},
    {"abcdefghij\n", 4, {{"abcd", true}, {"efgh", true}, {"ij", false}}},
    {"abcdefgh\n", 4, {{"abcd", true}, {"efgh", false}}},
    {"abcdefgh", 4, {{"abcd", true}, {"efgh", false}}},
    // A 3-byte character is never cut: "ab€" with max 4 keeps € whole in the next piece.
    {"ab\xE2\x82\xAC" "cd\n", 4, {{"ab", true}, {"\xE2\x82\xAC" "c", true}, {"d", false}}},
    {"abc\xE2\x82\xAC\n", 4, {{"abc", true}, {"\xE2\x82\xAC", false}}},
    {"abc\xE2\x82\xAC", 4, {{"abc", true}, {"\xE2\x82\xAC", false}}},
};

TEST(LineSplitterTest, WholeInput) {
  for (const Case& c : kCases) {
    EXPECT_EQ(run({c.input}, c.max), c.expected) << "input: " << c.input;
  }
}

TEST(LineSplitterTest, EverySplitPointGivesTheSameLines) {
  for (const Case& c : kCases) {
    for (std::size_t i = 0; i <= c.input.size(); ++i) {
      for (std::size_t j = i; j <= c.input.size(); ++j) {
        std::vector<std::string> chunks{c.input.substr(0, i), c.input.substr(i, j - i),
                                        c.input.substr(j)};
        EXPECT_EQ(run(chunks, c.max), c.expected) << "input: " << c.input << " split at " << i
                                                  << "," << j;
      }
    }
  }
}

TEST(LineSplitterTest, ByteByByte) {
  for (const Case& c : kCases) {
    std::vector<std::string> chunks;
    for (char ch : c.input) chunks.emplace_back(1, ch);
    EXPECT_EQ(run(chunks, c.max), c.expected) << "input: " << c.input;
  }
}

TEST(LineSplitterTest, SixteenKibLines) {
  std::string line(40000, 'x');
  auto out = run({line + "\n"}, 16 * 1024);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].text.size(), 16384u);
  EXPECT_TRUE(out[0].partial);
  EXPECT_EQ(out[1].text.size(), 16384u);
  EXPECT_TRUE(out[1].partial);
  EXPECT_EQ(out[2].text.size(), 40000u - 2 * 16384u);
  EXPECT_FALSE(out[2].partial);
}

TEST(LineSplitterTest, SplitPiecesAreMarked) {
  LineSplitter s(4);
  std::vector<LineSplitter::Piece> pieces;
  s.feed("abcdef\nxy\n", pieces);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_TRUE(pieces[0].split);
  EXPECT_TRUE(pieces[1].split);
  EXPECT_FALSE(pieces[2].split);
}

}  // namespace
}  // namespace sandboxd::runtimed
