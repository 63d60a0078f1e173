// Helpers shared by the store tests: a private temp directory, row builders and waits with
// deadlines (no sleeps as synchronisation).
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>

#include "base/ulid.h"
#include "store/sandbox_repo.h"
#include "store/store.h"

namespace sandboxd::store::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/store_test_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path db() const { return path_ / "state" / "sandboxd.db"; }

 private:
  std::filesystem::path path_;
};

inline StoreOptions options_for(const TempDir& dir) {
  StoreOptions o;
  o.data_dir = dir.path();
  return o;
}

inline SandboxRow minimal_row(const std::string& id, std::int64_t created_at = 1000) {
  SandboxRow r;
  r.id = id;
  r.status = "running";
  r.image = "sandboxd/base:1";
  r.created_at = created_at;
  r.updated_at = created_at;
  r.last_active_at = created_at;
  return r;
}

inline std::string fresh_id() { return new_ulid().str(); }

// A one-shot gate: threads wait until it opens (with a deadline).
class Gate {
 public:
  // Notifies under the lock: a waiter may destroy the gate as soon as it sees the change.
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return open_; });
  }
  bool is_open() {
    std::lock_guard lock(mu_);
    return open_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Counts completions; wait_for(n) returns when n arrived or the deadline passed.
class Counter {
 public:
  void add() {
    std::lock_guard lock(mu_);  // see Gate::open
    ++n_;
    cv_.notify_all();
  }
  bool wait_for(int n, std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return n_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;
};

// Direct, read-only access to a database file for assertions the store does not expose.
class RawDb {
 public:
  explicit RawDb(const std::filesystem::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path;
    }
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  std::string text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out = "<error>";
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(stmt, 0);
      out = t ? reinterpret_cast<const char*>(t) : "<null>";
    }
    sqlite3_finalize(stmt);
    return out;
  }
  std::int64_t integer(const std::string& sql) { return std::stoll(text(sql)); }

 private:
  sqlite3* db_ = nullptr;
};

// Runs a one-value query through the store's read pool.
inline Result<std::string> query_text(Store& store, const std::string& sql) {
  return store.read_value<std::string>([&](Tx& tx) -> Result<std::string> {
    auto stmt = tx.prepare(sql);
    if (!stmt) return stmt.error();
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return Error{Errc::not_found, "no row"};
    return stmt->column_opt_text(0).value_or("<null>");
  });
}

inline std::int64_t query_int(Store& store, const std::string& sql) {
  auto text = query_text(store, sql);
  EXPECT_TRUE(text.has_value()) << sql << ": " << text.error().message();
  return text ? std::stoll(*text) : -1;
}

}  // namespace sandboxd::store::testing
