#include <gtest/gtest.h>

#include "store/store.h"
#include "test_util.h"

namespace sandboxd::store {
namespace {

using testing::query_int;
using testing::RawDb;
using testing::TempDir;

const int kEmbedded = static_cast<int>(embedded_migrations().size());

// The embedded list followed by `extra` synthetic upgrades, to play a database forward
// through versions this build does not have yet.
std::vector<Migration> with_synthetic(int extra) {
  static const std::vector<std::string> kSql = {
      "CREATE TABLE extra_a (id INTEGER PRIMARY KEY, note TEXT NOT NULL) STRICT;\n",
      "ALTER TABLE extra_a ADD COLUMN flag INTEGER NOT NULL DEFAULT 0;\n"
      "CREATE INDEX extra_a_flag_idx ON extra_a(flag);\n",
      "CREATE TABLE extra_c (x INTEGER) STRICT;\n",
      "CREATE TABLE extra_d (x INTEGER) STRICT;\n",
  };
  std::vector<Migration> out = embedded_migrations();
  for (int i = 0; i < extra; ++i) {
    out.push_back(Migration{kEmbedded + i + 1, std::string("synthetic_") + char('a' + i),
                            kSql.at(static_cast<std::size_t>(i))});
  }
  return out;
}

std::vector<Migration> first(const std::vector<Migration>& all, int n) {
  return {all.begin(), all.begin() + n};
}

std::string backup_of(const TempDir& dir, int version) {
  return dir.db().string() + ".bak-v" + std::to_string(version);
}

Status open_and_close(const TempDir& dir, std::vector<Migration> migrations) {
  ManualClock clock;
  auto store = Store::open(testing::options_for(dir), clock, std::move(migrations));
  if (!store) return store.error();
  return ok();
}

TEST(StoreMigration, UpgradesFromEmptyAndFromEveryEarlierVersion) {
  const auto all = with_synthetic(2);
  const int newest = static_cast<int>(all.size());
  for (int start = 0; start < newest; ++start) {
    SCOPED_TRACE("starting at version " + std::to_string(start));
    TempDir dir;
    ManualClock clock;
    if (start > 0) {
      auto old = Store::open(testing::options_for(dir), clock, first(all, start));
      ASSERT_TRUE(old) << old.error().message();
      ASSERT_TRUE((*old)->write([](Tx& tx) {
        return tx.exec("INSERT INTO audit (ts, actor, action) VALUES (7, 'system', 'before')");
      }));
    }
    auto store = Store::open(testing::options_for(dir), clock, all);
    ASSERT_TRUE(store) << store.error().message();
    Store& s = **store;
    EXPECT_EQ(query_int(s, "PRAGMA user_version"), newest);
    EXPECT_EQ(query_int(s, "SELECT count(*) FROM schema_migration"), newest);
    EXPECT_EQ(query_int(s, "SELECT max(version) FROM schema_migration"), newest);
    EXPECT_EQ(query_int(s, "SELECT count(*) FROM pragma_table_info('extra_a') WHERE name = 'flag'"),
              1);
    EXPECT_EQ(query_int(s, "SELECT count(*) FROM instance"), 1);
    EXPECT_EQ(query_int(s, "SELECT count(*) FROM audit WHERE action = 'before'"),
              start > 0 ? 1 : 0);
    for (int v = 0; v <= newest; ++v) {
      // Only an existing database is backed up, once, under the version it had.
      EXPECT_EQ(std::filesystem::exists(backup_of(dir, v)), start > 0 && v == start) << v;
    }
    if (start > 0) {
      RawDb backup(backup_of(dir, start));
      EXPECT_EQ(backup.integer("PRAGMA user_version"), start);
      EXPECT_EQ(backup.integer("SELECT count(*) FROM audit WHERE action = 'before'"), 1);
      EXPECT_EQ(backup.text("PRAGMA integrity_check"), "ok");
    }
  }
}

TEST(StoreMigration, KeepsTheLastThreeBackups) {
  TempDir dir;
  const auto all = with_synthetic(4);
  for (int n = kEmbedded; n <= kEmbedded + 4; ++n) {
    ASSERT_TRUE(open_and_close(dir, first(all, n))) << n;
  }
  EXPECT_FALSE(std::filesystem::exists(backup_of(dir, kEmbedded)));
  for (int v = kEmbedded + 1; v <= kEmbedded + 3; ++v) {
    EXPECT_TRUE(std::filesystem::exists(backup_of(dir, v))) << v;
  }
  std::size_t backups = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "state")) {
    if (entry.path().filename().string().find(".bak-v") != std::string::npos) ++backups;
  }
  EXPECT_EQ(backups, 3u);  // and no -wal/-shm left beside them
}

