#include "store/sandbox_repo.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace sandboxd::store {
namespace {

using testing::fresh_id;
using testing::minimal_row;
using testing::query_int;
using testing::TempDir;

class StoreSandboxRepo : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Store::open(testing::options_for(dir_), clock_);
    ASSERT_TRUE(opened) << opened.error().message();
    store_ = std::move(*opened);
  }

  Status insert(const SandboxRow& row) {
    return store_->write([row](Tx& tx) { return sandbox_repo::insert(tx, row); });
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
};

SandboxRow every_field_set() {
  SandboxRow r;
  r.id = fresh_id();
  r.status = "stopped";
  r.node = "host-2";
  r.image = "sandboxd/node:22";
  r.env = R"({"A":"1","B":"two"})";
  r.visibility = "private";
  r.idle_policy = "always_on";
  r.template_name = "next-app";
  r.git_remote_url = "https://example.com/repo.git";
  r.dev_command = "npm run dev";
  r.dev_port = 5173;
  r.memory_bytes = 2LL * 1024 * 1024 * 1024;
  r.cpus_milli = 1500;
  r.pids = 512;
  r.keepalive_until = 1767225700000;
  r.last_active_at = 1767225650000;
  r.created_at = 1767225600000;
  r.updated_at = 1767225660000;
  r.started_at = 1767225601000;
  r.stopped_at = 1767225670000;
  r.stop_reason = "idle";
  r.exit_code = 137;
  r.oom_killed = true;
  r.container_id = std::string(64, 'a');
  r.container_ip = "172.30.0.7";
  r.container_missing = true;
  r.fresh_workspace = true;
  r.error_reason = "start_failed";
  r.error_message = "exec format error";
  r.external_user_id = "user-1";
  r.external_project_id = "proj-1";
  r.external_workspace_id = "ws-1";
  r.runtimed_secret_gen = 3;
  r.runtimed_secret_hash = std::string(64, 'f');
  r.spec_version = 4;
  r.ports = {3000, 8080};
  return r;
}

TEST_F(StoreSandboxRepo, InsertThenGetRoundTripsEveryField) {
  const SandboxRow row = every_field_set();
  ASSERT_TRUE(insert(row));
  auto got = sandbox_repo::get(*store_, row.id);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, row);

  auto listed = sandbox_repo::list(*store_);
  ASSERT_TRUE(listed) << listed.error().message();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front(), row);
}

TEST_F(StoreSandboxRepo, MinimalRowGetsTheSchemaDefaults) {
  SandboxRow row;
  row.id = fresh_id();
  row.status = "creating";
  row.image = "img";
  ASSERT_TRUE(insert(row));
  auto got = sandbox_repo::get(*store_, row.id);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->node, "local");
  EXPECT_EQ(got->env, "{}");
  EXPECT_EQ(got->visibility, "public");
  EXPECT_EQ(got->idle_policy, "sleep");
  EXPECT_EQ(got->spec_version, 1);
  // Zero times mean "now" on insert.
  EXPECT_EQ(got->created_at, clock_.unix_ms());
  EXPECT_EQ(got->updated_at, clock_.unix_ms());
  EXPECT_EQ(got->last_active_at, clock_.unix_ms());
  EXPECT_FALSE(got->dev_port.has_value());
  EXPECT_TRUE(got->ports.empty());
}

TEST_F(StoreSandboxRepo, PortsKeepDeclarationOrder) {
  auto row = minimal_row(fresh_id());
  row.ports = {8080, 3000, 443, 5173, 1, 65535};
  ASSERT_TRUE(insert(row));
  auto got = sandbox_repo::get(*store_, row.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->ports, row.ports);

  const std::vector<int> changed = {9000, 80};
  ASSERT_TRUE(store_->write([&](Tx& tx) { return sandbox_repo::set_ports(tx, row.id, changed); }));
  got = sandbox_repo::get(*store_, row.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->ports, changed);
  EXPECT_EQ(query_int(*store_, "SELECT count(*) FROM sandbox_port"), 2);
}

TEST_F(StoreSandboxRepo, DuplicateIdIsConflict) {
  auto row = minimal_row(fresh_id());
  ASSERT_TRUE(insert(row));
  Status again = insert(row);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::conflict);
  EXPECT_NE(again.error().detail.find(row.id), std::string::npos);
}

