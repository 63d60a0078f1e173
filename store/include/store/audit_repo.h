// Typed access to the `audit` table (SPEC §8): an append-only log of who did what.
//
// Rows have no foreign key, so they outlive the sandboxes they name. `append` composes into
// any write job (audit the change in the same transaction as the change). Plain data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/store.h"
#include "store/tx.h"

namespace sandboxd::store {

struct AuditRow {
  std::int64_t id = 0;  // assigned by append
  std::int64_t ts = 0;  // unix ms; 0 in append means Tx::now_ms()
  std::string actor{};  // 'token:<name>' | 'operator' | 'system' | 'anonymous'
  std::optional<std::string> actor_ip{};
  std::optional<std::string> request_id{};
  std::string action{};  // e.g. sandbox.create
  std::optional<std::string> sandbox_id{};
  std::string detail = "{}";  // JSON

  friend bool operator==(const AuditRow&, const AuditRow&) = default;
};

namespace audit_repo {

// Returns the new row's id.
Result<std::int64_t> append(Tx& tx, const AuditRow& row);
// The sandbox's rows, newest first, at most `limit`.
Result<std::vector<AuditRow>> list_for_sandbox(Tx& tx, std::string_view sandbox_id, int limit);

Result<std::vector<AuditRow>> list_for_sandbox(Store& store, std::string_view sandbox_id,
                                               int limit);

}  // namespace audit_repo
}  // namespace sandboxd::store
