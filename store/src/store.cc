#include "store/store.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <future>

#include "base/log.h"
#include "connection.h"
#include "files.h"
#include "migrate.h"
#include "read_pool.h"
#include "writer.h"

namespace sandboxd::store {

namespace {

constexpr log::Logger kLog{"store"};

Status check_options(const StoreOptions& o) {
  if (o.data_dir.empty()) return Error{Errc::invalid_argument, "store: data_dir is empty"};
  if (o.read_connections < 1) {
    return Error{Errc::invalid_argument, "store.read_connections must be at least 1"};
  }
  if (o.busy_timeout.count() < 0 || o.busy_timeout.count() > INT32_MAX) {
    return Error{Errc::invalid_argument, "store.busy_timeout is out of range"};
  }
  if (o.queue_capacity < 1 || o.batch_max < 1) {
    return Error{Errc::invalid_argument, "store: queue_capacity and batch_max must be positive"};
  }
  return ok();
}

// data_dir itself may be anything the operator chose (even a symlink); only state/ below
// it is held to 0700 and no symlinks.
Status ensure_data_dir(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error{Errc::io, "mkdir " + dir.string() + ": " + std::strerror(errno)};
  }
  return ok();
}

}  // namespace

Store::Store(const StoreOptions& options, const Clock& clock) : options_(options), clock_(clock) {}

Store::~Store() { close(); }

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options, const Clock& clock) {
  return open(options, clock, embedded_migrations());
}

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options, const Clock& clock,
                                           std::vector<Migration> migrations) {
  using detail::Connection;
  if (Status st = check_options(options); !st) return st.error();
  if (Status st = ensure_data_dir(options.data_dir); !st) return st.error();
  const auto state_dir = options.data_dir / "state";
  if (Status st = detail::ensure_private_dir(state_dir); !st) return st.error();
  const auto db_path = state_dir / "sandboxd.db";
  if (Status st = detail::ensure_private_file(db_path); !st) return st.error();
  for (const char* suffix : {"-wal", "-shm"}) {
    // Left by an earlier run: tighten them too. Missing ones SQLite creates with the
    // database file's mode.
    std::filesystem::path side = db_path.string() + suffix;
    struct stat st_buf {};
    if (::lstat(side.c_str(), &st_buf) == 0) {
      if (Status st = detail::ensure_private_file(side); !st) return st.error();
    }
  }

  auto writer_conn =
      Connection::open(db_path.string(), Connection::Role::writer, options.busy_timeout);
  if (!writer_conn) return writer_conn.error();

  auto migrated = detail::migrate(**writer_conn, migrations, clock, db_path);
  if (!migrated) return migrated.error();
  auto instance = detail::ensure_instance(**writer_conn, clock);
  if (!instance) return instance.error();

  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; i < options.read_connections; ++i) {
    auto conn = Connection::open(db_path.string(), Connection::Role::reader, options.busy_timeout);
    if (!conn) return conn.error();
    readers.push_back(std::move(*conn));
  }

  std::unique_ptr<Store> store(new Store(options, clock));
  store->db_path_ = db_path;
  store->instance_id_ = *instance;
  store->readers_ = std::make_unique<detail::ReadPool>(std::move(readers), options.busy_timeout);
  store->writer_ = std::make_unique<detail::Writer>(
      std::move(*writer_conn), clock,
      detail::Writer::Options{options.queue_capacity, options.batch_max, options.batch_window,
                              options.wal_checkpoint_bytes});
  store->writer_->start();
  kLog.info("store opened", {{"schema_version", migrated->to_version},
                             {"migrated_from", migrated->from_version},
                             {"instance", instance->str()}});
  return store;
}

void Store::submit(WriteJob job, WriteDone done, std::stop_token stop) {
  if (closed_.load()) {
    if (done) done(Error{Errc::unavailable, "the store is closed"});
    return;
  }
  writer_->submit(std::move(job), std::move(done), std::move(stop));
}

Status Store::try_submit(WriteJob job, WriteDone done, std::stop_token stop) {
  if (closed_.load()) return Error{Errc::unavailable, "the store is closed"};
  return writer_->try_submit(std::move(job), std::move(done), std::move(stop));
}

Status Store::write(WriteJob job) {
  if (writer_->on_writer_thread()) {
    return Error{Errc::internal, "Store::write called on the writer thread; it would deadlock"};
  }
  std::promise<Status> promise;
  auto future = promise.get_future();
  submit(std::move(job), [&promise](Status st) { promise.set_value(std::move(st)); });
  return future.get();
}

Status Store::read(const ReadFn& fn) {
  if (closed_.load()) return Error{Errc::unavailable, "the store is closed"};
  return readers_->with_connection([&](detail::Connection& conn) -> Status {
    // One read transaction: every statement of `fn` sees the same snapshot.
    if (Status st = conn.exec("BEGIN"); !st) return st;
    Tx tx(conn, clock_, false);
    Status st = ok();
    try {
      st = fn(tx);
    } catch (...) {
      if (conn.in_transaction()) (void)conn.exec("ROLLBACK");
      throw;
    }
    if (conn.in_transaction()) {
      if (Status end = conn.exec("ROLLBACK"); !end && st) return end;
    }
    return st;
  });
}

Status Store::ping() {
  auto count = read_value<std::int64_t>([](Tx& tx) -> Result<std::int64_t> {
    auto stmt = tx.prepare("SELECT count(*) FROM instance");
    if (!stmt) return stmt.error();
    auto row = stmt->step();
    if (!row) return row.error();
    return stmt->column_int64(0);
  });
  if (!count) return count.error();
  if (*count != 1) return Error{Errc::corrupt, "the instance table does not have exactly one row"};
  return ok();
}

void Store::close() {
  if (closed_.exchange(true)) return;
  writer_->stop();
  kLog.info("store closed");
}

std::size_t Store::queue_depth() const { return writer_->depth(); }

WriterStats Store::writer_stats() const { return writer_->stats(); }

}  // namespace sandboxd::store
