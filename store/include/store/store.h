// The state store: one SQLite database, `<data_dir>/state/sandboxd.db` (SPEC §8).
//
// `Store::open` prepares the directory (0700, never through a symlink) and files (0600),
// refuses a database written by a newer build (`Errc::too_new`; the app exits 78) or one
// whose applied migrations differ from this build's (`Errc::corrupt`), backs an existing
// database up before migrating it, applies pending migrations and makes the instance row.
//
// Writes: one writer thread owns the only read-write connection and runs `WriteJob`s from
// a bounded queue. It groups up to `batch_max` queued jobs, or whatever arrives within
// `batch_window`, into one transaction; each job runs in its own SAVEPOINT, so a failing job
// is rolled back alone and gets its own error. `done` runs on the writer thread, after
// COMMIT returned (synchronous=FULL: the write survives power loss), so it must be quick
// and must not block on the store. If COMMIT fails, every job of the batch that had
// succeeded gets the commit error.
//
// Reads: a pool of `read_connections` read-only connections, each used by one thread at a
// time. A read sees one consistent snapshot and never waits for the writer (WAL).
//
// Thread safety: every public member may be called from any thread. The `Clock` must
// outlive the store. Destroying the store (or `close()`) drains the queue: every job
// already submitted runs and gets its `done` before the writer stops.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "base/ulid.h"
#include "store/migration.h"
#include "store/tx.h"

namespace sandboxd::store {

namespace detail {
class Writer;
class ReadPool;
}  // namespace detail

struct StoreOptions {
  std::filesystem::path data_dir;  // made (0700) if missing; the database lives in data_dir/state/
  std::chrono::milliseconds busy_timeout{5000};         // store.busy_timeout
  int read_connections = 4;                             // store.read_connections
  std::size_t queue_capacity = 10000;                   // jobs; submit blocks beyond it
  std::size_t batch_max = 64;                           // jobs per transaction
  std::chrono::microseconds batch_window{2000};         // gathering time per batch
  std::int64_t wal_checkpoint_bytes = 4 * 1024 * 1024;  // passive checkpoint above this
};

// A unit of writing: runs on the writer thread inside its own SAVEPOINT. Returning an error
// rolls back exactly what this job did. Must not block on anything but SQLite.
using WriteJob = std::function<Status(Tx&)>;
// Receives the job's outcome on the writer thread.
using WriteDone = std::function<void(Status)>;
using ReadFn = std::function<Status(Tx&)>;

// Upper bounds (seconds) of the writer's transaction-time histogram: SPEC §11's store and
// Docker latency buckets.
inline constexpr std::array<double, 15> kCommitBuckets{.0005, .001, .0025, .005, .01,
                                                       .025,  .05,  .1,    .25,  .5,
                                                       1,     2.5,  5,     10,   30};

struct WriterStats {
  std::size_t queue_depth = 0;
  std::uint64_t batches = 0;  // transactions committed
  std::uint64_t jobs_committed = 0;
  std::uint64_t jobs_failed = 0;  // job errors, commit failures and cancellations
  std::uint64_t write_errors = 0;  // jobs_failed without the cancellations
  // Time of each transaction, BEGIN to COMMIT (or ROLLBACK): one count per bound of
  // kCommitBuckets plus +Inf, not cumulated, and the sum in seconds.
  std::array<std::uint64_t, kCommitBuckets.size() + 1> commit_counts{};
  double commit_seconds = 0;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const StoreOptions& options,
                                             const Clock& clock = system_clock());
  // For tests: `migrations` replaces the embedded list (e.g. embedded + synthetic steps to
  // simulate an upgrade or a too-new database).
  static Result<std::unique_ptr<Store>> open(const StoreOptions& options, const Clock& clock,
                                             std::vector<Migration> migrations);

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store();

  // Queues a job; `done` is always called exactly once. When the queue is full this BLOCKS
  // the calling thread until there is room (the backpressure; an Asio wrapper must call it
  // from a blocking pool, never from an I/O thread). If `stop` is requested before the job
  // starts, the job is dropped and `done` gets `Errc::cancelled`; a started job completes.
  // After close(), `done` gets `Errc::unavailable` at once.
  void submit(WriteJob job, WriteDone done, std::stop_token stop = {});

  // Like submit, but never blocks: a full queue or a closed store returns
  // `Errc::unavailable` and the job is not queued (`done` is then never called). On success
  // `done` is called exactly once, as with submit.
  Status try_submit(WriteJob job, WriteDone done, std::stop_token stop = {});

  // Submits and waits for the outcome. Must not be called from a write job or a `done`
  // callback (it would wait for itself); that returns `Errc::internal`.
  Status write(WriteJob job);

  // Runs `fn` on a pooled read-only connection inside one read transaction, on the calling
  // thread. Waits up to busy_timeout for a free connection (else `Errc::unavailable`).
  Status read(const ReadFn& fn);

  // `read` for a function returning a value.
  template <class T>
  Result<T> read_value(const std::function<Result<T>(Tx&)>& fn) {
    std::optional<Result<T>> out;
    Status st = read([&](Tx& tx) -> Status {
      out.emplace(fn(tx));
      if (out->has_value()) return ok();
      return out->error();
    });
    if (!st) return st.error();
    return std::move(*out);
  }

  // The /readyz probe: a trivial query on a read connection.
  Status ping();

  // Drains the queue and stops the writer; later writes and reads get `Errc::unavailable`.
  // Idempotent; the destructor calls it.
  void close();

  const Ulid& instance_id() const { return instance_id_; }
  const std::filesystem::path& db_path() const { return db_path_; }
  // Jobs waiting for the writer (for metrics).
  std::size_t queue_depth() const;
  WriterStats writer_stats() const;

 private:
  Store(const StoreOptions& options, const Clock& clock);

  StoreOptions options_;
  const Clock& clock_;
  std::filesystem::path db_path_;
  Ulid instance_id_;
  std::unique_ptr<detail::Writer> writer_;
  std::unique_ptr<detail::ReadPool> readers_;
  std::atomic<bool> closed_{false};
};

}  // namespace sandboxd::store
