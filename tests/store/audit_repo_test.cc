#include "store/audit_repo.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace sandboxd::store {
namespace {

using testing::fresh_id;
using testing::TempDir;

TEST(StoreAudit, AppendThenListNewestFirst) {
  TempDir dir;
  ManualClock clock;
  auto opened = Store::open(testing::options_for(dir), clock);
  ASSERT_TRUE(opened) << opened.error().message();
  Store& store = **opened;
  const std::string sandbox = fresh_id();

  AuditRow full{.ts = 2000,
                .actor = "token:ci",
                .actor_ip = "10.0.0.1",
                .request_id = "req-1",
                .action = "sandbox.create",
                .sandbox_id = sandbox,
                .detail = R"({"image":"node"})"};
  AuditRow now_row{.actor = "system", .action = "sandbox.stop", .sandbox_id = sandbox};
  AuditRow other{
      .ts = 3000, .actor = "operator", .action = "sandbox.create", .sandbox_id = fresh_id()};
  std::vector<std::int64_t> ids;
  ASSERT_TRUE(store.write([&](Tx& tx) -> Status {
    for (const auto* row : {&full, &now_row, &other}) {
      auto id = audit_repo::append(tx, *row);
      if (!id) return id.error();
      ids.push_back(*id);
    }
    return ok();
  }));
  ASSERT_EQ(ids.size(), 3u);

  auto rows = audit_repo::list_for_sandbox(store, sandbox, 10);
  ASSERT_TRUE(rows) << rows.error().message();
  ASSERT_EQ(rows->size(), 2u);
  // now_row took the clock's time (2026), so it is newer than ts 2000.
  AuditRow expected_now = now_row;
  expected_now.id = ids[1];
  expected_now.ts = clock.unix_ms();
  AuditRow expected_full = full;
  expected_full.id = ids[0];
  EXPECT_EQ((*rows)[0], expected_now);
  EXPECT_EQ((*rows)[1], expected_full);

  auto limited = audit_repo::list_for_sandbox(store, sandbox, 1);
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->size(), 1u);
}

TEST(StoreAudit, DetailMustBeJson) {
  TempDir dir;
  auto opened = Store::open(testing::options_for(dir));
  ASSERT_TRUE(opened);
  Status st = (*opened)->write([](Tx& tx) -> Status {
    auto id = audit_repo::append(tx, AuditRow{.actor = "system", .action = "x", .detail = "{nope"});
    if (!id) return id.error();
    return ok();
  });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::conflict);
}

}  // namespace
}  // namespace sandboxd::store
