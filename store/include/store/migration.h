// Schema migrations (SPEC §8 "Migrations").
//
// A `Migration` is one forward-only step: a version (numbered from 1 with no gaps), a name
// and the SQL text. `embedded_migrations()` is the list compiled from
// store/migrations/NNNN_name.sql; the build fails when the files have a gap. `Store::open`
// applies what a database lacks. The list is immutable and safe to read from any thread.
// Tests pass their own list (embedded plus synthetic steps) to `Store::open` to simulate
// upgrades; production code never does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::store {

struct Migration {
  int version = 0;
  std::string name;  // "init" for 0001_init.sql
  std::string sql;   // the exact bytes of the file; its SHA-256 is recorded when applied
};

const std::vector<Migration>& embedded_migrations();

// "0001_init": how errors and logs name a migration.
std::string migration_label(const Migration& m);

// Lower-case hex SHA-256, as stored in schema_migration.sha256.
std::string sha256_hex(std::string_view data);

}  // namespace sandboxd::store