TEST_F(StoreSandboxRepo, ConstraintViolationsAreConflictsAndLeaveNothing) {
  auto bad_status = minimal_row(fresh_id());
  bad_status.status = "sleeping";
  EXPECT_EQ(insert(bad_status).error().code, Errc::conflict);

  auto lower_id = minimal_row("01arz3ndektsv4rrffq69g5fav");
  EXPECT_EQ(insert(lower_id).error().code, Errc::conflict);

  auto dup_port = minimal_row(fresh_id());
  dup_port.ports = {80, 80};
  EXPECT_EQ(insert(dup_port).error().code, Errc::conflict);

  auto bad_env = minimal_row(fresh_id());
  bad_env.env = "[1]";
  EXPECT_EQ(insert(bad_env).error().code, Errc::conflict);

  // The failed jobs rolled back entirely: no row, no orphan port.
  EXPECT_EQ(query_int(*store_, "SELECT count(*) FROM sandbox"), 0);
  EXPECT_EQ(query_int(*store_, "SELECT count(*) FROM sandbox_port"), 0);
}

TEST_F(StoreSandboxRepo, GetOfAnUnknownIdIsNotFound) {
  auto got = sandbox_repo::get(*store_, fresh_id());
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::not_found);
}

TEST_F(StoreSandboxRepo, ListFiltersAndShowsNewestFirst) {
  auto a = minimal_row(fresh_id(), 100);
  a.external_user_id = "u1";
  a.external_project_id = "p1";
  a.ports = {80};
  auto b = minimal_row(fresh_id(), 300);
  b.external_user_id = "u1";
  b.external_project_id = "p2";
  b.status = "stopped";
  b.ports = {81, 82};
  auto c = minimal_row(fresh_id(), 200);
  c.external_user_id = "u2";
  c.external_project_id = "p1";
  for (const auto& r : {a, b, c}) ASSERT_TRUE(insert(r));

  auto ids = [&](const SandboxFilter& f) {
    std::vector<std::string> out;
    auto rows = sandbox_repo::list(*store_, f);
    EXPECT_TRUE(rows) << rows.error().message();
    if (rows) {
      for (const auto& r : *rows) out.push_back(r.id);
    }
    return out;
  };
  EXPECT_EQ(ids({}), (std::vector<std::string>{b.id, c.id, a.id}));
  EXPECT_EQ(ids({.status = "running"}), (std::vector<std::string>{c.id, a.id}));
  EXPECT_EQ(ids({.external_user_id = "u1"}), (std::vector<std::string>{b.id, a.id}));
  EXPECT_EQ(ids({.external_project_id = "p1"}), (std::vector<std::string>{c.id, a.id}));
  EXPECT_EQ(ids({.status = "stopped", .external_user_id = "u1", .external_project_id = "p2"}),
            (std::vector<std::string>{b.id}));
  EXPECT_TRUE(ids({.external_user_id = "nobody"}).empty());

  auto rows = sandbox_repo::list(*store_);
  ASSERT_TRUE(rows);
  EXPECT_EQ((*rows)[0].ports, b.ports);
  EXPECT_EQ((*rows)[2].ports, a.ports);
}

TEST_F(StoreSandboxRepo, UpdateStatusSetsTimeAndErrorAndChecksExpectation) {
  auto row = minimal_row(fresh_id());
  ASSERT_TRUE(insert(row));
  clock_.advance(std::chrono::seconds(5));

  ASSERT_TRUE(store_->write([&](Tx& tx) {
    return sandbox_repo::update_status(
        tx, row.id, {.status = "error", .error_reason = "start_failed", .error_message = "boom"});
  }));
  auto got = sandbox_repo::get(*store_, row.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, "error");
  EXPECT_EQ(got->error_reason, "start_failed");
  EXPECT_EQ(got->error_message, "boom");
  EXPECT_EQ(got->updated_at, clock_.unix_ms());
  EXPECT_EQ(got->last_active_at, row.last_active_at);

  Status wrong = store_->write([&](Tx& tx) {
    return sandbox_repo::update_status(tx, row.id,
                                       {.status = "stopping", .expect_status = "running"});
  });
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::conflict);

  ASSERT_TRUE(store_->write([&](Tx& tx) {
    return sandbox_repo::update_status(tx, row.id, {.status = "waking", .expect_status = "error"});
  }));
  got = sandbox_repo::get(*store_, row.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, "waking");
  EXPECT_FALSE(got->error_reason.has_value());  // cleared

  Status missing = store_->write(
      [&](Tx& tx) { return sandbox_repo::update_status(tx, fresh_id(), {.status = "running"}); });
  EXPECT_EQ(missing.error().code, Errc::not_found);
}

TEST_F(StoreSandboxRepo, UpdateContainerFields) {
  auto row = minimal_row(fresh_id());
  ASSERT_TRUE(insert(row));
  clock_.advance(std::chrono::seconds(1));
  const std::string cid(64, 'b');
  ASSERT_TRUE(store_->write([&](Tx& tx) {
    return sandbox_repo::update_container(tx, row.id, cid, std::string("172.30.0.9"));
  }));
  auto got = sandbox_repo::get(*store_, row.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->container_id, cid);
  EXPECT_EQ(got->container_ip, "172.30.0.9");
  EXPECT_EQ(got->updated_at, clock_.unix_ms());

  ASSERT_TRUE(store_->write([&](Tx& tx) {
    return sandbox_repo::update_container(tx, row.id, std::nullopt, std::nullopt);
  }));
  got = sandbox_repo::get(*store_, row.id);
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->container_id.has_value());
  EXPECT_FALSE(got->container_ip.has_value());
}

