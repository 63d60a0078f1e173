#include "migrate.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <system_error>

#include "base/log.h"
#include "files.h"
#include "store/tx.h"

namespace sandboxd::store::detail {

namespace {

constexpr log::Logger kLog{"store"};
constexpr int kBackupsKept = 3;

// The runner, never a SQL file, creates this table (§8), so that every migration including
// the first can record itself.
constexpr std::string_view kCreateSchemaMigration =
    "CREATE TABLE IF NOT EXISTS schema_migration (\n"
    "  version INTEGER PRIMARY KEY, name TEXT NOT NULL,\n"
    "  sha256  TEXT NOT NULL,\n"
    "  applied_at INTEGER NOT NULL\n"
    ") STRICT";

std::filesystem::path backup_path(const std::filesystem::path& db_path, int version) {
  return db_path.string() + ".bak-v" + std::to_string(version);
}

// Parses "<db name>.bak-v<digits>"; -1 for any other name (including -wal/-shm siblings).
int backup_version(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  std::string digits = name.substr(prefix.size());
  if (digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  return std::stoi(digits);
}

void remove_db_files(const std::filesystem::path& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(path.string() + suffix, ec);
  }
}

// Keeps the newest `kBackupsKept` backups (by the version in their name).
void prune_backups(const std::filesystem::path& db_path) {
  const std::string prefix = db_path.filename().string() + ".bak-v";
  std::vector<int> versions;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(db_path.parent_path(), ec)) {
    int v = backup_version(entry.path().filename().string(), prefix);
    if (v >= 0) versions.push_back(v);
  }
  std::sort(versions.begin(), versions.end(), std::greater<>());
  for (std::size_t i = kBackupsKept; i < versions.size(); ++i) {
    remove_db_files(backup_path(db_path, versions[i]));
    kLog.info("old database backup removed", {{"version", versions[i]}});
  }
}

// A consistent copy of the live database with SQLite's online-backup API.
Status backup(Connection& conn, const std::filesystem::path& db_path, int version) {
  const auto path = backup_path(db_path, version);
  remove_db_files(path);  // a backup of the same version from an earlier attempt
  if (Status st = ensure_private_file(path); !st) return st;
  sqlite3* dst = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &dst,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE,
                           nullptr);
  if (rc != SQLITE_OK) {
    Error err = sqlite_error(dst, rc, "open backup " + path.string());
    sqlite3_close(dst);
    return err;
  }
  Status out = ok();
  sqlite3_backup* job = sqlite3_backup_init(dst, "main", conn.db(), "main");
  if (job == nullptr) {
    out = sqlite_error(dst, sqlite3_extended_errcode(dst), "start backup");
  } else {
    rc = sqlite3_backup_step(job, -1);
    int finish_rc = sqlite3_backup_finish(job);
    if (rc != SQLITE_DONE) {
      out = sqlite_error(nullptr, rc, "backup to " + path.string());
    } else if (finish_rc != SQLITE_OK) {
      out = sqlite_error(dst, finish_rc, "finish backup to " + path.string());
    }
  }
  sqlite3_close(dst);
  if (!out) {
    remove_db_files(path);
    return out;
  }
  if (Status st = sync_dir(db_path.parent_path()); !st) return st;
  kLog.info("database backed up before migrating", {{"version", version}, {"path", path.string()}});
  prune_backups(db_path);
  return ok();
}

Result<bool> table_exists(Connection& conn, const Clock& clock, std::string_view name) {
  Tx tx(conn, clock, false);
  auto stmt = tx.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, name);
  return stmt->step();
}

// Every applied migration must be the one this build embeds: a changed text means the
// build was made from edited, already-released SQL.
Status verify_applied(Connection& conn, const Clock& clock,
                      const std::vector<Migration>& migrations, int user_version) {
  auto has_table = table_exists(conn, clock, "schema_migration");
  if (!has_table) return has_table.error();
  if (!*has_table) {
    if (user_version == 0) return ok();
    return Error{Errc::corrupt, "database schema version " + std::to_string(user_version) +
                                    " has no schema_migration table"};
  }
  Tx tx(conn, clock, false);
  auto stmt = tx.prepare("SELECT version, name, sha256 FROM schema_migration ORDER BY version");
  if (!stmt) return stmt.error();
  int expected = 1;
  while (true) {
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) break;
    const auto version = stmt->column_int64(0);
    if (version != expected || version > user_version) {
      return Error{Errc::corrupt,
                   "schema_migration does not match user_version " + std::to_string(user_version) +
                       " (unexpected row for version " + std::to_string(version) + ")"};
    }
    const Migration& m = migrations[static_cast<std::size_t>(version - 1)];
    const std::string stored = stmt->column_text(2);
    const std::string built = sha256_hex(m.sql);
    if (stored != built) {
      return Error{Errc::corrupt, "migration " + migration_label(m) + " was applied with sha256 " +
                                      stored + " but this build embeds sha256 " + built +
                                      "; a released migration was edited (a build mistake)"};
    }
    ++expected;
  }
  if (expected - 1 != user_version) {
    return Error{Errc::corrupt, "schema_migration records " + std::to_string(expected - 1) +
                                    " migrations but user_version is " +
                                    std::to_string(user_version)};
  }
  return ok();
}

