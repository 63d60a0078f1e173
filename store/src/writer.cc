#include "writer.h"

#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "base/log.h"

namespace sandboxd::store::detail {

namespace {

constexpr log::Logger kLog{"store"};

Error shutting_down() { return Error{Errc::unavailable, "the store is shutting down"}; }

// A done callback belongs to the caller; one that throws must not take the writer down.
void deliver(WriteDone& done, Status status) {
  if (!done) return;
  try {
    done(std::move(status));
  } catch (const std::exception& e) {
    kLog.error("write done callback threw", {{"what", e.what()}});
  } catch (...) {
    kLog.error("write done callback threw");
  }
}

}  // namespace

Writer::Writer(std::unique_ptr<Connection> conn, const Clock& clock, const Options& options)
    : conn_(std::move(conn)), clock_(clock), options_(options) {}

Writer::~Writer() { stop(); }

void Writer::start() {
  if (auto size = conn_->query_int("PRAGMA page_size"); size) page_size_ = *size;
  // The hook reports the WAL size after each commit; registering it also turns off SQLite's
  // automatic checkpoint, which would otherwise run inside a commit and delay the ack.
  sqlite3_wal_hook(conn_->db(), &Writer::on_wal_commit, this);
  thread_ = std::thread([this] { run(); });
}

int Writer::on_wal_commit(void* self, sqlite3*, const char*, int pages) {
  static_cast<Writer*>(self)->wal_pages_ = pages;
  return SQLITE_OK;
}

void Writer::submit(WriteJob job, WriteDone done, std::stop_token stop) {
  std::unique_lock lock(mu_);
  if (queue_.size() >= options_.queue_capacity && !stopping_) {
    if (on_writer_thread()) {
      // Waiting here would wait for ourselves.
      lock.unlock();
      deliver(done, Error{Errc::unavailable, "the store write queue is full"});
      return;
    }
    not_full_.wait(lock, [&] { return queue_.size() < options_.queue_capacity || stopping_; });
  }
  if (stopping_) {
    lock.unlock();
    deliver(done, shutting_down());
    return;
  }
  queue_.push_back(Entry{std::move(job), std::move(done), std::move(stop)});
  lock.unlock();
  not_empty_.notify_one();
}

Status Writer::try_submit(WriteJob job, WriteDone done, std::stop_token stop) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return shutting_down();
    if (queue_.size() >= options_.queue_capacity) {
      return Error{Errc::unavailable, "the store write queue is full"};
    }
    queue_.push_back(Entry{std::move(job), std::move(done), std::move(stop)});
  }
  not_empty_.notify_one();
  return ok();
}

void Writer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  not_empty_.notify_all();
  not_full_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::size_t Writer::depth() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

WriterStats Writer::stats() const {
  std::lock_guard lock(mu_);
  WriterStats s;
  s.queue_depth = queue_.size();
  s.batches = batches_;
  s.jobs_committed = jobs_committed_;
  s.jobs_failed = jobs_failed_;
  s.write_errors = write_errors_;
  s.commit_counts = commit_counts_;
  s.commit_seconds = commit_seconds_;
  return s;
}

void Writer::run() {
  thread_id_ = std::this_thread::get_id();
  while (true) {
    std::vector<Entry> batch = take_batch();
    if (batch.empty()) break;  // stopping and drained
    run_batch(batch);
    maybe_checkpoint();
  }
}

std::vector<Writer::Entry> Writer::take_batch() {
  std::vector<Entry> batch;
  std::unique_lock lock(mu_);
  not_empty_.wait(lock, [&] { return !queue_.empty() || stopping_; });
  if (queue_.empty()) return batch;
  // The window starts when the first job is taken: a lone write waits at most batch_window
  // for company, while a busy queue fills a batch without waiting at all.
  const auto deadline = std::chrono::steady_clock::now() + options_.batch_window;
  while (true) {
    while (!queue_.empty() && batch.size() < options_.batch_max) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    if (batch.size() >= options_.batch_max || stopping_) break;
    if (!not_empty_.wait_until(lock, deadline, [&] { return !queue_.empty() || stopping_; })) {
      break;
    }
  }
  lock.unlock();
  not_full_.notify_all();
  return batch;
}

