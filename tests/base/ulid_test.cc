#include "base/ulid.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace sandboxd {
namespace {

TEST(Ulid, RoundTripsCanonicalText) {
  for (const char* text : {"01J9ZQ3V4X5Y6Z7A8B9C0D1E2F", "00000000000000000000000000",
                           "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}) {
    auto id = Ulid::parse(text);
    ASSERT_TRUE(id.has_value()) << text;
    EXPECT_EQ(id->str(), text);
  }
}

TEST(Ulid, AcceptsAnyCaseAndCanonicalizesToUpper) {
  auto lower = Ulid::parse("01arz3ndektsv4rrffq69g5fav");
  auto mixed = Ulid::parse("01ArZ3NdEkTsV4RrFfQ69G5FaV");
  ASSERT_TRUE(lower && mixed);
  EXPECT_EQ(lower->str(), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
  EXPECT_EQ(*lower, *mixed);
}

TEST(Ulid, MaxValueIsAllOnes) {
  auto id = Ulid::parse("7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
  ASSERT_TRUE(id);
  for (auto b : id->bytes()) EXPECT_EQ(b, 0xff);
}

TEST(Ulid, TimestampIsTheFirst48Bits) {
  // 01ARZ3NDEK decodes to 1469922850259 (10 base32 digits = 50 bits, top two zero).
  auto id = Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->unix_ms(), 1469922850259u);
}

struct Rejection {
  const char* name;
  std::string text;
};

void PrintTo(const Rejection& r, std::ostream* os) { *os << r.name; }

class UlidRejects : public ::testing::TestWithParam<Rejection> {};

TEST_P(UlidRejects, WithInvalidArgument) {
  auto id = Ulid::parse(GetParam().text);
  ASSERT_FALSE(id.has_value());
  EXPECT_EQ(id.error().code, Errc::invalid_argument);
  EXPECT_FALSE(id.error().detail.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Table, UlidRejects,
    ::testing::Values(
        Rejection{"empty", ""}, Rejection{"short", "01ARZ3NDEKTSV4RRFFQ69G5FA"},
        Rejection{"long", "01ARZ3NDEKTSV4RRFFQ69G5FAVV"},
        Rejection{"first_char_8", "81ARZ3NDEKTSV4RRFFQ69G5FAV"},
        Rejection{"first_char_Z", "Z1ARZ3NDEKTSV4RRFFQ69G5FAV"},
        Rejection{"alias_I", "01ARZ3NDEKTSV4RRFFQ69G5FAI"},
        Rejection{"alias_L", "01ARZ3NDEKTSV4RRFFQ69G5FAL"},
        Rejection{"alias_O", "01ARZ3NDEKTSV4RRFFQ69G5FAO"},
        Rejection{"excluded_U", "01ARZ3NDEKTSV4RRFFQ69G5FAU"},
        Rejection{"lower_u", "01ARZ3NDEKTSV4RRFFQ69G5FAu"},
        Rejection{"dot", "01ARZ3NDEKTSV4RRFFQ69G5FA."},
        Rejection{"dotdot", "..ARZ3NDEKTSV4RRFFQ69G5FAV"},
        Rejection{"slash", "01ARZ3NDEK/SV4RRFFQ69G5FAV"},
        Rejection{"hyphen", "01ARZ3NDEK-SV4RRFFQ69G5FAV"},
        Rejection{"percent", "01ARZ3NDEK%2FV4RRFFQ69G5FA"},
        Rejection{"space", "01ARZ3NDEK SV4RRFFQ69G5FAV"},
        Rejection{"nul", std::string("01ARZ3NDEK\0SV4RRFFQ69G5FAV", 26)},
        Rejection{"high_byte", "01ARZ3NDEK\xc3\xa9V4RRFFQ69G5FA"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(UlidGenerator, IdsInOneMillisecondIncrease) {
  ManualClock clock;
  UlidGenerator gen(clock);
  Ulid prev = gen.next();
  EXPECT_EQ(prev.unix_ms(), static_cast<std::uint64_t>(clock.unix_ms()));
  for (int i = 0; i < 1000; ++i) {
    Ulid next = gen.next();
    EXPECT_LT(prev, next);
    EXPECT_LT(prev.str(), next.str()) << "text order must follow value order";
    prev = next;
  }
}

TEST(UlidGenerator, NewMillisecondStartsFromTheClock) {
  ManualClock clock;
  UlidGenerator gen(clock);
  Ulid a = gen.next();
  clock.advance(std::chrono::milliseconds(5));
  Ulid b = gen.next();
  EXPECT_EQ(b.unix_ms(), a.unix_ms() + 5);
}

TEST(UlidGenerator, ClockStepBackwardsStillIncreases) {
  ManualClock clock;
  UlidGenerator gen(clock);
  Ulid a = gen.next();
  clock.set_wall(clock.wall() - std::chrono::seconds(10));
  EXPECT_LT(a, gen.next());
}

TEST(UlidGenerator, EveryGeneratedIdParsesBack) {
  for (int i = 0; i < 200; ++i) {
    Ulid id = new_ulid();
    auto back = Ulid::parse(id.str());
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, id);
  }
}

TEST(UlidGenerator, ThreadsGetDistinctIds) {
  UlidGenerator gen;
  std::vector<std::vector<Ulid>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& out : per_thread) {
    threads.emplace_back([&gen, &out] {
      for (int i = 0; i < 500; ++i) out.push_back(gen.next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<Ulid> all;
  for (auto& v : per_thread) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 2000u);
}

}  // namespace
}  // namespace sandboxd
