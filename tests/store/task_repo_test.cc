#include "store/task_repo.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace sandboxd::store {
namespace {

using testing::fresh_id;
using testing::minimal_row;
using testing::TempDir;

class StoreTaskRepo : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Store::open(testing::options_for(dir_), clock_);
    ASSERT_TRUE(opened) << opened.error().message();
    store_ = std::move(*opened);
    sandbox_ = fresh_id();
    SandboxRow row = minimal_row(sandbox_);
    ASSERT_TRUE(store_->write([row](Tx& tx) { return sandbox_repo::insert(tx, row); }));
  }

  TaskRow command_task(std::int64_t created_at) {
    TaskRow t;
    t.id = fresh_id();
    t.sandbox_id = sandbox_;
    t.agent = "command";
    t.argv = R"(["echo","hi"])";
    t.status = "queued";
    t.timeout_ms = 60000;
    t.actor = "token:ci";
    t.created_at = created_at;
    return t;
  }

  Status insert(const TaskRow& t) {
    return store_->write([t](Tx& tx) { return task_repo::insert(tx, t); });
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Store> store_;
  std::string sandbox_;
};

TEST_F(StoreTaskRepo, InsertGetUpdateRoundTrip) {
  TaskRow t = command_task(1000);
  t.env_keys = R"(["A","B"])";
  ASSERT_TRUE(insert(t));
  auto got = task_repo::get(*store_, t.id);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, t);

  t.status = "failed";
  t.exit_code = 3;
  t.error_code = "agent_error";
  t.error_message = "boom";
  t.result = R"({"status":"failed"})";
  t.started_at = 1100;
  t.finished_at = 1200;
  t.cancel_requested_at = 1150;
  t.last_event_id = 9;
  t.events_dropped = 2;
  ASSERT_TRUE(store_->write([t](Tx& tx) { return task_repo::update(tx, t); }));
  got = task_repo::get(*store_, t.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, t);
  EXPECT_TRUE(got->final());

  EXPECT_EQ(task_repo::get(*store_, fresh_id()).error().code, Errc::not_found);
  TaskRow missing = command_task(1);
  EXPECT_EQ(
      store_->write([missing](Tx& tx) { return task_repo::update(tx, missing); }).error().code,
      Errc::not_found);
}

TEST_F(StoreTaskRepo, AgentsNeedAPromptAndCommandsAnArgv) {
  TaskRow t = command_task(1000);
  t.argv.reset();
  EXPECT_EQ(insert(t).error().code, Errc::conflict);  // the CHECK of SPEC §8
  t.agent = "opencode";
  t.prompt = "make it blue";
  EXPECT_TRUE(insert(t));
  TaskRow other = command_task(1000);
  other.sandbox_id = fresh_id();  // no such sandbox: the foreign key refuses it
  EXPECT_FALSE(insert(other));
}

TEST_F(StoreTaskRepo, ListsNewestFirstWithCursorAndStatus) {
  std::vector<TaskRow> made;
  for (int i = 0; i < 5; ++i) {
    TaskRow t = command_task(1000 + i);
    if (i % 2 == 1) t.status = "succeeded";
    ASSERT_TRUE(insert(t));
    made.push_back(t);
  }
  TaskFilter f;
  f.limit = 2;
  auto page = task_repo::list(*store_, sandbox_, f);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, made[4].id);
  EXPECT_EQ((*page)[1].id, made[3].id);
  f.after_id = (*page)[1].id;
  page = task_repo::list(*store_, sandbox_, f);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, made[2].id);
  EXPECT_EQ((*page)[1].id, made[1].id);

  TaskFilter done;
  done.status = "succeeded";
  auto finished = task_repo::list(*store_, sandbox_, done);
  ASSERT_TRUE(finished);
  ASSERT_EQ(finished->size(), 2u);
  EXPECT_EQ((*finished)[0].id, made[3].id);

  auto open = task_repo::list_open(*store_);
  ASSERT_TRUE(open);
  ASSERT_EQ(open->size(), 3u);
  EXPECT_EQ((*open)[0].id, made[0].id);  // oldest first
}

