// The audit log's read side and its bounds (SPEC §8): the filtered, paged list of GET
// /v1/audit, and the retention sweep by age and by row cap, against a real SQLite file with
// the store's clock injected (no sleeps: time moves by hand).
#include "store/audit_repo.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace sandboxd::store {
namespace {

using namespace std::chrono_literals;
using testing::fresh_id;
using testing::TempDir;

constexpr std::int64_t kDay = 24 * 3600 * 1000;

class AuditRetention : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Store::open(testing::options_for(dir_), clock_);
    ASSERT_TRUE(opened) << opened.error().message();
    store_ = std::move(*opened);
  }

  // Appends one row per ts (in the given order); returns their ids.
  std::vector<std::int64_t> append_at(const std::vector<std::int64_t>& ts,
                                      const std::string& action = "sandbox.start",
                                      const std::optional<std::string>& sandbox = std::nullopt,
                                      const std::string& actor = "system") {
    std::vector<std::int64_t> ids;
    Status st = store_->write([&](Tx& tx) -> Status {
      for (std::int64_t t : ts) {
        auto id = audit_repo::append(
            tx, AuditRow{.ts = t, .actor = actor, .action = action, .sandbox_id = sandbox});
        if (!id) return id.error();
        ids.push_back(*id);
      }
      return ok();
    });
    EXPECT_TRUE(st) << st.error().message();
    return ids;
  }

  std::vector<std::int64_t> ids_of(const AuditFilter& f) {
    auto rows = audit_repo::list(*store_, f);
    EXPECT_TRUE(rows) << rows.error().message();
    std::vector<std::int64_t> out;
    if (rows) {
      for (const auto& r : *rows) out.push_back(r.id);
    }
    return out;
  }

  std::int64_t count() { return testing::query_int(*store_, "SELECT count(*) FROM audit"); }

  std::int64_t now() const { return clock_.unix_ms(); }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(AuditRetention, ListFiltersNewestFirstAndPagesByPosition) {
  const std::string a = fresh_id();
  const std::string b = fresh_id();
  auto a_ids = append_at({1000, 2000, 3000}, "sandbox.create", a, "token:ci");
  auto b_ids = append_at({1500, 2500}, "sandbox.stop", b, "system");
  // Same ts as a row of a: the id breaks the tie (newest id first).
  auto tie = append_at({2000}, "sandbox.stop", a, "token:ci");

  EXPECT_EQ(ids_of({}), (std::vector<std::int64_t>{a_ids[2], b_ids[1], tie[0], a_ids[1], b_ids[0],
                                                   a_ids[0]}));
  EXPECT_EQ(ids_of({.sandbox_id = a}),
            (std::vector<std::int64_t>{a_ids[2], tie[0], a_ids[1], a_ids[0]}));
  EXPECT_EQ(ids_of({.action = "sandbox.stop"}), (std::vector<std::int64_t>{b_ids[1], tie[0], b_ids[0]}));
  EXPECT_EQ(ids_of({.sandbox_id = a, .action = "sandbox.stop", .actor = "token:ci"}),
            (std::vector<std::int64_t>{tie[0]}));
  EXPECT_EQ(ids_of({.actor = "system"}), (std::vector<std::int64_t>{b_ids[1], b_ids[0]}));
  EXPECT_EQ(ids_of({.since_ms = 2000}), (std::vector<std::int64_t>{a_ids[2], b_ids[1], tie[0], a_ids[1]}));
  EXPECT_TRUE(ids_of({.actor = "nobody"}).empty());

  // Pages of two, each after the (ts, id) of the last row served.
  std::vector<std::int64_t> paged;
  AuditFilter page{.limit = 2};
  for (int i = 0; i < 10; ++i) {
    auto rows = audit_repo::list(*store_, page);
    ASSERT_TRUE(rows);
    for (const auto& r : *rows) paged.push_back(r.id);
    if (rows->size() < 2) break;
    page.after = std::pair{rows->back().ts, rows->back().id};
  }
  EXPECT_EQ(paged, ids_of({}));
  // The position needs no row: a page after a deleted row still continues.
  EXPECT_EQ(ids_of({.after = std::pair{std::int64_t{2000}, std::int64_t{1'000'000}}, .limit = 10}),
            (std::vector<std::int64_t>{tie[0], a_ids[1], b_ids[0], a_ids[0]}));
}

