#include "store/task_repo.h"

#include <array>

namespace sandboxd::store::task_repo {

namespace {

// Column order of `task` as bound (?1..?20) and read (0..19).
constexpr std::array<std::string_view, 20> kColumns = {
    "id",
    "sandbox_id",
    "agent",
    "prompt",
    "argv",
    "model",
    "env_keys",
    "status",
    "exit_code",
    "error_code",
    "error_message",
    "result",
    "timeout_ms",
    "actor",
    "created_at",
    "started_at",
    "finished_at",
    "cancel_requested_at",
    "last_event_id",
    "events_dropped",
};

std::string select_sql() {
  std::string sql = "SELECT ";
  for (std::size_t i = 0; i < kColumns.size(); ++i) {
    if (i > 0) sql += ", ";
    sql += kColumns[i];
  }
  return sql + " FROM task";
}

TaskRow read_row(const Stmt& s) {
  TaskRow r;
  r.id = s.column_text(0);
  r.sandbox_id = s.column_text(1);
  r.agent = s.column_text(2);
  r.prompt = s.column_opt_text(3);
  r.argv = s.column_opt_text(4);
  r.model = s.column_opt_text(5);
  r.env_keys = s.column_text(6);
  r.status = s.column_text(7);
  r.exit_code = s.column_opt_int64(8);
  r.error_code = s.column_opt_text(9);
  r.error_message = s.column_opt_text(10);
  r.result = s.column_opt_text(11);
  r.timeout_ms = s.column_int64(12);
  r.actor = s.column_text(13);
  r.created_at = s.column_int64(14);
  r.started_at = s.column_opt_int64(15);
  r.finished_at = s.column_opt_int64(16);
  r.cancel_requested_at = s.column_opt_int64(17);
  r.last_event_id = s.column_int64(18);
  r.events_dropped = s.column_int64(19);
  return r;
}

Result<std::vector<TaskRow>> read_rows(Stmt& stmt) {
  std::vector<TaskRow> rows;
  for (;;) {
    auto has = stmt.step();
    if (!has) return has.error();
    if (!*has) break;
    rows.push_back(read_row(stmt));
  }
  return rows;
}

Result<std::vector<TaskEventRow>> read_events(Stmt& stmt) {
  std::vector<TaskEventRow> rows;
  for (;;) {
    auto has = stmt.step();
    if (!has) return has.error();
    if (!*has) break;
    TaskEventRow e;
    e.id = stmt.column_int64(0);
    e.type = stmt.column_text(1);
    e.ts = stmt.column_int64(2);
    e.data = stmt.column_text(3);
    rows.push_back(std::move(e));
  }
  return rows;
}

}  // namespace

Status insert(Tx& tx, const TaskRow& r) {
  std::string cols;
  std::string params;
  for (std::size_t i = 0; i < kColumns.size(); ++i) {
    if (i > 0) {
      cols += ", ";
      params += ", ";
    }
    cols += kColumns[i];
    params += "?" + std::to_string(i + 1);
  }
  auto stmt = tx.prepare("INSERT INTO task (" + cols + ") VALUES (" + params + ")");
  if (!stmt) return stmt.error();
  stmt->bind(1, r.id).bind(2, r.sandbox_id).bind(3, r.agent).bind(4, r.prompt).bind(5, r.argv);
  stmt->bind(6, r.model).bind(7, r.env_keys).bind(8, r.status).bind(9, r.exit_code);
  stmt->bind(10, r.error_code).bind(11, r.error_message).bind(12, r.result);
  stmt->bind(13, r.timeout_ms).bind(14, r.actor).bind(15, r.created_at).bind(16, r.started_at);
  stmt->bind(17, r.finished_at).bind(18, r.cancel_requested_at).bind(19, r.last_event_id);
  stmt->bind(20, r.events_dropped);
  return stmt->run();
}

Result<TaskRow> get(Tx& tx, std::string_view id) {
  auto stmt = tx.prepare(select_sql() + " WHERE id = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, id);
  auto has = stmt->step();
  if (!has) return has.error();
  if (!*has) return Error{Errc::not_found, "no such task " + std::string(id)};
  return read_row(*stmt);
}

Result<std::vector<TaskRow>> list(Tx& tx, std::string_view sandbox_id, const TaskFilter& f) {
  std::string sql = select_sql() + " WHERE sandbox_id = ?1";
  if (f.status) sql += " AND status = ?2";
  if (f.after_id) {
    sql += " AND (created_at, id) < (SELECT created_at, id FROM task WHERE id = ?3)";
  }
  sql += " ORDER BY created_at DESC, id DESC LIMIT ?4";
  auto stmt = tx.prepare(sql);
  if (!stmt) return stmt.error();
  stmt->bind(1, sandbox_id).bind(2, f.status).bind(3, f.after_id).bind(4, f.limit);
  return read_rows(*stmt);
}

Result<std::vector<TaskRow>> list_open(Tx& tx) {
  auto stmt =
      tx.prepare(select_sql() + " WHERE status IN ('queued','running') ORDER BY created_at, id");
  if (!stmt) return stmt.error();
  return read_rows(*stmt);
}

Status update(Tx& tx, const TaskRow& r) {
  auto stmt = tx.prepare(
      "UPDATE task SET status = ?2, exit_code = ?3, error_code = ?4, error_message = ?5, "
      "result = ?6, started_at = ?7, finished_at = ?8, cancel_requested_at = ?9, "
      "last_event_id = ?10, events_dropped = ?11 WHERE id = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, r.id).bind(2, r.status).bind(3, r.exit_code).bind(4, r.error_code);
  stmt->bind(5, r.error_message).bind(6, r.result).bind(7, r.started_at).bind(8, r.finished_at);
  stmt->bind(9, r.cancel_requested_at).bind(10, r.last_event_id).bind(11, r.events_dropped);
  if (Status st = stmt->run(); !st) return st;
  if (tx.changes() == 0) return Error{Errc::not_found, "no such task " + r.id};
  return ok();
}

Status insert_events(Tx& tx, std::string_view task_id, std::span<const TaskEventRow> events) {
  if (events.empty()) return ok();
  auto stmt = tx.prepare(
      "INSERT OR IGNORE INTO task_event (task_id, id, type, ts, data) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!stmt) return stmt.error();
  for (const auto& e : events) {
    stmt->reset();
    stmt->bind(1, task_id).bind(2, e.id).bind(3, e.type).bind(4, e.ts).bind(5, e.data);
    if (Status st = stmt->run(); !st) return st;
  }
  return ok();
}

Result<std::vector<TaskEventRow>> events_after(Tx& tx, std::string_view task_id,
                                               std::int64_t after_id, int limit) {
  auto stmt = tx.prepare(
      "SELECT id, type, ts, data FROM task_event WHERE task_id = ?1 AND id > ?2 "
      "ORDER BY id LIMIT ?3");
  if (!stmt) return stmt.error();
  stmt->bind(1, task_id).bind(2, after_id).bind(3, limit);
  return read_events(*stmt);
}

Result<std::vector<TaskEventRow>> events_of_type(Tx& tx, std::string_view task_id,
                                                 std::string_view type) {
  auto stmt = tx.prepare(
      "SELECT id, type, ts, data FROM task_event WHERE task_id = ?1 AND type = ?2 ORDER BY id");
  if (!stmt) return stmt.error();
  stmt->bind(1, task_id).bind(2, type);
  return read_events(*stmt);
}

Result<std::int64_t> event_bytes(Tx& tx, std::string_view task_id) {
  auto stmt =
      tx.prepare("SELECT coalesce(sum(length(data)), 0) FROM task_event WHERE task_id = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, task_id);
  auto has = stmt->step();
  if (!has) return has.error();
  return *has ? stmt->column_int64(0) : 0;
}

Result<std::int64_t> delete_expired_events(Tx& tx, std::int64_t cutoff_ms, int batch) {
  auto stmt = tx.prepare(
      "DELETE FROM task_event WHERE (task_id, id) IN "
      "(SELECT e.task_id, e.id FROM task_event e JOIN task t ON t.id = e.task_id "
      " WHERE t.finished_at < ?1 AND e.type != 'done' LIMIT ?2)");
  if (!stmt) return stmt.error();
  stmt->bind(1, cutoff_ms).bind(2, batch);
  if (Status st = stmt->run(); !st) return st.error();
  return tx.changes();
}

Result<TaskRow> get(Store& store, std::string_view id) {
  return store.read_value<TaskRow>([&](Tx& tx) { return get(tx, id); });
}

Result<std::vector<TaskRow>> list(Store& store, std::string_view sandbox_id,
                                  const TaskFilter& filter) {
  return store.read_value<std::vector<TaskRow>>(
      [&](Tx& tx) { return list(tx, sandbox_id, filter); });
}

Result<std::vector<TaskRow>> list_open(Store& store) {
  return store.read_value<std::vector<TaskRow>>([&](Tx& tx) { return list_open(tx); });
}

Result<std::vector<TaskEventRow>> events_after(Store& store, std::string_view task_id,
                                               std::int64_t after_id, int limit) {
  return store.read_value<std::vector<TaskEventRow>>(
      [&](Tx& tx) { return events_after(tx, task_id, after_id, limit); });
}

Result<std::vector<TaskEventRow>> events_of_type(Store& store, std::string_view task_id,
                                                 std::string_view type) {
  return store.read_value<std::vector<TaskEventRow>>(
      [&](Tx& tx) { return events_of_type(tx, task_id, type); });
}

Result<std::int64_t> event_bytes(Store& store, std::string_view task_id) {
  return store.read_value<std::int64_t>([&](Tx& tx) { return event_bytes(tx, task_id); });
}

}  // namespace sandboxd::store::task_repo
