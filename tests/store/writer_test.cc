#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <future>
#include <thread>

#include "store/audit_repo.h"
#include "store/sandbox_repo.h"
#include "test_util.h"

namespace sandboxd::store {
namespace {

using namespace std::chrono_literals;
using testing::Counter;
using testing::fresh_id;
using testing::Gate;
using testing::minimal_row;
using testing::query_int;
using testing::TempDir;

std::unique_ptr<Store> open_store(const TempDir& dir, StoreOptions options = {}) {
  options.data_dir = dir.path();
  auto store = Store::open(options);
  EXPECT_TRUE(store) << store.error().message();
  return store ? std::move(*store) : nullptr;
}

WriteJob insert_job(SandboxRow row) {
  return [row = std::move(row)](Tx& tx) { return sandbox_repo::insert(tx, row); };
}

// Occupies the writer until released, so the test controls what queues up behind it.
struct Blocker {
  Gate started;
  Gate release;
  std::promise<Status> done;

  void submit(Store& store) {
    store.submit(
        [this](Tx&) {
          started.open();
          release.wait();
          return ok();
        },
        [this](Status st) { done.set_value(std::move(st)); });
    ASSERT_TRUE(started.wait());
  }
};

TEST(StoreWriter, AFailingJobRollsBackAloneInItsBatch) {
  TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  Blocker blocker;
  blocker.submit(*store);
  const auto before = store->writer_stats();

  const auto a = minimal_row(fresh_id());
  const auto b = minimal_row(fresh_id());
  const auto c = minimal_row(fresh_id());
  std::promise<Status> pa, pb, pc;
  store->submit(insert_job(a), [&](Status st) { pa.set_value(std::move(st)); });
  store->submit(
      [&](Tx& tx) -> Status {
        if (Status st = sandbox_repo::insert(tx, b); !st) return st;
        return Error{Errc::invalid_argument, "changed my mind"};  // after writing
      },
      [&](Status st) { pb.set_value(std::move(st)); });
  store->submit(insert_job(c), [&](Status st) { pc.set_value(std::move(st)); });
  EXPECT_EQ(store->queue_depth(), 3u);
  blocker.release.open();

  ASSERT_TRUE(blocker.done.get_future().get());
  Status sa = pa.get_future().get(), sb = pb.get_future().get(), sc = pc.get_future().get();
  EXPECT_TRUE(sa);
  ASSERT_FALSE(sb);
  EXPECT_EQ(sb.error().code, Errc::invalid_argument);
  EXPECT_EQ(sb.error().detail, "changed my mind");
  EXPECT_TRUE(sc);

  const auto after = store->writer_stats();
  EXPECT_EQ(after.batches - before.batches, 2u);  // the blocker's, then a+b+c together
  EXPECT_TRUE(sandbox_repo::get(*store, a.id));
  EXPECT_EQ(sandbox_repo::get(*store, b.id).error().code, Errc::not_found);
  EXPECT_TRUE(sandbox_repo::get(*store, c.id));
}

TEST(StoreWriter, AFailedCommitFailsEveryJobOfTheBatch) {
  TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  Blocker blocker;
  blocker.submit(*store);

  const auto a = minimal_row(fresh_id());
  std::promise<Status> pa, pb;
  store->submit(insert_job(a), [&](Status st) { pa.set_value(std::move(st)); });
  // A deferred foreign-key violation passes its savepoint and fails only at COMMIT.
  store->submit(
      [](Tx& tx) {
        return tx.exec(
            "PRAGMA defer_foreign_keys = ON;"
            "INSERT INTO sandbox_port (sandbox_id, port, position) "
            "VALUES ('01ARZ3NDEKTSV4RRFFQ69G5FAV', 80, 0);");
      },
      [&](Status st) { pb.set_value(std::move(st)); });
  blocker.release.open();
  ASSERT_TRUE(blocker.done.get_future().get());
  Status sa = pa.get_future().get(), sb = pb.get_future().get();
  ASSERT_FALSE(sa);
  ASSERT_FALSE(sb);
  EXPECT_EQ(sa.error().code, Errc::conflict);
  EXPECT_EQ(sa.error().detail, sb.error().detail);
  EXPECT_EQ(sandbox_repo::get(*store, a.id).error().code, Errc::not_found);

  // The writer goes on with the next batch.
  const auto d = minimal_row(fresh_id());
  EXPECT_TRUE(store->write(insert_job(d)));
  EXPECT_TRUE(sandbox_repo::get(*store, d.id));
}

TEST(StoreWriter, AJobCancelledBeforeItStartsIsDropped) {
  TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  Blocker blocker;
  blocker.submit(*store);

  std::stop_source cancel;
  std::atomic<bool> ran{false};
  std::promise<Status> p;
  store->submit(
      [&](Tx& tx) {
        ran = true;
        return sandbox_repo::insert(tx, minimal_row(fresh_id()));
      },
      [&](Status st) { p.set_value(std::move(st)); }, cancel.get_token());
  cancel.request_stop();
  blocker.release.open();
  Status st = p.get_future().get();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::cancelled);
  EXPECT_FALSE(ran);
  EXPECT_EQ(query_int(*store, "SELECT count(*) FROM sandbox"), 0);
}

TEST(StoreWriter, AThrowingJobFailsAlone) {
  TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  Status st = store->write([](Tx&) -> Status { throw std::runtime_error("kaboom"); });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::internal);
  EXPECT_NE(st.error().detail.find("kaboom"), std::string::npos);
  EXPECT_TRUE(store->write(insert_job(minimal_row(fresh_id()))));
}

