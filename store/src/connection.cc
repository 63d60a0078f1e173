#include "connection.h"

#include <string>

namespace sandboxd::store::detail {

Errc errc_for(int sqlite_rc) {
  switch (sqlite_rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
      return Errc::internal;  // not an error; a caller bug if it gets here
    case SQLITE_CONSTRAINT:
      return Errc::conflict;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Errc::unavailable;
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_NOLFS:
    case SQLITE_PROTOCOL:
    case SQLITE_AUTH:
      return Errc::io;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
      return Errc::corrupt;
    case SQLITE_INTERRUPT:
      return Errc::cancelled;
    case SQLITE_TOOBIG:
      return Errc::invalid_argument;
    default:
      return Errc::internal;
  }
}

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string detail(what);
  detail += ": ";
  // The connection's message is more specific (it names the constraint or the column),
  // but only when it describes this failure.
  if (db != nullptr && sqlite3_extended_errcode(db) == rc) {
    detail += sqlite3_errmsg(db);
  } else {
    detail += sqlite3_errstr(rc);
  }
  detail += " (sqlite ";
  detail += std::to_string(rc);
  detail += ")";
  return Error{errc_for(rc), std::move(detail)};
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path, Role role,
                                                     std::chrono::milliseconds busy_timeout) {
  // NOMUTEX: each connection is used by one thread at a time (the writer thread, or a reader
  // checked out of the pool), so SQLite's per-connection mutex would only cost time.
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE;
  flags |=
      role == Role::writer ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) : SQLITE_OPEN_READONLY;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error err = sqlite_error(db, rc, "open database");
    sqlite3_close(db);  // a handle is returned even on failure
    return err;
  }
  std::unique_ptr<Connection> conn(new Connection(db, role));
  sqlite3_extended_result_codes(db, 1);
  if (Status st = conn->apply_pragmas(busy_timeout); !st) return st.error();
  return conn;
}

Connection::~Connection() {
  // Statements are finalized by their owners first; close_v2 would defer otherwise.
  sqlite3_close_v2(db_);
}

Status Connection::apply_pragmas(std::chrono::milliseconds busy_timeout) {
  int rc = sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
  if (rc != SQLITE_OK) return sqlite_error(db_, rc, "set busy_timeout");

  if (role_ == Role::writer) {
    auto mode = query_text("PRAGMA journal_mode=WAL");
    if (!mode) return mode.error();
    if (*mode != "wal") {
      return Error{Errc::io,
                   "the database refused WAL journal mode (journal_mode is " + *mode + ")"};
    }
  } else {
    // A read-only connection cannot change the journal mode; the writer, which opens first,
    // already made the database WAL. Check instead of setting.
    auto mode = query_text("PRAGMA journal_mode");
    if (!mode) return mode.error();
    if (*mode != "wal") {
      return Error{Errc::io, "read connection found journal_mode " + *mode + ", expected wal"};
    }
  }
  std::string common = "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;";
  if (role_ == Role::writer) {
    // FULL: an acknowledged write must survive power loss, not only a crash (§8). Commits
    // are grouped, so this is about one fsync per batch.
    common += "PRAGMA synchronous=FULL; PRAGMA journal_size_limit=67108864;";
  } else {
    common += "PRAGMA query_only=ON;";
  }
  return exec(common);
}

Status Connection::exec(std::string_view sql) {
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db_, rc, "exec");
  return ok();
}

namespace {

// Prepares and steps a one-row query; `read` takes the value out of the row.
template <class T, class Read>
Result<T> query_one(sqlite3* db, std::string_view sql, Read read) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, "prepare");
  rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) {
    Error err = rc == SQLITE_DONE
                    ? Error{Errc::internal, "query returned no row: " + std::string(sql)}
                    : sqlite_error(db, rc, "query");
    sqlite3_finalize(stmt);
    return err;
  }
  T value = read(stmt);
  sqlite3_finalize(stmt);
  return value;
}

}  // namespace

Result<std::int64_t> Connection::query_int(std::string_view sql) {
  return query_one<std::int64_t>(db_, sql,
                                 [](sqlite3_stmt* s) { return sqlite3_column_int64(s, 0); });
}

Result<std::string> Connection::query_text(std::string_view sql) {
  return query_one<std::string>(db_, sql, [](sqlite3_stmt* s) {
    const unsigned char* text = sqlite3_column_text(s, 0);
    if (text == nullptr) return std::string();
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<std::size_t>(sqlite3_column_bytes(s, 0)));
  });
}

}  // namespace sandboxd::store::detail