TEST_F(AuditRetention, SweepDeletesRowsOlderThanTheRetentionInBatches) {
  // 7 rows past 90 days, 2 inside; batches of 3 take three write jobs for the old ones.
  std::vector<std::int64_t> old_ts;
  for (int i = 0; i < 7; ++i) old_ts.push_back(now() - 91 * kDay - i * 1000);
  append_at(old_ts);
  auto recent = append_at({now() - 89 * kDay, now()});
  const std::uint64_t batches_before = store_->writer_stats().jobs_committed;

  auto swept = audit_repo::sweep(*store_, 90 * 24h, 1'000'000, 3);
  ASSERT_TRUE(swept) << swept.error().message();
  EXPECT_EQ(swept->by_age, 7);
  EXPECT_EQ(swept->by_cap, 0);
  EXPECT_EQ(ids_of({}), (std::vector<std::int64_t>{recent[1], recent[0]}));
  // 3 + 3 + 1 by age (the short batch ends it), then one cap check.
  EXPECT_EQ(store_->writer_stats().jobs_committed - batches_before, 4u);

  // Two days later the 89-day-old row is past the retention too.
  clock_.advance(2 * 24h);
  swept = audit_repo::sweep(*store_, 90 * 24h, 1'000'000, 3);
  ASSERT_TRUE(swept);
  EXPECT_EQ(swept->by_age, 1);
  EXPECT_EQ(ids_of({}), (std::vector<std::int64_t>{recent[1]}));
}

TEST_F(AuditRetention, SweepKeepsAtMostMaxRowsDeletingTheOldest) {
  std::vector<std::int64_t> ts;
  for (int i = 0; i < 12; ++i) ts.push_back(now() - (12 - i) * 1000);  // oldest first
  auto ids = append_at(ts);
  auto swept = audit_repo::sweep(*store_, 90 * 24h, 5, 3);
  ASSERT_TRUE(swept) << swept.error().message();
  EXPECT_EQ(swept->by_age, 0);
  EXPECT_EQ(swept->by_cap, 7);
  EXPECT_EQ(count(), 5);
  EXPECT_EQ(ids_of({}), (std::vector<std::int64_t>{ids[11], ids[10], ids[9], ids[8], ids[7]}));

  // At the cap nothing more goes; one row over it, the oldest goes.
  swept = audit_repo::sweep(*store_, 90 * 24h, 5, 3);
  ASSERT_TRUE(swept);
  EXPECT_EQ(swept->by_cap, 0);
  auto newest = append_at({now()});
  swept = audit_repo::sweep(*store_, 90 * 24h, 5, 3);
  ASSERT_TRUE(swept);
  EXPECT_EQ(swept->by_cap, 1);
  EXPECT_EQ(ids_of({}), (std::vector<std::int64_t>{newest[0], ids[11], ids[10], ids[9], ids[8]}));
}

TEST_F(AuditRetention, AgeGoesFirstThenTheCapCountsWhatIsLeft) {
  auto old_ids = append_at({now() - 100 * kDay, now() - 95 * kDay});
  auto fresh = append_at({now() - 3000, now() - 2000, now() - 1000});
  auto swept = audit_repo::sweep(*store_, 90 * 24h, 2, kAuditSweepBatch);
  ASSERT_TRUE(swept);
  EXPECT_EQ(swept->by_age, 2);
  EXPECT_EQ(swept->by_cap, 1);
  EXPECT_EQ(ids_of({}), (std::vector<std::int64_t>{fresh[2], fresh[1]}));
}

}  // namespace
}  // namespace sandboxd::store
