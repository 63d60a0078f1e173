// The migration runner (SPEC §8 "Migrations") and the instance row. Runs once at open, on
// the writer connection, before any other thread can touch the database.
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "base/ulid.h"
#include "connection.h"
#include "store/migration.h"

namespace sandboxd::store::detail {

// Versions must run 1..N without gaps (the build checks the embedded files; this checks any
// list, including a test's).
Status check_sequence(const std::vector<Migration>& migrations);

struct MigrateOutcome {
  int from_version = 0;
  int to_version = 0;
  std::optional<std::filesystem::path> backup;  // made before migrating an existing database
};

// Refuses a too-new database (Errc::too_new) or a changed applied migration
// (Errc::corrupt), backs an existing database up to `<db>.bak-v<old>` (keeping the newest
// three), then applies each pending migration in its own BEGIN IMMEDIATE transaction with
// its schema_migration row and user_version.
Result<MigrateOutcome> migrate(Connection& conn, const std::vector<Migration>& migrations,
                               const Clock& clock, const std::filesystem::path& db_path);

// Reads the one instance row, making it on first boot.
Result<Ulid> ensure_instance(Connection& conn, const Clock& clock);

}  // namespace sandboxd::store::detail
