#include "store/audit_repo.h"

#include <algorithm>

namespace sandboxd::store::audit_repo {

namespace {

constexpr std::string_view kColumns =
    "SELECT id, ts, actor, actor_ip, request_id, action, sandbox_id, detail FROM audit ";

Result<std::vector<AuditRow>> read_rows(Stmt& stmt) {
  std::vector<AuditRow> rows;
  while (true) {
    auto has = stmt.step();
    if (!has) return has.error();
    if (!*has) break;
    AuditRow r;
    r.id = stmt.column_int64(0);
    r.ts = stmt.column_int64(1);
    r.actor = stmt.column_text(2);
    r.actor_ip = stmt.column_opt_text(3);
    r.request_id = stmt.column_opt_text(4);
    r.action = stmt.column_text(5);
    r.sandbox_id = stmt.column_opt_text(6);
    r.detail = stmt.column_text(7);
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace

Result<std::int64_t> append(Tx& tx, const AuditRow& row) {
  auto stmt = tx.prepare(
      "INSERT INTO audit (ts, actor, actor_ip, request_id, action, sandbox_id, detail) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!stmt) return stmt.error();
  stmt->bind(1, row.ts != 0 ? row.ts : tx.now_ms()).bind(2, row.actor).bind(3, row.actor_ip);
  stmt->bind(4, row.request_id).bind(5, row.action).bind(6, row.sandbox_id).bind(7, row.detail);
  if (Status st = stmt->run(); !st) return st.error();
  return tx.last_insert_rowid();
}

Result<std::vector<AuditRow>> list_for_sandbox(Tx& tx, std::string_view sandbox_id, int limit) {
  AuditFilter filter;
  filter.sandbox_id = std::string(sandbox_id);
  filter.limit = limit;
  return list(tx, filter);
}

Result<std::vector<AuditRow>> list_for_sandbox(Store& store, std::string_view sandbox_id,
                                               int limit) {
  return store.read_value<std::vector<AuditRow>>(
      [&](Tx& tx) { return list_for_sandbox(tx, sandbox_id, limit); });
}

Result<std::vector<AuditRow>> list(Tx& tx, const AuditFilter& filter) {
  // Only the conditions that are set, so that SQLite picks the index of §8 that fits:
  // (sandbox_id, ts), (action, ts) or (ts); each ends in the rowid, which makes the
  // (ts, id) order and the row-value cursor an index range.
  std::string sql(kColumns);
  std::string where;
  auto add = [&where](std::string_view condition) {
    where += where.empty() ? "WHERE " : " AND ";
    where += condition;
  };
  int index = 0;
  std::vector<std::pair<int, const std::string*>> text_binds;
  std::vector<std::pair<int, std::int64_t>> int_binds;
  auto text_param = [&](const char* column, const std::optional<std::string>& value) {
    if (!value) return;
    ++index;
    add(std::string(column) + " = ?" + std::to_string(index));
    text_binds.emplace_back(index, &*value);
  };
  text_param("sandbox_id", filter.sandbox_id);
  text_param("action", filter.action);
  text_param("actor", filter.actor);
  if (filter.since_ms) {
    ++index;
    add("ts >= ?" + std::to_string(index));
    int_binds.emplace_back(index, *filter.since_ms);
  }
  if (filter.after) {
    add("(ts, id) < (?" + std::to_string(index + 1) + ", ?" + std::to_string(index + 2) + ")");
    int_binds.emplace_back(index + 1, filter.after->first);
    int_binds.emplace_back(index + 2, filter.after->second);
    index += 2;
  }
  ++index;
  sql += where + " ORDER BY ts DESC, id DESC LIMIT ?" + std::to_string(index);
  int_binds.emplace_back(index, std::max(filter.limit, 0));

  auto stmt = tx.prepare(sql);
  if (!stmt) return stmt.error();
  for (const auto& [i, text] : text_binds) stmt->bind(i, *text);
  for (const auto& [i, number] : int_binds) stmt->bind(i, number);
  return read_rows(*stmt);
}

Result<std::vector<AuditRow>> list(Store& store, const AuditFilter& filter) {
  return store.read_value<std::vector<AuditRow>>([&](Tx& tx) { return list(tx, filter); });
}

Result<std::int64_t> delete_older_than(Tx& tx, std::int64_t cutoff_ms, int batch) {
  auto stmt = tx.prepare(
      "DELETE FROM audit WHERE id IN "
      "(SELECT id FROM audit WHERE ts < ?1 ORDER BY ts, id LIMIT ?2)");
  if (!stmt) return stmt.error();
  stmt->bind(1, cutoff_ms).bind(2, batch);
  if (Status st = stmt->run(); !st) return st.error();
  return tx.changes();
}

Result<std::int64_t> delete_beyond(Tx& tx, std::int64_t max_rows, int batch) {
  auto count = tx.prepare("SELECT count(*) FROM audit");
  if (!count) return count.error();
  auto has = count->step();
  if (!has) return has.error();
  const std::int64_t excess = (*has ? count->column_int64(0) : 0) - max_rows;
  if (excess <= 0) return std::int64_t{0};
  auto stmt = tx.prepare(
      "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY ts, id LIMIT ?1)");
  if (!stmt) return stmt.error();
  stmt->bind(1, std::min<std::int64_t>(excess, batch));
  if (Status st = stmt->run(); !st) return st.error();
  return tx.changes();
}

Result<AuditSweep> sweep(Store& store, std::chrono::milliseconds retention, std::int64_t max_rows,
                         int batch) {
  AuditSweep done;
  for (bool by_age : {true, false}) {
    std::int64_t deleted = batch;
    while (deleted >= batch) {
      Status st = store.write([&](Tx& tx) -> Status {
        auto n = by_age ? delete_older_than(tx, tx.now_ms() - retention.count(), batch)
                        : delete_beyond(tx, max_rows, batch);
        if (!n) return n.error();
        deleted = *n;
        return ok();
      });
      if (!st) return st.error();
      (by_age ? done.by_age : done.by_cap) += deleted;
    }
  }
  return done;
}

}  // namespace sandboxd::store::audit_repo