Status apply_one(Connection& conn, const Clock& clock, const Migration& m) {
  Tx tx(conn, clock, true);
  if (Status st = conn.exec("BEGIN IMMEDIATE"); !st) return st;
  auto body = [&]() -> Status {
    if (Status st = conn.exec(kCreateSchemaMigration); !st) return st;
    if (Status st = conn.exec(m.sql); !st) return st;
    // foreign_keys is off while migrating (table rebuilds need it off, §8), so check the
    // result explicitly before it becomes visible.
    auto fk = tx.prepare("PRAGMA foreign_key_check");
    if (!fk) return fk.error();
    auto violation = fk->step();
    if (!violation) return violation.error();
    if (*violation) {
      return Error{Errc::internal,
                   "leaves rows violating a foreign key in table " + fk->column_text(0)};
    }
    auto insert = tx.prepare(
        "INSERT INTO schema_migration (version, name, sha256, applied_at) VALUES (?1, ?2, ?3, ?4)");
    if (!insert) return insert.error();
    insert->bind(1, m.version).bind(2, m.name).bind(3, sha256_hex(m.sql)).bind(4, tx.now_ms());
    if (Status st = insert->run(); !st) return st;
    return conn.exec("PRAGMA user_version = " + std::to_string(m.version));
  };
  Status st = body();
  if (st) st = conn.exec("COMMIT");
  if (!st) {
    if (conn.in_transaction()) (void)conn.exec("ROLLBACK");
    return Error{st.error().code,
                 "migration " + migration_label(m) + " failed: " + st.error().detail};
  }
  return ok();
}

}  // namespace

Status check_sequence(const std::vector<Migration>& migrations) {
  if (migrations.empty()) return Error{Errc::internal, "no migrations"};
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return Error{Errc::internal, "migrations must be numbered from 1 with no gaps; position " +
                                       std::to_string(i + 1) + " has version " +
                                       std::to_string(migrations[i].version)};
    }
  }
  return ok();
}

Result<MigrateOutcome> migrate(Connection& conn, const std::vector<Migration>& migrations,
                               const Clock& clock, const std::filesystem::path& db_path) {
  if (Status st = check_sequence(migrations); !st) return st.error();
  const int newest = migrations.back().version;

  auto current = conn.query_int("PRAGMA user_version");
  if (!current) return current.error();
  const int version = static_cast<int>(*current);
  MigrateOutcome outcome{version, version, std::nullopt};

  if (version > newest) {
    return Error{Errc::too_new, "database schema version " + std::to_string(version) +
                                    " is newer than this sandboxd (knows " +
                                    std::to_string(newest) + "); run a newer sandboxd or restore " +
                                    backup_path(db_path, newest).string()};
  }
  if (Status st = verify_applied(conn, clock, migrations, version); !st) return st.error();
  if (version == newest) return outcome;

  auto objects = conn.query_int("SELECT count(*) FROM sqlite_schema");
  if (!objects) return objects.error();
  if (version > 0 || *objects > 0) {
    if (Status st = backup(conn, db_path, version); !st) return st.error();
    outcome.backup = backup_path(db_path, version);
  }

  // PRAGMA foreign_keys is a no-op inside a transaction, so it is switched around the loop.
  if (Status st = conn.exec("PRAGMA foreign_keys=OFF"); !st) return st.error();
  for (std::size_t i = static_cast<std::size_t>(version); i < migrations.size(); ++i) {
    const Migration& m = migrations[i];
    const auto start = clock.mono();
    if (Status st = apply_one(conn, clock, m); !st) {
      (void)conn.exec("PRAGMA foreign_keys=ON");
      return st.error();
    }
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock.mono() - start).count();
    kLog.info("migration applied", {{"version", m.version}, {"name", m.name}, {"ms", ms}});
    outcome.to_version = m.version;
  }
  if (Status st = conn.exec("PRAGMA foreign_keys=ON"); !st) return st.error();
  return outcome;
}

Result<Ulid> ensure_instance(Connection& conn, const Clock& clock) {
  Tx tx(conn, clock, true);
  if (Status st = conn.exec("BEGIN IMMEDIATE"); !st) return st.error();
  auto body = [&]() -> Result<Ulid> {
    auto stmt = tx.prepare("SELECT id FROM instance");
    if (!stmt) return stmt.error();
    std::vector<std::string> ids;
    while (true) {
      auto row = stmt->step();
      if (!row) return row.error();
      if (!*row) break;
      ids.push_back(stmt->column_text(0));
    }
    if (ids.size() > 1) {
      return Error{Errc::corrupt, "the instance table has " + std::to_string(ids.size()) +
                                      " rows; it must have exactly one"};
    }
    if (ids.size() == 1) {
      auto id = Ulid::parse(ids[0]);
      if (!id || id->str() != ids[0]) {
        return Error{Errc::corrupt, "the instance id is not a canonical ULID"};
      }
      return *id;
    }
    Ulid id = UlidGenerator(clock).next();
    auto insert = tx.prepare("INSERT INTO instance (id, created_at) VALUES (?1, ?2)");
    if (!insert) return insert.error();
    insert->bind(1, id.str()).bind(2, tx.now_ms());
    if (Status st = insert->run(); !st) return st.error();
    kLog.info("instance created", {{"instance", id.str()}});
    return id;
  };
  auto id = body();
  Status end = id ? conn.exec("COMMIT") : ok();
  if (!id || !end) {
    if (conn.in_transaction()) (void)conn.exec("ROLLBACK");
    if (!id) return id.error();
    return end.error();
  }
  return id;
}

}  // namespace sandboxd::store::detail
