// Human output: tables, relative times, IEC sizes, RFC 3339 (SPEC §12 "Output").
#include "cli/format.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

namespace sandboxd::cli {
namespace {

using namespace std::chrono_literals;

WallTime at(std::int64_t unix_s) { return WallTime(std::chrono::seconds(unix_s)); }

TEST(Format, TablesAlignColumnsWithoutTrailingSpaces) {
  std::string t =
      render_table({"ID", "STATUS", "PORTS"}, {{"A", "running", "3000"}, {"BBBB", "stopped", ""}});
  EXPECT_EQ(t,
            "ID    STATUS   PORTS\n"
            "A     running  3000\n"
            "BBBB  stopped\n");
  // Width counts characters, not bytes; short rows are padded; an empty table is its header.
  std::string u = render_table({"N", "X"}, {{"ü", "1"}, {"ab"}});
  EXPECT_EQ(u,
            "N   X\n"
            "ü   1\n"
            "ab\n");
  EXPECT_EQ(render_table({"A", "B"}, {}), "A  B\n");
  EXPECT_EQ(display_width("日本"), 2u);
}

TEST(Format, Fields) {
  EXPECT_EQ(render_fields({{"id", "X"}, {"idle-policy", "sleep"}, {"empty", ""}}),
            "id:          X\n"
            "idle-policy: sleep\n"
            "empty:\n");
}

TEST(Format, Rfc3339) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), at(0));
  EXPECT_EQ(parse_rfc3339("2026-11-22T15:02:07Z"), at(1795359727));
  EXPECT_EQ(parse_rfc3339("2026-11-22T16:02:07+01:00"), at(1795359727));
  EXPECT_EQ(parse_rfc3339("2026-11-22T15:02:07.500Z"), at(1795359727) + 500ms);
  EXPECT_EQ(parse_rfc3339("2000-02-29T00:00:00z"), at(951782400));
  for (const char* bad :
       {"", "2026-11-22", "2026-11-22T15:02:07", "2026-13-22T15:02:07Z", "2026-11-22T25:02:07Z",
        "2026-11-22T15:02:07.Z", "2026-11-22T15:02:07Zjunk", "2026-11-22T15:02:07+0100",
        "x026-11-22T15:02:07Z", "2026-11-22T15:02:07.1234567890Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

TEST(Format, RelativeTimes) {
  WallTime now = at(1'000'000);
  EXPECT_EQ(format_relative(now, now), "just now");
  EXPECT_EQ(format_relative(now - 500ms, now), "just now");
  EXPECT_EQ(format_relative(now - 45s, now), "45s ago");
  EXPECT_EQ(format_relative(now - 3min - 59s, now), "3m ago");
  EXPECT_EQ(format_relative(now - 5h, now), "5h ago");
  EXPECT_EQ(format_relative(now - 47h, now), "47h ago");
  EXPECT_EQ(format_relative(now - 48h, now), "2d ago");
  EXPECT_EQ(format_relative(now - 800 * 24h, now), "2y ago");
  EXPECT_EQ(format_relative(now + 60 * 24h, now), "in 60d");
  EXPECT_EQ(format_span(0s), "0s");
  EXPECT_EQ(format_span(-5s), "0s");
}

TEST(Format, IecSizes) {
  EXPECT_EQ(format_iec(0), "0 B");
  EXPECT_EQ(format_iec(1023), "1023 B");
  EXPECT_EQ(format_iec(1024), "1 KiB");
  EXPECT_EQ(format_iec(1536), "1.5 KiB");
  EXPECT_EQ(format_iec(1024 * 1024 - 1), "1023 KiB");
  EXPECT_EQ(format_iec(12 * 1024 + 700), "12 KiB");
  EXPECT_EQ(format_iec(2ULL << 30), "2 GiB");
  EXPECT_EQ(format_iec((2ULL << 30) - 1), "1.9 GiB");
  EXPECT_EQ(format_iec(UINT64_MAX), "15 EiB");
}

TEST(Format, Durations) {
  EXPECT_EQ(format_duration_ms(850), "850ms");
  EXPECT_EQ(format_duration_ms(12'345), "12.3s");
  EXPECT_EQ(format_duration_ms(245'000), "4m05s");
  EXPECT_EQ(format_duration_ms(7'380'000), "2h03m");
  EXPECT_EQ(format_duration_ms(-1), "0ms");
}

TEST(Format, ClockIsLocalTime) {
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(format_clock(at(1795359727)), "15:02:07");
  setenv("TZ", "Europe/Berlin", 1);
  tzset();
  EXPECT_EQ(format_clock(at(1795359727)), "16:02:07");
  unsetenv("TZ");
  tzset();
}

}  // namespace
}  // namespace sandboxd::cli
