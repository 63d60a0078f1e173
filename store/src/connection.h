// One SQLite connection with the pragmas of SPEC §8 applied, and the mapping from SQLite
// result codes to Errc. Used by one thread at a time; owned by the writer or the read pool.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sandboxd::store::detail {

Errc errc_for(int sqlite_rc);
// "<what>: <sqlite message> (<result code name>)", with the mapped Errc.
Error sqlite_error(sqlite3* db, int rc, std::string_view what);

class Connection {
 public:
  enum class Role { writer, reader };

  // Opens `path` (never following a symlink) and applies the pragmas of `role`. The writer
  // creates the file if missing; readers open it SQLITE_OPEN_READONLY with query_only=ON.
  static Result<std::unique_ptr<Connection>> open(const std::string& path, Role role,
                                                  std::chrono::milliseconds busy_timeout);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  sqlite3* db() const { return db_; }
  Role role() const { return role_; }

  // Runs statements that return no rows.
  Status exec(std::string_view sql);
  // The first column of the first row of a one-row query.
  Result<std::int64_t> query_int(std::string_view sql);
  Result<std::string> query_text(std::string_view sql);
  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

 private:
  Connection(sqlite3* db, Role role) : db_(db), role_(role) {}
  Status apply_pragmas(std::chrono::milliseconds busy_timeout);

  sqlite3* db_;
  Role role_;
};

}  // namespace sandboxd::store::detail