TEST_F(StoreSandboxRepo, FullUpdateRewritesAllButIdentity) {
  auto row = every_field_set();
  ASSERT_TRUE(insert(row));
  clock_.advance(std::chrono::seconds(1));
  auto changed = minimal_row(row.id, 42);  // created_at is not rewritten
  changed.ports = {7000};
  ASSERT_TRUE(store_->write([&](Tx& tx) { return sandbox_repo::update(tx, changed); }));
  auto got = sandbox_repo::get(*store_, row.id);
  ASSERT_TRUE(got);
  auto expected = changed;
  expected.created_at = row.created_at;
  expected.updated_at = clock_.unix_ms();
  EXPECT_EQ(*got, expected);
}

TEST_F(StoreSandboxRepo, RemoveDeletesTheRowAndItsPorts) {
  auto row = every_field_set();
  ASSERT_TRUE(insert(row));
  ASSERT_TRUE(store_->write([&](Tx& tx) { return sandbox_repo::remove(tx, row.id); }));
  auto got = sandbox_repo::get(*store_, row.id);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::not_found);
  EXPECT_EQ(query_int(*store_, "SELECT count(*) FROM sandbox_port"), 0);
  Status again = store_->write([&](Tx& tx) { return sandbox_repo::remove(tx, row.id); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::not_found);
}

TEST_F(StoreSandboxRepo, PurgeLeavesATombstoneWithoutOwnerOrSpec) {
  auto row = every_field_set();
  ASSERT_TRUE(insert(row));
  clock_.advance(std::chrono::seconds(3));
  ASSERT_TRUE(store_->write([&](Tx& tx) { return sandbox_repo::purge(tx, row.id); }));
  auto got = sandbox_repo::get(*store_, row.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, "purged");
  EXPECT_EQ(got->env, "{}");
  EXPECT_FALSE(got->external_user_id || got->external_project_id || got->external_workspace_id);
  EXPECT_FALSE(got->container_id || got->container_ip || got->git_remote_url);
  EXPECT_TRUE(got->ports.empty());
  EXPECT_EQ(got->created_at, row.created_at);
  EXPECT_EQ(got->updated_at, clock_.unix_ms());
}

TEST_F(StoreSandboxRepo, TouchActivityOnlyMovesForwardAndLeavesUpdatedAt) {
  auto a = minimal_row(fresh_id(), 1000);
  auto b = minimal_row(fresh_id(), 1000);
  ASSERT_TRUE(insert(a));
  ASSERT_TRUE(insert(b));
  const std::vector<ActivityMark> marks = {{a.id, 5000}, {b.id, 500}, {fresh_id(), 9000}};
  ASSERT_TRUE(store_->write([&](Tx& tx) { return sandbox_repo::touch_activity(tx, marks); }));
  auto got_a = sandbox_repo::get(*store_, a.id);
  auto got_b = sandbox_repo::get(*store_, b.id);
  ASSERT_TRUE(got_a && got_b);
  EXPECT_EQ(got_a->last_active_at, 5000);
  EXPECT_EQ(got_b->last_active_at, 1000);  // never backwards
  EXPECT_EQ(got_a->updated_at, 1000);
}

TEST_F(StoreSandboxRepo, BootBumpCoversRunningSandboxesOnly) {
  auto running_old = minimal_row(fresh_id(), 1000);
  auto running_new = minimal_row(fresh_id(), 1000);
  running_new.last_active_at = 9000;
  auto stopped = minimal_row(fresh_id(), 1000);
  stopped.status = "stopped";
  for (const auto& r : {running_old, running_new, stopped}) ASSERT_TRUE(insert(r));
  std::int64_t changed = -1;
  ASSERT_TRUE(store_->write([&](Tx& tx) -> Status {
    auto n = sandbox_repo::bump_running_activity(tx, 5000);
    if (!n) return n.error();
    changed = *n;
    return ok();
  }));
  EXPECT_EQ(changed, 1);
  EXPECT_EQ(sandbox_repo::get(*store_, running_old.id)->last_active_at, 5000);
  EXPECT_EQ(sandbox_repo::get(*store_, running_new.id)->last_active_at, 9000);
  EXPECT_EQ(sandbox_repo::get(*store_, stopped.id)->last_active_at, 1000);
  EXPECT_EQ(sandbox_repo::get(*store_, running_old.id)->updated_at, 1000);
}

}  // namespace
}  // namespace sandboxd::store
