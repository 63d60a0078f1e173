#include "base/json.h"

#include <gtest/gtest.h>

#include <random>

namespace sandboxd {
namespace {

namespace json = boost::json;

TEST(Json, ParsesEveryKindOfValue) {
  auto v = parse_json(R"( {"s":"a\u00e9\ud83d\ude00","i":-42,"u":18446744073709551615,
                           "d":1.5e3,"t":true,"f":false,"n":null,"a":[1,[2,{}]],"o":{}} )");
  ASSERT_TRUE(v) << v.error().message();
  const auto& o = v->as_object();
  EXPECT_EQ(o.at("s").as_string(), "a\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(o.at("i").as_int64(), -42);
  EXPECT_EQ(o.at("u").as_uint64(), 18446744073709551615ull);
  EXPECT_DOUBLE_EQ(o.at("d").as_double(), 1500.0);
  EXPECT_TRUE(o.at("t").as_bool());
  EXPECT_TRUE(o.at("n").is_null());
  EXPECT_EQ(o.at("a").as_array().size(), 2u);
}

TEST(Json, IntegersStayIntegersAndFractionsDoNot) {
  EXPECT_TRUE(parse_json("3000")->is_int64());
  EXPECT_TRUE(parse_json("3000.0")->is_double());
  EXPECT_TRUE(parse_json("3e3")->is_double());
  EXPECT_TRUE(parse_json("-0")->is_int64());
}

struct Bad {
  const char* name;
  std::string text;
  std::string detail;
};

void PrintTo(const Bad& b, std::ostream* os) { *os << b.name; }

class JsonRejects : public ::testing::TestWithParam<Bad> {};

TEST_P(JsonRejects, WithOffsetAndReason) {
  auto v = parse_json(GetParam().text);
  ASSERT_FALSE(v) << GetParam().text;
  EXPECT_EQ(v.error().code, Errc::invalid_argument);
  EXPECT_EQ(v.error().detail, GetParam().detail);
}

INSTANTIATE_TEST_SUITE_P(
    Table, JsonRejects,
    ::testing::Values(
        Bad{"empty", "", "invalid JSON at byte 0: unexpected end of input"},
        Bad{"spaces", "   ", "invalid JSON at byte 3: unexpected end of input"},
        Bad{"truncated_object", R"({"a":1)", "invalid JSON at byte 6: unexpected end of input"},
        Bad{"truncated_string", R"({"a":"xy)", "invalid JSON at byte 8: unterminated string"},
        Bad{"trailing", R"({"a":1} x)",
            "invalid JSON at byte 8: unexpected data after the JSON value"},
        Bad{"two_values", R"({} {})",
            "invalid JSON at byte 3: unexpected data after the JSON value"},
        Bad{"duplicate_key", R"({"ports":[1],"ports":[2]})",
            "invalid JSON at byte 13: duplicate key \"ports\""},
        Bad{"nested_duplicate", R"({"a":{"b":1,"b":2}})",
            "invalid JSON at byte 12: duplicate key \"b\""},
        Bad{"single_quotes", "{'a':1}", "invalid JSON at byte 1: expected a string key"},
        Bad{"trailing_comma", R"({"a":1,})", "invalid JSON at byte 7: expected a string key"},
        Bad{"array_trailing_comma", "[1,]", "invalid JSON at byte 3: unexpected character"},
        Bad{"missing_colon", R"({"a" 1})", "invalid JSON at byte 5: expected ':'"},
        Bad{"leading_zero", "01", "invalid JSON at byte 1: unexpected data after the JSON value"},
        Bad{"plus_sign", "+1", "invalid JSON at byte 0: unexpected character"},
        Bad{"bare_dot", "1.", "invalid JSON at byte 2: expected digits after '.'"},
        Bad{"nan", "NaN", "invalid JSON at byte 0: unexpected character"},
        Bad{"huge_exponent", "1e999", "invalid JSON at byte 0: number out of range"},
        Bad{"bad_literal", "tru", "invalid JSON at byte 0: invalid literal"},
        Bad{"bad_escape", R"("\x")", "invalid JSON at byte 2: invalid escape"},
        Bad{"control_char", "\"a\tb\"", "invalid JSON at byte 2: control character in string"},
        Bad{"lone_high_surrogate", R"("\ud800")", "invalid JSON at byte 7: unpaired surrogate"},
        Bad{"lone_low_surrogate", R"("\udc00")", "invalid JSON at byte 7: unpaired surrogate"},
        Bad{"invalid_utf8", "\"\xff\"", "invalid JSON at byte 1: invalid UTF-8"},
        Bad{"overlong_utf8", "\"\xc0\xaf\"", "invalid JSON at byte 1: invalid UTF-8"},
        Bad{"utf8_surrogate", "\"\xed\xa0\x80\"", "invalid JSON at byte 1: invalid UTF-8"},
        Bad{"truncated_utf8", "\"\xe2\x82", "invalid JSON at byte 1: invalid UTF-8"},
        Bad{"utf8_in_key", "{\"\xff\":1}", "invalid JSON at byte 2: invalid UTF-8"},
        Bad{"nul_byte", std::string("{\"a\":\0}", 7), "invalid JSON at byte 5: unexpected character"},
        Bad{"comment", "{} // hi", "invalid JSON at byte 3: unexpected data after the JSON value"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(Json, DepthLimitCountsContainers) {
  std::string ok32 = std::string(32, '[') + std::string(32, ']');
  EXPECT_TRUE(parse_json(ok32));
  std::string deep = std::string(33, '[') + std::string(33, ']');
  auto v = parse_json(deep);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().detail, "invalid JSON at byte 32: nesting deeper than 32");
  // A million open brackets must not recurse a million times.
  EXPECT_FALSE(parse_json(std::string(1'000'000, '[')));
}

TEST(Json, ObjectRequiredAtTopLevel) {
  for (const char* text : {"[]", "1", "\"s\"", "null"}) {
    auto v = parse_json_object(text);
    ASSERT_FALSE(v) << text;
    EXPECT_EQ(v.error().detail, "request body must be a JSON object");
  }
  EXPECT_TRUE(parse_json_object("{}"));
}

// Cheap deterministic fuzzing: every prefix and thousands of byte mutations of a valid body
// must give a value or an error, never a crash (this suite also runs under ASan/UBSan).
TEST(Json, SurvivesPrefixesAndMutations) {
  const std::string seed =
      R"({"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","ports":[3000,8080],"env":{"A":"b\u00e9"},)"
      R"("x":[true,false,null,-1.5e-3,{"y":[]}]})";
  ASSERT_TRUE(parse_json(seed));
  for (std::size_t i = 0; i < seed.size(); ++i) {
    EXPECT_FALSE(parse_json(seed.substr(0, i))) << "prefix " << i;
  }
  std::mt19937 rng(12345);
  const std::string alphabet = "{}[]\",:\\u0123456789eE.-+tfnrl \x80\xc3\xff";
  for (int round = 0; round < 20000; ++round) {
    std::string s = seed;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      std::size_t at = rng() % s.size();
      s[at] = alphabet[rng() % alphabet.size()];
    }
    auto v = parse_json(s);
    if (!v) {
      EXPECT_EQ(v.error().detail.rfind("invalid JSON at byte ", 0), 0u);
    }
  }
}

}  // namespace
}  // namespace sandboxd
