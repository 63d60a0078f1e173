#include "store/audit_repo.h"

namespace sandboxd::store::audit_repo {

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
  auto stmt = tx.prepare(
      "SELECT id, ts, actor, actor_ip, request_id, action, sandbox_id, detail FROM audit "
      "WHERE sandbox_id = ?1 ORDER BY ts DESC, id DESC LIMIT ?2");
  if (!stmt) return stmt.error();
  stmt->bind(1, sandbox_id).bind(2, limit);
  std::vector<AuditRow> rows;
  while (true) {
    auto has = stmt->step();
    if (!has) return has.error();
    if (!*has) break;
    AuditRow r;
    r.id = stmt->column_int64(0);
    r.ts = stmt->column_int64(1);
    r.actor = stmt->column_text(2);
    r.actor_ip = stmt->column_opt_text(3);
    r.request_id = stmt->column_opt_text(4);
    r.action = stmt->column_text(5);
    r.sandbox_id = stmt->column_opt_text(6);
    r.detail = stmt->column_text(7);
    rows.push_back(std::move(r));
  }
  return rows;
}

Result<std::vector<AuditRow>> list_for_sandbox(Store& store, std::string_view sandbox_id,
                                               int limit) {
  return store.read_value<std::vector<AuditRow>>(
      [&](Tx& tx) { return list_for_sandbox(tx, sandbox_id, limit); });
}

}  // namespace sandboxd::store::audit_repo
