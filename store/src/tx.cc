#include "store/tx.h"

#include <utility>

#include "connection.h"

namespace sandboxd::store {

using detail::sqlite_error;

Stmt::Stmt(Stmt&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      stmt_(std::exchange(other.stmt_, nullptr)),
      bind_rc_(other.bind_rc_),
      bind_index_(other.bind_index_) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
    bind_rc_ = other.bind_rc_;
    bind_index_ = other.bind_index_;
  }
  return *this;
}

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

void Stmt::note_bind(int rc, int index) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) {
    bind_rc_ = rc;
    bind_index_ = index;
  }
}

Stmt& Stmt::bind_int64(int index, std::int64_t value) {
  note_bind(sqlite3_bind_int64(stmt_, index, value), index);
  return *this;
}

Stmt& Stmt::bind_double(int index, double value) {
  note_bind(sqlite3_bind_double(stmt_, index, value), index);
  return *this;
}

Stmt& Stmt::bind_text(int index, std::string_view value) {
  // SQLITE_TRANSIENT makes SQLite copy the text, so the caller's buffer may go away.
  note_bind(
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
      index);
  return *this;
}

Stmt& Stmt::bind_null(int index) {
  note_bind(sqlite3_bind_null(stmt_, index), index);
  return *this;
}

Result<bool> Stmt::step() {
  if (bind_rc_ != SQLITE_OK) {
    return sqlite_error(nullptr, bind_rc_, "bind parameter " + std::to_string(bind_index_));
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const char* sql = sqlite3_sql(stmt_);
  std::string what = "step";
  if (sql != nullptr) {
    // The first line of the statement says which one failed without dumping it all.
    std::string_view text(sql);
    what += " `";
    what += text.substr(0, std::min(text.find('\n'), std::size_t{80}));
    what += "`";
  }
  return sqlite_error(db_, rc, what);
}

Status Stmt::run() {
  while (true) {
    auto row = step();
    if (!row) return row.error();
    if (!*row) return ok();
  }
}

void Stmt::reset() { sqlite3_reset(stmt_); }

bool Stmt::column_is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

std::int64_t Stmt::column_int64(int col) const { return sqlite3_column_int64(stmt_, col); }

double Stmt::column_double(int col) const { return sqlite3_column_double(stmt_, col); }

std::string Stmt::column_text(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_, col);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::optional<std::int64_t> Stmt::column_opt_int64(int col) const {
  if (column_is_null(col)) return std::nullopt;
  return column_int64(col);
}

std::optional<std::string> Stmt::column_opt_text(int col) const {
  if (column_is_null(col)) return std::nullopt;
  return column_text(col);
}

Result<Stmt> Tx::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(conn_.db(), sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK) return sqlite_error(conn_.db(), rc, "prepare");
  if (stmt == nullptr) return Error{Errc::internal, "prepare: empty statement"};
  Stmt out(conn_.db(), stmt);
  // A second statement in the text would be silently ignored; refuse it instead.
  std::string_view rest(tail, static_cast<std::size_t>(sql.data() + sql.size() - tail));
  if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
    return Error{Errc::internal, "prepare: more than one statement; use exec()"};
  }
  return out;
}

Status Tx::exec(std::string_view sql) { return conn_.exec(sql); }

std::int64_t Tx::changes() const { return sqlite3_changes64(conn_.db()); }

std::int64_t Tx::last_insert_rowid() const { return sqlite3_last_insert_rowid(conn_.db()); }

}  // namespace sandboxd::store