TEST_F(StoreTaskRepo, EventsAreInsertedOnceAndReadInOrder) {
  TaskRow t = command_task(1000);
  ASSERT_TRUE(insert(t));
  std::vector<TaskEventRow> batch = {{1, "started", 10, R"({"pid":7})"},
                                     {2, "stdout", 11, R"({"text":"a"})"},
                                     {3, "file", 12, R"({"path":"x","op":"write"})"}};
  std::string id = t.id;
  ASSERT_TRUE(
      store_->write([id, batch](Tx& tx) { return task_repo::insert_events(tx, id, batch); }));
  // A replay (the relay resumed earlier than it had to) changes nothing.
  std::vector<TaskEventRow> replay = {{2, "stdout", 99, R"({"text":"other"})"},
                                      {4, "done", 13, R"({"status":"succeeded"})"}};
  ASSERT_TRUE(
      store_->write([id, replay](Tx& tx) { return task_repo::insert_events(tx, id, replay); }));
  auto all = task_repo::events_after(*store_, id, 0, 100);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[1], batch[1]);
  EXPECT_EQ((*all)[3].type, "done");
  auto tail = task_repo::events_after(*store_, id, 2, 1);
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ((*tail)[0].id, 3);
  auto files = task_repo::events_of_type(*store_, id, "file");
  ASSERT_TRUE(files);
  ASSERT_EQ(files->size(), 1u);
  auto bytes = task_repo::event_bytes(*store_, id);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, static_cast<std::int64_t>(batch[0].data.size() + batch[1].data.size() +
                                              batch[2].data.size() + replay[1].data.size()));
  EXPECT_EQ(*task_repo::event_bytes(*store_, fresh_id()), 0);
}

TEST_F(StoreTaskRepo, EventRetentionKeepsDoneAndTheEventsOfRecentOrOpenTasks) {
  TaskRow old_task = command_task(1000);
  old_task.status = "succeeded";
  old_task.started_at = 1000;
  old_task.finished_at = 2000;
  TaskRow recent = command_task(1000);
  recent.status = "failed";
  recent.started_at = 1000;
  recent.finished_at = 9000;
  TaskRow open = command_task(1000);
  open.status = "running";
  open.started_at = 1000;
  for (const TaskRow* t : {&old_task, &recent, &open}) {
    ASSERT_TRUE(insert(*t));
    std::string id = t->id;
    std::vector<TaskEventRow> events = {{1, "started", 10, "{}"},
                                        {2, "stdout", 11, R"({"text":"a"})"},
                                        {3, "stdout", 12, R"({"text":"b"})"},
                                        {4, "done", 13, R"({"status":"succeeded"})"}};
    ASSERT_TRUE(store_->write([id, events](Tx& tx) { return task_repo::insert_events(tx, id, events); }));
  }
  // Cutoff 5000, batches of 2: the old task's three non-done events go in two batches.
  std::vector<std::int64_t> batches;
  for (;;) {
    std::int64_t n = 0;
    ASSERT_TRUE(store_->write([&n](Tx& tx) -> Status {
      auto r = task_repo::delete_expired_events(tx, 5000, 2);
      if (!r) return r.error();
      n = *r;
      return ok();
    }));
    batches.push_back(n);
    if (n < 2) break;
  }
  EXPECT_EQ(batches, (std::vector<std::int64_t>{2, 1}));
  auto kept = task_repo::events_after(*store_, old_task.id, 0, 100);
  ASSERT_TRUE(kept);
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0].type, "done") << "a replay of an old task still ends";
  EXPECT_TRUE(task_repo::get(*store_, old_task.id)) << "the task row stays";
  EXPECT_EQ(task_repo::events_after(*store_, recent.id, 0, 100)->size(), 4u);
  EXPECT_EQ(task_repo::events_after(*store_, open.id, 0, 100)->size(), 4u);
}

TEST_F(StoreTaskRepo, PurgeDeletesTasksAndEvents) {
  TaskRow t = command_task(1000);
  ASSERT_TRUE(insert(t));
  std::string id = t.id;
  std::vector<TaskEventRow> one = {{1, "done", 10, "{}"}};
  ASSERT_TRUE(store_->write([id, one](Tx& tx) { return task_repo::insert_events(tx, id, one); }));
  std::string sandbox = sandbox_;
  ASSERT_TRUE(store_->write([sandbox](Tx& tx) { return sandbox_repo::purge(tx, sandbox); }));
  EXPECT_EQ(task_repo::get(*store_, id).error().code, Errc::not_found);
  EXPECT_TRUE(task_repo::events_after(*store_, id, 0, 10)->empty());
}

TEST_F(StoreTaskRepo, RuntimedSecretIsRecorded) {
  std::string sandbox = sandbox_;
  std::string hash(64, 'c');
  ASSERT_TRUE(store_->write(
      [sandbox, hash](Tx& tx) { return sandbox_repo::set_runtimed_secret(tx, sandbox, 4, hash); }));
  auto row = sandbox_repo::get(*store_, sandbox_);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->runtimed_secret_gen, 4);
  EXPECT_EQ(row->runtimed_secret_hash, hash);
  std::string unknown = fresh_id();
  EXPECT_EQ(store_
                ->write([unknown, hash](Tx& tx) {
                  return sandbox_repo::set_runtimed_secret(tx, unknown, 1, hash);
                })
                .error()
                .code,
            Errc::not_found);
}

}  // namespace
}  // namespace sandboxd::store