TEST(StoreWriter, AJobMayNotEndTheTransaction) {
  TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  Status st = store->write([](Tx& tx) { return tx.exec("COMMIT"); });
  EXPECT_FALSE(st);
  EXPECT_TRUE(store->write(insert_job(minimal_row(fresh_id()))));
}

TEST(StoreWriter, ConcurrentSubmitsAreAllDurable) {
  TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  Counter done;
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        AuditRow row{.ts = 1,
                     .actor = "system",
                     .request_id = std::to_string(i),
                     .action = "t" + std::to_string(t)};
        std::string key = row.action + "/" + *row.request_id;
        store->submit(
            [row](Tx& tx) -> Status {
              auto id = audit_repo::append(tx, row);
              if (!id) return id.error();
              return ok();
            },
            [&, key](Status st) {
              if (st) {
                std::lock_guard lock(mu);
                acknowledged.push_back(key);
              } else {
                ++failures;
              }
              done.add();
            });
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(done.wait_for(kThreads * kPerThread));
  EXPECT_EQ(failures.load(), 0);
  ASSERT_EQ(acknowledged.size(), static_cast<std::size_t>(kThreads * kPerThread));

  // Everything acknowledged is there, also after a reopen.
  store.reset();
  store = open_store(dir);
  ASSERT_TRUE(store);
  EXPECT_EQ(query_int(*store, "SELECT count(*) FROM audit"), kThreads * kPerThread);
  EXPECT_EQ(query_int(*store, "SELECT count(DISTINCT action || '/' || request_id) FROM audit"),
            kThreads * kPerThread);
  const auto stats = store->writer_stats();
  EXPECT_EQ(stats.queue_depth, 0u);
}

TEST(StoreWriter, GroupsConcurrentJobsIntoFewTransactions) {
  TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  Blocker blocker;
  blocker.submit(*store);
  Counter done;
  for (int i = 0; i < 200; ++i) {
    store->submit(insert_job(minimal_row(fresh_id())), [&](Status st) {
      EXPECT_TRUE(st);
      done.add();
    });
  }
  const auto before = store->writer_stats();
  blocker.release.open();
  ASSERT_TRUE(done.wait_for(200));
  const auto after = store->writer_stats();
  // 200 queued jobs: ceil(200 / 64) = 4 batches (the blocker's batch counted before).
  EXPECT_EQ(after.batches - before.batches, 1u + 4u);
  EXPECT_EQ(after.jobs_committed - before.jobs_committed, 201u);
}