TEST(StoreMigration, RefusesANewerDatabaseWithTheExactMessage) {
  TempDir dir;
  ASSERT_TRUE(open_and_close(dir, with_synthetic(2)));
  ManualClock clock;
  auto store = Store::open(testing::options_for(dir), clock, embedded_migrations());
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, Errc::too_new);
  EXPECT_EQ(store.error().detail, "database schema version " + std::to_string(kEmbedded + 2) +
                                      " is newer than this sandboxd (knows " +
                                      std::to_string(kEmbedded) +
                                      "); run a newer sandboxd or restore " + dir.path().string() +
                                      "/state/sandboxd.db.bak-v" + std::to_string(kEmbedded));
  RawDb db(dir.db());
  EXPECT_EQ(db.integer("PRAGMA user_version"), kEmbedded + 2);  // untouched
}

TEST(StoreMigration, RefusesAnAppliedMigrationWhoseTextChanged) {
  TempDir dir;
  ASSERT_TRUE(open_and_close(dir, with_synthetic(1)));
  auto edited = with_synthetic(1);
  edited.back().sql += "-- edited after release\n";
  ManualClock clock;
  auto store = Store::open(testing::options_for(dir), clock, edited);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, Errc::corrupt);
  EXPECT_NE(store.error().detail.find(migration_label(edited.back())), std::string::npos)
      << store.error().detail;
  EXPECT_NE(store.error().detail.find(sha256_hex(edited.back().sql)), std::string::npos);
}

TEST(StoreMigration, AFailingMigrationLeavesTheLastGoodVersion) {
  TempDir dir;
  ASSERT_TRUE(open_and_close(dir, with_synthetic(1)));
  auto broken = with_synthetic(2);
  broken.back().sql = "CREATE TABLE extra_b (x INTEGER) STRICT;\nCREATE TABLE oops (;\n";
  ManualClock clock;
  auto store = Store::open(testing::options_for(dir), clock, broken);
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().detail.find(migration_label(broken.back())), std::string::npos)
      << store.error().detail;
  RawDb db(dir.db());
  EXPECT_EQ(db.integer("PRAGMA user_version"), kEmbedded + 1);
  EXPECT_EQ(db.integer("SELECT count(*) FROM schema_migration"), kEmbedded + 1);
  EXPECT_EQ(db.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'extra_b'"), 0);
  EXPECT_TRUE(std::filesystem::exists(backup_of(dir, kEmbedded + 1)));
  // The previous build still opens it.
  EXPECT_TRUE(open_and_close(dir, with_synthetic(1)));
}

TEST(StoreMigration, RefusesAListWithAGap) {
  TempDir dir;
  auto gap = with_synthetic(2);
  gap.erase(gap.end() - 2);
  ManualClock clock;
  auto store = Store::open(testing::options_for(dir), clock, gap);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, Errc::internal);
}

TEST(StoreMigration, MigrationsRunWithForeignKeysCheckedBeforeCommit) {
  TempDir dir;
  auto bad = with_synthetic(0);
  bad.push_back(Migration{kEmbedded + 1, "orphan_port",
                          "INSERT INTO sandbox_port (sandbox_id, port, position) "
                          "VALUES ('01ARZ3NDEKTSV4RRFFQ69G5FAV', 80, 0);\n"});
  ManualClock clock;
  auto store = Store::open(testing::options_for(dir), clock, bad);
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().detail.find("foreign key"), std::string::npos) << store.error().detail;
  RawDb db(dir.db());
  EXPECT_EQ(db.integer("SELECT count(*) FROM sandbox_port"), 0);
}

}  // namespace
}  // namespace sandboxd::store
