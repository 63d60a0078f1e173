#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "store/store.h"
#include "test_util.h"

namespace sandboxd::store {
namespace {

using testing::query_int;
using testing::query_text;
using testing::TempDir;

int mode_of(const std::filesystem::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

TEST(StoreSchema, OpenEmptyMakesEveryTableStrict) {
  TempDir dir;
  ManualClock clock;
  auto store = Store::open(testing::options_for(dir), clock);
  ASSERT_TRUE(store) << store.error().message();
  Store& s = **store;

  for (const char* table :
       {"sandbox", "sandbox_port", "task", "task_event", "audit", "instance", "schema_migration"}) {
    EXPECT_EQ(query_int(s, std::string("SELECT strict FROM pragma_table_list WHERE name = '") +
                               table + "'"),
              1)
        << table;
  }
  EXPECT_EQ(query_int(s,
                      "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
                      "name NOT LIKE 'sqlite_autoindex%'"),
            9);
  const auto newest = static_cast<std::int64_t>(embedded_migrations().size());
  EXPECT_EQ(query_int(s, "PRAGMA user_version"), newest);
  EXPECT_EQ(query_int(s, "SELECT count(*) FROM schema_migration"), newest);
  EXPECT_EQ(*query_text(s, "SELECT sha256 FROM schema_migration WHERE version = 1"),
            sha256_hex(embedded_migrations()[0].sql));
  EXPECT_EQ(query_int(s, "SELECT applied_at FROM schema_migration WHERE version = 1"),
            clock.unix_ms());
}

TEST(StoreSchema, MakesOneInstanceRowAndKeepsIt) {
  TempDir dir;
  ManualClock clock;
  std::string first;
  {
    auto store = Store::open(testing::options_for(dir), clock);
    ASSERT_TRUE(store) << store.error().message();
    first = (*store)->instance_id().str();
    EXPECT_EQ(*query_text(**store, "SELECT id FROM instance"), first);
    EXPECT_EQ(query_int(**store, "SELECT created_at FROM instance"), clock.unix_ms());
    EXPECT_EQ(query_int(**store, "SELECT count(*) FROM instance"), 1);
  }
  auto again = Store::open(testing::options_for(dir), clock);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ((*again)->instance_id().str(), first);
  EXPECT_EQ(query_int(**again, "SELECT count(*) FROM instance"), 1);
}

TEST(StoreSchema, DirectoryAndFilesArePrivate) {
  TempDir dir;
  // With no umask at all, only the store's own care keeps the files private.
  const mode_t old_umask = ::umask(0);
  auto store = Store::open(testing::options_for(dir));
  ::umask(old_umask);
  ASSERT_TRUE(store) << store.error().message();
  ASSERT_TRUE((*store)->write([](Tx& tx) {
    return tx.exec("INSERT INTO audit (ts, actor, action) VALUES (1, 'system', 'x')");
  }));
  EXPECT_EQ(mode_of(dir.path() / "state"), 0700);
  EXPECT_EQ(mode_of(dir.db()), 0600);
  EXPECT_EQ(mode_of(dir.db().string() + "-wal"), 0600);
  EXPECT_EQ(mode_of(dir.db().string() + "-shm"), 0600);
}

TEST(StoreSchema, TightensAWideStateDirectory) {
  TempDir dir;
  ASSERT_EQ(::mkdir((dir.path() / "state").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((dir.path() / "state").c_str(), 0755), 0);
  auto store = Store::open(testing::options_for(dir));
  ASSERT_TRUE(store) << store.error().message();
  EXPECT_EQ(mode_of(dir.path() / "state"), 0700);
}

TEST(StoreSchema, RefusesASymlinkedStateDirectory) {
  TempDir dir;
  TempDir elsewhere;
  ASSERT_EQ(::symlink(elsewhere.path().c_str(), (dir.path() / "state").c_str()), 0);
  auto store = Store::open(testing::options_for(dir));
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, Errc::invalid_argument);
  EXPECT_NE(store.error().detail.find("symbolic link"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(elsewhere.path() / "sandboxd.db"));
}

TEST(StoreSchema, ConnectionsCarryTheSpecPragmas) {
  TempDir dir;
  auto store = Store::open(testing::options_for(dir));
  ASSERT_TRUE(store) << store.error().message();
  Store& s = **store;
  EXPECT_EQ(*query_text(s, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query_int(s, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(query_int(s, "PRAGMA query_only"), 1);
  EXPECT_EQ(query_int(s, "PRAGMA temp_store"), 2);  // MEMORY
  EXPECT_EQ(query_int(s, "PRAGMA busy_timeout"), 5000);

  // The writer's own settings, seen from inside a write job.
  std::int64_t synchronous = -1, size_limit = -1, fk = -1;
  ASSERT_TRUE(s.write([&](Tx& tx) -> Status {
    for (auto [sql, out] : {std::pair{"PRAGMA synchronous", &synchronous},
                            std::pair{"PRAGMA journal_size_limit", &size_limit},
                            std::pair{"PRAGMA foreign_keys", &fk}}) {
      auto stmt = tx.prepare(sql);
      if (!stmt) return stmt.error();
      if (auto row = stmt->step(); !row) return row.error();
      *out = stmt->column_int64(0);
    }
    return ok();
  }));
  EXPECT_EQ(synchronous, 2);  // FULL
  EXPECT_EQ(size_limit, 64 * 1024 * 1024);
  EXPECT_EQ(fk, 1);
}

TEST(StoreSchema, BusyTimeoutComesFromOptions) {
  TempDir dir;
  auto options = testing::options_for(dir);
  options.busy_timeout = std::chrono::milliseconds(1234);
  auto store = Store::open(options);
  ASSERT_TRUE(store) << store.error().message();
  EXPECT_EQ(query_int(**store, "PRAGMA busy_timeout"), 1234);
}

TEST(StoreSchema, ReadConnectionsCannotWrite) {
  TempDir dir;
  auto store = Store::open(testing::options_for(dir));
  ASSERT_TRUE(store) << store.error().message();
  Status st = (*store)->read(
      [](Tx& tx) { return tx.exec("INSERT INTO audit (ts, actor, action) VALUES (1, 'a', 'b')"); });
  ASSERT_FALSE(st);
  EXPECT_EQ(query_int(**store, "SELECT count(*) FROM audit"), 0);
}

TEST(StoreSchema, PingAnswersUntilClosed) {
  TempDir dir;
  auto store = Store::open(testing::options_for(dir));
  ASSERT_TRUE(store) << store.error().message();
  EXPECT_TRUE((*store)->ping());
  (*store)->close();
  Status st = (*store)->ping();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::unavailable);
}

// The build refuses gaps in store/migrations/; this checks the same from the other side:
// every file is embedded byte for byte, numbered from 1 with no gaps.
TEST(StoreSchema, EmbeddedMigrationsMatchTheFiles) {
  const auto& migrations = embedded_migrations();
  ASSERT_FALSE(migrations.empty());
  const std::filesystem::path src =
      std::filesystem::path(SANDBOXD_SOURCE_DIR) / "store" / "migrations";
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(src)) {
    if (entry.path().extension() == ".sql") ++files;
  }
  EXPECT_EQ(files, migrations.size());
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    const Migration& m = migrations[i];
    EXPECT_EQ(m.version, static_cast<int>(i) + 1);
    std::ifstream in(src / (migration_label(m) + ".sql"), std::ios::binary);
    ASSERT_TRUE(in) << migration_label(m);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), m.sql) << migration_label(m);
  }
}

TEST(StoreSchema, Sha256MatchesKnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace sandboxd::store
