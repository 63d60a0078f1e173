// The writer thread: the only read-write connection, a bounded job queue and group commit
// (SPEC §8 "Connections and durability"). See store/store.h for the contract callers see.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "connection.h"
#include "store/store.h"

namespace sandboxd::store::detail {

class Writer {
 public:
  struct Options {
    std::size_t queue_capacity = 10000;
    std::size_t batch_max = 64;
    std::chrono::microseconds batch_window{2000};
    std::int64_t wal_checkpoint_bytes = 4 * 1024 * 1024;
  };

  Writer(std::unique_ptr<Connection> conn, const Clock& clock, const Options& options);
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  ~Writer();  // stop()

  void start();
  void submit(WriteJob job, WriteDone done, std::stop_token stop);
  Status try_submit(WriteJob job, WriteDone done, std::stop_token stop);
  // Runs every queued job, then joins the thread. Idempotent.
  void stop();

  bool on_writer_thread() const { return std::this_thread::get_id() == thread_id_; }
  std::size_t depth() const;
  WriterStats stats() const;

 private:
  struct Entry {
    WriteJob job;
    WriteDone done;
    std::stop_token stop;
  };

  void run();
  // Blocks for the first job, then gathers more for up to batch_window. Empty: stop.
  std::vector<Entry> take_batch();
  void run_batch(std::vector<Entry>& batch);
  void maybe_checkpoint();
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);

  std::unique_ptr<Connection> conn_;
  const Clock& clock_;
  const Options options_;
  std::int64_t page_size_ = 4096;
  int wal_pages_ = 0;  // writer thread only

  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Entry> queue_;
  bool stopping_ = false;
  std::uint64_t batches_ = 0;
  std::uint64_t jobs_committed_ = 0;
  std::uint64_t jobs_failed_ = 0;
  std::uint64_t write_errors_ = 0;
  std::array<std::uint64_t, kCommitBuckets.size() + 1> commit_counts_{};
  double commit_seconds_ = 0;

  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
};

}  // namespace sandboxd::store::detail
