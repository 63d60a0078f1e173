#include "idle_reaper.h"

#include "base/clock.h"
#include "base/ulid.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>

namespace sandboxd::control {
namespace {

using namespace std::chrono_literals;

constexpr const char* kA = "01JAAAAAAAAAAAAAAAAAAAAAAA";
constexpr const char* kB = "01JBBBBBBBBBBBBBBBBBBBBBBB";
constexpr const char* kC = "01JCCCCCCCCCCCCCCCCCCCCCCC";

config::IdleConfig idle_config() {
  config::IdleConfig c;
  c.threshold = 60s;
  return c;
}

store::SandboxRow running_row(const char* id, std::int64_t last_active_at) {
  store::SandboxRow row;
  row.id = id;
  row.status = "running";
  row.last_active_at = last_active_at;
  return row;
}

edge::SandboxActivity activity(const char* id, std::int64_t last_ms) {
  edge::SandboxActivity a;
  a.id = *Ulid::parse(id);
  a.last_activity_ms = last_ms;
  return a;
}

struct Case {
  const char* name;
  void (*change_row)(store::SandboxRow&, std::int64_t now);
  // Null: the edge never saw the sandbox.
  void (*change_edge)(edge::SandboxActivity&, std::int64_t now);
  bool websockets_count = true;
  bool control_busy = false;
  bool idle;
};

void nothing(store::SandboxRow&, std::int64_t) {}

TEST(IdleReaper, RuleTable) {
  const Case cases[] = {
      {"quiet past threshold", nothing, nullptr, true, false, true},
      {"exactly at threshold", [](store::SandboxRow& r, std::int64_t now) { r.last_active_at = now - 60'000; },
       nullptr, true, false, true},
      {"stored activity too recent", [](store::SandboxRow& r, std::int64_t now) { r.last_active_at = now - 59'999; },
       nullptr, true, false, false},
      {"edge activity too recent", nothing,
       [](edge::SandboxActivity& a, std::int64_t now) { a.last_activity_ms = now - 1000; }, true, false, false},
      {"edge activity old", nothing,
       [](edge::SandboxActivity& a, std::int64_t now) { a.last_activity_ms = now - 120'000; }, true, false, true},
      {"stopped", [](store::SandboxRow& r, std::int64_t) { r.status = "stopped"; }, nullptr, true, false, false},
      {"stopping", [](store::SandboxRow& r, std::int64_t) { r.status = "stopping"; }, nullptr, true, false, false},
      {"waking", [](store::SandboxRow& r, std::int64_t) { r.status = "waking"; }, nullptr, true, false, false},
      {"creating", [](store::SandboxRow& r, std::int64_t) { r.status = "creating"; }, nullptr, true, false, false},
      {"error", [](store::SandboxRow& r, std::int64_t) { r.status = "error"; }, nullptr, true, false, false},
      {"always_on", [](store::SandboxRow& r, std::int64_t) { r.idle_policy = "always_on"; }, nullptr, true, false,
       false},
      {"keepalive in the future",
       [](store::SandboxRow& r, std::int64_t now) { r.keepalive_until = now + 1; }, nullptr, true, false, false},
      {"keepalive now has expired",
       [](store::SandboxRow& r, std::int64_t now) { r.keepalive_until = now; }, nullptr, true, false, true},
      {"keepalive in the past",
       [](store::SandboxRow& r, std::int64_t now) { r.keepalive_until = now - 1000; }, nullptr, true, false, true},
      {"open connection", nothing, [](edge::SandboxActivity& a, std::int64_t) { a.open_connections = 1; }, true,
       false, false},
      {"in-flight request", nothing, [](edge::SandboxActivity& a, std::int64_t) { a.in_flight = 1; }, true, false,
       false},
      {"held request", nothing, [](edge::SandboxActivity& a, std::int64_t) { a.held = 2; }, true, false, false},
      {"open tunnel counts", nothing, [](edge::SandboxActivity& a, std::int64_t) { a.open_tunnels = 1; }, true,
       false, false},
      {"open tunnel ignored when websockets do not count", nothing,
       [](edge::SandboxActivity& a, std::int64_t) { a.open_tunnels = 1; }, false, false, true},
      {"open connection counts even when websockets do not", nothing,
       [](edge::SandboxActivity& a, std::int64_t) { a.open_connections = 1; }, false, false, false},
      {"control busy (exec in flight)", nothing, nullptr, true, true, false},
  };
  ManualClock clock;
  const std::int64_t now = clock.unix_ms();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto cfg = idle_config();
    cfg.websockets_count_as_activity = c.websockets_count;
    auto row = running_row(kA, now - 10 * 60'000);
    c.change_row(row, now);
    std::vector<edge::SandboxActivity> snapshot;
    if (c.change_edge) {
      snapshot.push_back(activity(kA, 0));
      c.change_edge(snapshot.back(), now);
    }
    ControlBusy busy;
    if (c.control_busy) busy.insert(kA);
    auto ids = idle_candidates({row}, snapshot, now, cfg, busy);
    EXPECT_EQ(!ids.empty(), c.idle);
    EXPECT_EQ(is_idle(row, snapshot.empty() ? nullptr : &snapshot[0], c.control_busy, now, cfg), c.idle);
  }
}

TEST(IdleReaper, BecomesIdleAsTimePasses) {
  ManualClock clock;
  auto cfg = idle_config();
  auto row = running_row(kA, clock.unix_ms());
  EXPECT_TRUE(idle_candidates({row}, {}, clock.unix_ms(), cfg).empty());
  clock.advance(59s);
  EXPECT_TRUE(idle_candidates({row}, {}, clock.unix_ms(), cfg).empty());
  clock.advance(1s);
  EXPECT_EQ(idle_candidates({row}, {}, clock.unix_ms(), cfg), std::vector<std::string>{kA});
}

TEST(IdleReaper, LeastRecentlyActiveFirst) {
  ManualClock clock;
  const std::int64_t now = clock.unix_ms();
  std::vector<store::SandboxRow> rows{running_row(kA, now - 100'000), running_row(kB, now - 300'000),
                                      running_row(kC, now - 200'000)};
  // The edge saw B recently enough to move it after C, but still past the threshold.
  std::vector<edge::SandboxActivity> snapshot{activity(kB, now - 150'000)};
  auto ids = idle_candidates(rows, snapshot, now, idle_config());
  EXPECT_EQ(ids, (std::vector<std::string>{kC, kB, kA}));
}

config::PressureBand band(double below, std::chrono::milliseconds idle_for) {
  return config::PressureBand{below, idle_for};
}

TEST(PressureReaper, ActiveBandIsTheSmallestBelowAboveAvailable) {
  const std::vector<config::PressureBand> bands{band(15, 5min), band(10, 1min), band(5, 0s)};
  EXPECT_FALSE(active_band(bands, 40));
  EXPECT_FALSE(active_band(bands, 15));
  EXPECT_EQ(active_band(bands, 14.9)->below, 15);
  EXPECT_EQ(active_band(bands, 9)->below, 10);
  EXPECT_EQ(active_band(bands, 0.5)->below, 5);
  EXPECT_EQ(band_label(band(15, 5min)), "15");
  EXPECT_EQ(band_label(band(7.5, 5min)), "7.5");
}

TEST(PressureReaper, VictimsAreIdleForTheBandLeastRecentlyActiveFirst) {
  ManualClock clock;
  const std::int64_t now = clock.unix_ms();
  std::vector<store::SandboxRow> rows{running_row(kA, now - 100'000), running_row(kB, now - 300'000),
                                      running_row(kC, now - 30'000)};
  // 1 min band: C is too recent.
  EXPECT_EQ(pressure_victims(rows, {}, now, band(10, 1min), idle_config()),
            (std::vector<std::string>{kB, kA}));
  // A busy sandbox (an exec in flight) is spared.
  EXPECT_EQ(pressure_victims(rows, {}, now, band(10, 1min), idle_config(), {kB}),
            (std::vector<std::string>{kA}));
  // The 0s band takes every running sandbox: the idle ones first, then the busy and the
  // always_on, each group least recently active first.
  rows[2].idle_policy = "always_on";
  EXPECT_EQ(pressure_victims(rows, {}, now, band(5, 0s), idle_config(), {kB}),
            (std::vector<std::string>{kA, kB, kC}));
}

TEST(IdleReaper, EdgeOnlyEntriesForUnknownRowsAreIgnored) {
  ManualClock clock;
  const std::int64_t now = clock.unix_ms();
  std::vector<edge::SandboxActivity> snapshot{activity(kB, now - 300'000)};
  EXPECT_TRUE(idle_candidates({}, snapshot, now, idle_config()).empty());
}

TEST(IdleReaper, ActivityFlushWritesOnlyWhatAdvanced) {
  ManualClock clock;
  const std::int64_t now = clock.unix_ms();
  ActivityFlush flush;
  std::vector<edge::SandboxActivity> snapshot{activity(kA, now), activity(kB, 0)};
  auto marks = flush.pending(snapshot);
  ASSERT_EQ(marks.size(), 1u) << "no activity yet (0) writes nothing";
  EXPECT_EQ(marks[0].id, kA);
  EXPECT_EQ(marks[0].last_active_at, now);

  // Not committed (the write failed): the next flush tries again.
  EXPECT_EQ(flush.pending(snapshot).size(), 1u);
  flush.committed(marks);
  EXPECT_TRUE(flush.pending(snapshot).empty()) << "nothing moved since the last flush";

  snapshot[0].last_activity_ms = now + 1000;
  snapshot[1].last_activity_ms = now + 500;
  marks = flush.pending(snapshot);
  ASSERT_EQ(marks.size(), 2u);
  EXPECT_EQ(marks[0].id, kA);
  EXPECT_EQ(marks[0].last_active_at, now + 1000);
  EXPECT_EQ(marks[1].id, kB);
  EXPECT_EQ(marks[1].last_active_at, now + 500);
  flush.committed(marks);
  EXPECT_TRUE(flush.pending(snapshot).empty());
}

}  // namespace
}  // namespace sandboxd::control
