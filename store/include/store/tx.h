// The statement API that write jobs and reads receive.
//
// A `Tx` is a borrowed view of one SQLite connection inside an open transaction: the
// writer's transaction (each write job runs inside its own SAVEPOINT) or a read snapshot.
// It is valid only during the callback that received it and only on that thread; never
// keep it, a `Stmt` made from it, or run BEGIN/COMMIT/ROLLBACK through it: the store owns
// the transaction. A `Stmt` is a prepared statement owned by the caller; it must be
// destroyed before the callback returns.
//
// Errors are values. Binding errors are remembered and reported by the next `step()`, so
// binds can be chained. SQLite failures map to `Errc`: constraint violations to `conflict`,
// a busy database to `unavailable`, a full disk or I/O failure to `io`, corruption to
// `corrupt`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/clock.h"
#include "base/result.h"

// Opaque SQLite handles: the header names them so `Stmt` can hold one, but never needs
// sqlite3.h.
struct sqlite3;
struct sqlite3_stmt;

namespace sandboxd::store {

namespace detail {
class Connection;
}

class Stmt {
 public:
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Parameters are 1-based, as in SQL's `?1`. Text is copied. `bind` picks the SQL type
  // from the C++ type: integers (and bool) bind as INTEGER, floating point as REAL,
  // strings as TEXT, an empty optional as NULL.
  Stmt& bind_int64(int index, std::int64_t value);
  Stmt& bind_double(int index, double value);
  Stmt& bind_text(int index, std::string_view value);
  Stmt& bind_null(int index);

  template <class T>
  requires std::is_integral_v<T> Stmt& bind(int index, T value) {
    const std::int64_t wide = value;
    return bind_int64(index, wide);
  }
  template <class T>
  requires std::is_floating_point_v<T> Stmt& bind(int index, T value) {
    return bind_double(index, value);
  }
  Stmt& bind(int index, std::string_view value) { return bind_text(index, value); }
  Stmt& bind(int index, const std::string& value) { return bind_text(index, value); }
  Stmt& bind(int index, const char* value) { return bind_text(index, value); }
  template <class T>
  Stmt& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }

  // true: a row is ready to read; false: the statement is done.
  Result<bool> step();
  // Steps to completion, ignoring rows: for INSERT/UPDATE/DELETE.
  Status run();
  // Makes the statement ready to run again; bindings are kept until rebound.
  void reset();

  bool column_is_null(int col) const;  // columns are 0-based
  std::int64_t column_int64(int col) const;
  double column_double(int col) const;
  std::string column_text(int col) const;
  std::optional<std::int64_t> column_opt_int64(int col) const;
  std::optional<std::string> column_opt_text(int col) const;

 private:
  friend class Tx;
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  void note_bind(int rc, int index);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  int bind_rc_ = 0;  // first failed bind, reported by step()
  int bind_index_ = 0;
};

class Tx {
 public:
  // Made by the store only (`detail::Connection` is private to store/).
  Tx(detail::Connection& conn, const Clock& clock, bool writable)
      : conn_(conn), clock_(clock), writable_(writable) {}
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;

  Result<Stmt> prepare(std::string_view sql);
  // Runs one or more statements that return no rows.
  Status exec(std::string_view sql);

  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  std::int64_t changes() const;
  std::int64_t last_insert_rowid() const;

  // Unix ms from the store's injected Clock: the value for every time column.
  std::int64_t now_ms() const { return clock_.unix_ms(); }
  bool writable() const { return writable_; }

 private:
  detail::Connection& conn_;
  const Clock& clock_;
  bool writable_;
};

}  // namespace sandboxd::store