void Writer::run_batch(std::vector<Entry>& batch) {
  // Per job: nullopt = dropped before it started; otherwise the job's own outcome, which
  // becomes final only when COMMIT returns.
  std::vector<std::optional<Status>> results(batch.size());
  std::optional<Error> batch_error;  // the whole transaction failed
  const auto began = std::chrono::steady_clock::now();

  if (Status st = conn_->exec("BEGIN IMMEDIATE"); !st) batch_error = st.error();

  Tx tx(*conn_, clock_, true);
  for (std::size_t i = 0; i < batch.size() && !batch_error; ++i) {
    Entry& entry = batch[i];
    if (entry.stop.stop_requested()) continue;  // the caller gave up before it started

    if (Status st = conn_->exec("SAVEPOINT job"); !st) {
      batch_error = st.error();
      break;
    }
    Status st = ok();
    try {
      st = entry.job ? entry.job(tx) : Status(Error{Errc::internal, "empty write job"});
    } catch (const std::exception& e) {
      st = Error{Errc::internal, std::string("write job threw: ") + e.what()};
    } catch (...) {
      st = Error{Errc::internal, "write job threw"};
    }

    if (!conn_->in_transaction()) {
      // The transaction is gone: the job ended it itself (forbidden), or SQLite rolled it
      // back after a failure such as a full disk. Nothing of this batch is durable.
      batch_error =
          st ? Error{Errc::internal, "a write job ended the store's transaction"} : st.error();
      results[i] = st;
      break;
    }
    Status end = st ? conn_->exec("RELEASE job") : [&]() -> Status {
      if (Status r = conn_->exec("ROLLBACK TO job"); !r) return r;
      return conn_->exec("RELEASE job");
    }();
    results[i] = st;
    if (!end) {
      batch_error = end.error();
      break;
    }
  }

  if (!batch_error) {
    if (Status st = conn_->exec("COMMIT"); !st) batch_error = st.error();
  }
  if (batch_error && conn_->in_transaction()) {
    if (Status st = conn_->exec("ROLLBACK"); !st) {
      kLog.error("rollback failed", {{"error", st.error().message()}});
    }
  }

  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  std::uint64_t committed = 0;
  std::uint64_t failed = 0;
  std::uint64_t errors = 0;
  std::vector<Status> outcomes;
  outcomes.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!results[i]) {
      if (batch_error && !batch[i].stop.stop_requested()) {
        outcomes.push_back(*batch_error);  // never started because the batch failed first
        ++errors;
      } else {
        outcomes.push_back(Error{Errc::cancelled, "the write was cancelled before it started"});
      }
      ++failed;
    } else if (!*results[i]) {
      outcomes.push_back(*results[i]);  // the job's own error is the more useful one
      ++failed;
      ++errors;
    } else if (batch_error) {
      outcomes.push_back(*batch_error);
      ++failed;
      ++errors;
    } else {
      outcomes.push_back(ok());
      ++committed;
    }
  }
  if (batch_error) {
    kLog.warn("write batch failed", {{"jobs", batch.size()}, {"error", batch_error->message()}});
  }
  {
    std::lock_guard lock(mu_);
    if (committed > 0) ++batches_;
    jobs_committed_ += committed;
    jobs_failed_ += failed;
    write_errors_ += errors;
    std::size_t bucket = 0;
    while (bucket < kCommitBuckets.size() && took > kCommitBuckets[bucket]) ++bucket;
    ++commit_counts_[bucket];
    commit_seconds_ += took;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) deliver(batch[i].done, std::move(outcomes[i]));
}

void Writer::maybe_checkpoint() {
  if (static_cast<std::int64_t>(wal_pages_) * page_size_ <= options_.wal_checkpoint_bytes) return;
  int log_frames = 0;
  int checkpointed = 0;
  int rc = sqlite3_wal_checkpoint_v2(conn_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                     &checkpointed);
  if (rc != SQLITE_OK) {
    kLog.warn("passive checkpoint failed",
              {{"error", sqlite_error(conn_->db(), rc, "checkpoint").message()}});
    return;
  }
  kLog.debug("passive checkpoint", {{"wal_frames", log_frames}, {"checkpointed", checkpointed}});
  // Until the next commit reports again, assume nothing is left to copy; the WAL restarts
  // from its beginning on the next write once every frame is checkpointed.
  wal_pages_ = 0;
}

}  // namespace sandboxd::store::detail