TEST(StoreWriter, AFullQueueBlocksTheSubmitterUntilThereIsRoom) {
  TempDir dir;
  StoreOptions options;
  options.queue_capacity = 2;
  auto store = open_store(dir, options);
  ASSERT_TRUE(store);
  Blocker blocker;
  blocker.submit(*store);
  Counter done;
  auto count = [&](Status st) {
    EXPECT_TRUE(st);
    done.add();
  };
  store->submit(insert_job(minimal_row(fresh_id())), count);
  store->submit(insert_job(minimal_row(fresh_id())), count);
  EXPECT_EQ(store->queue_depth(), 2u);

  Status refused = store->try_submit(insert_job(minimal_row(fresh_id())), count);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::unavailable);

  Gate returned;
  std::thread third([&] {
    store->submit(insert_job(minimal_row(fresh_id())), count);
    returned.open();
  });
  // A bounded check that it is still blocked; this is an assertion, not synchronisation.
  EXPECT_FALSE(returned.wait(100ms));
  blocker.release.open();
  EXPECT_TRUE(returned.wait());
  third.join();
  ASSERT_TRUE(done.wait_for(3));
  EXPECT_EQ(query_int(*store, "SELECT count(*) FROM sandbox"), 3);
}

TEST(StoreWriter, ReadsDoNotWaitForTheWriter) {
  TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  const auto committed = minimal_row(fresh_id());
  ASSERT_TRUE(store->write(insert_job(committed)));

  // The writer holds its transaction open with an uncommitted row.
  Gate inserted, release;
  std::promise<Status> p;
  const auto pending = minimal_row(fresh_id());
  store->submit(
      [&](Tx& tx) {
        Status st = sandbox_repo::insert(tx, pending);
        inserted.open();
        release.wait();
        return st;
      },
      [&](Status st) { p.set_value(std::move(st)); });
  ASSERT_TRUE(inserted.wait());
  auto rows = sandbox_repo::list(*store);  // would time out (busy_timeout) if it waited
  release.open();
  ASSERT_TRUE(rows) << rows.error().message();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().id, committed.id);
  EXPECT_TRUE(p.get_future().get());
  EXPECT_TRUE(sandbox_repo::get(*store, pending.id));
}

TEST(StoreWriter, CloseDrainsTheQueueThenRefuses) {
  TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  Blocker blocker;
  blocker.submit(*store);
  Counter done;
  std::atomic<int> ok_count{0};
  for (int i = 0; i < 50; ++i) {
    store->submit(insert_job(minimal_row(fresh_id())), [&](Status st) {
      if (st) ++ok_count;
      done.add();
    });
  }
  std::thread closer([&] { store->close(); });
  blocker.release.open();
  closer.join();
  EXPECT_TRUE(done.wait_for(50, 0ms));  // all ran before close() returned
  EXPECT_EQ(ok_count.load(), 50);

  Status late = store->write(insert_job(minimal_row(fresh_id())));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::unavailable);
  {
    testing::RawDb db(dir.db());
    EXPECT_EQ(db.integer("SELECT count(*) FROM sandbox"), 50);
  }
}

TEST(StoreWriter, WriteFromTheWriterThreadIsRefused) {
  TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  Status inner = ok();
  ASSERT_TRUE(store->write([&](Tx&) {
    inner = store->write([](Tx&) { return ok(); });
    return ok();
  }));
  ASSERT_FALSE(inner);
  EXPECT_EQ(inner.error().code, Errc::internal);
}

TEST(StoreWriter, PassiveCheckpointsKeepTheWalSmall) {
  TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  // 24 batches of ~1 MiB each: without checkpoints the WAL would pass 24 MiB.
  const std::string detail = "\"" + std::string(1 << 20, 'x') + "\"";
  for (int i = 0; i < 24; ++i) {
    ASSERT_TRUE(store->write([&](Tx& tx) -> Status {
      auto id =
          audit_repo::append(tx, AuditRow{.actor = "system", .action = "big", .detail = detail});
      if (!id) return id.error();
      return ok();
    }));
  }
  struct stat st {};
  ASSERT_EQ(::stat((dir.db().string() + "-wal").c_str(), &st), 0);
  EXPECT_LT(st.st_size, 8 * 1024 * 1024);
  EXPECT_EQ(query_int(*store, "SELECT count(*) FROM audit"), 24);
}

}  // namespace
}  // namespace sandboxd::store
