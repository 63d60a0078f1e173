// Typed access to the `audit` table (SPEC §8): an append-only log of who did what.
//
// Rows have no foreign key, so they outlive the sandboxes they name. `append` composes into
// any write job (audit the change in the same transaction as the change). `list` pages
// through the rows newest first with the indexes of §8. The table is bounded by the
// retention sweep (§8 "Audit retention"): rows older than the retention go, then the oldest
// beyond a row cap, one batch per write job so that no transaction grows large. Plain data.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

// Exact-match filters of `list`; unset fields match everything. The order is newest first:
// ts, then id, both descending.
struct AuditFilter {
  std::optional<std::string> sandbox_id{};
  std::optional<std::string> action{};
  std::optional<std::string> actor{};
  std::optional<std::int64_t> since_ms{};  // ts >= since_ms
  // A page's position: only rows after (ts, id) in the order above.
  std::optional<std::pair<std::int64_t, std::int64_t>> after{};
  int limit = 100;
};

// What one retention sweep deleted.
struct AuditSweep {
  std::int64_t by_age = 0;  // older than the retention
  std::int64_t by_cap = 0;  // the oldest beyond max_rows
};

inline constexpr int kAuditSweepBatch = 5000;  // rows per transaction (SPEC §8)

namespace audit_repo {

// Returns the new row's id.
Result<std::int64_t> append(Tx& tx, const AuditRow& row);
// The sandbox's rows, newest first, at most `limit`.
Result<std::vector<AuditRow>> list_for_sandbox(Tx& tx, std::string_view sandbox_id, int limit);

Result<std::vector<AuditRow>> list_for_sandbox(Store& store, std::string_view sandbox_id,
                                               int limit);

// The rows matching `filter`, newest first, at most filter.limit.
Result<std::vector<AuditRow>> list(Tx& tx, const AuditFilter& filter);
Result<std::vector<AuditRow>> list(Store& store, const AuditFilter& filter);

// One batch of the sweep, for a write job: deletes at most `batch` of the oldest rows whose
// ts is before `cutoff_ms`. Returns the rows deleted; fewer than `batch` means done.
Result<std::int64_t> delete_older_than(Tx& tx, std::int64_t cutoff_ms, int batch);
// One batch of the cap: deletes at most `batch` of the oldest rows beyond the newest
// `max_rows`. Returns the rows deleted; fewer than `batch` means done.
Result<std::int64_t> delete_beyond(Tx& tx, std::int64_t max_rows, int batch);

// A whole sweep, blocking (never from a write job or an I/O thread): age first, with the
// store clock's now − `retention` as the cutoff, then the cap; one write job per batch.
Result<AuditSweep> sweep(Store& store, std::chrono::milliseconds retention, std::int64_t max_rows,
                         int batch = kAuditSweepBatch);

}  // namespace audit_repo
}  // namespace sandboxd::store
