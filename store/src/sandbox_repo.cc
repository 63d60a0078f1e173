#include "store/sandbox_repo.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace sandboxd::store::sandbox_repo {

namespace {

// Column order of `sandbox` as bound (?1..?35) and read (0..34). id is first, so updates
// can bind the same way and use ?1 in WHERE.
constexpr std::array<std::string_view, 35> kColumns = {
    "id",
    "status",
    "node",
    "image",
    "env",
    "visibility",
    "idle_policy",
    "template",
    "git_remote_url",
    "dev_command",
    "dev_port",
    "memory_bytes",
    "cpus_milli",
    "pids",
    "keepalive_until",
    "last_active_at",
    "created_at",
    "updated_at",
    "started_at",
    "stopped_at",
    "stop_reason",
    "exit_code",
    "oom_killed",
    "container_id",
    "container_ip",
    "container_missing",
    "fresh_workspace",
    "error_reason",
    "error_message",
    "external_user_id",
    "external_project_id",
    "external_workspace_id",
    "runtimed_secret_gen",
    "runtimed_secret_hash",
    "spec_version",
};

std::string insert_sql() {
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
  return "INSERT INTO sandbox (" + cols + ") VALUES (" + params + ")";
}

std::string update_sql() {
  std::string sets;
  for (std::size_t i = 1; i < kColumns.size(); ++i) {
    if (kColumns[i] == "created_at") continue;
    if (!sets.empty()) sets += ", ";
    sets += std::string(kColumns[i]) + " = ?" + std::to_string(i + 1);
  }
  return "UPDATE sandbox SET " + sets + " WHERE id = ?1";
}

// The ports come from the same statement as their row (§8: never a query per row). SQLite
// 3.40 has no ORDER BY inside an aggregate, so each element carries its position and the
// order is restored while parsing.
std::string select_sql() {
  std::string sql = "SELECT ";
  for (auto col : kColumns) {
    sql += "s.";
    sql += col;
    sql += ", ";
  }
  sql +=
      "(SELECT json_group_array(json_array(p.position, p.port)) FROM sandbox_port p"
      " WHERE p.sandbox_id = s.id) FROM sandbox s";
  return sql;
}

void bind_row(Stmt& stmt, const SandboxRow& r) {
  stmt.bind(1, r.id).bind(2, r.status).bind(3, r.node).bind(4, r.image).bind(5, r.env);
  stmt.bind(6, r.visibility).bind(7, r.idle_policy).bind(8, r.template_name);
  stmt.bind(9, r.git_remote_url).bind(10, r.dev_command).bind(11, r.dev_port);
  stmt.bind(12, r.memory_bytes).bind(13, r.cpus_milli).bind(14, r.pids);
  stmt.bind(15, r.keepalive_until).bind(16, r.last_active_at).bind(17, r.created_at);
  stmt.bind(18, r.updated_at).bind(19, r.started_at).bind(20, r.stopped_at);
  stmt.bind(21, r.stop_reason).bind(22, r.exit_code).bind(23, r.oom_killed);
  stmt.bind(24, r.container_id).bind(25, r.container_ip).bind(26, r.container_missing);
  stmt.bind(27, r.fresh_workspace).bind(28, r.error_reason).bind(29, r.error_message);
  stmt.bind(30, r.external_user_id).bind(31, r.external_project_id);
  stmt.bind(32, r.external_workspace_id).bind(33, r.runtimed_secret_gen);
  stmt.bind(34, r.runtimed_secret_hash).bind(35, r.spec_version);
}

// Parses "[[position,port],...]" as built by select_sql().
Result<std::vector<int>> parse_ports(std::string_view json) {
  std::vector<std::int64_t> numbers;
  std::size_t i = 0;
  while (i < json.size()) {
    const char c = json[i];
    if (c >= '0' && c <= '9') {
      std::int64_t n = 0;
      while (i < json.size() && json[i] >= '0' && json[i] <= '9' && n < (std::int64_t{1} << 40)) {
        n = n * 10 + (json[i] - '0');
        ++i;
      }
      numbers.push_back(n);
    } else if (c == '[' || c == ']' || c == ',' || c == ' ') {
      ++i;
    } else {
      return Error{Errc::corrupt, "unexpected ports encoding from the database"};
    }
  }
  if (numbers.size() % 2 != 0) return Error{Errc::corrupt, "unexpected ports encoding"};
  std::vector<std::pair<std::int64_t, int>> by_position;
  for (std::size_t k = 0; k < numbers.size(); k += 2) {
    by_position.emplace_back(numbers[k], static_cast<int>(numbers[k + 1]));
  }
  std::sort(by_position.begin(), by_position.end());
  std::vector<int> ports;
  ports.reserve(by_position.size());
  for (const auto& [position, port] : by_position) ports.push_back(port);
  return ports;
}

Result<SandboxRow> read_row(const Stmt& s) {
  SandboxRow r;
  r.id = s.column_text(0);
  r.status = s.column_text(1);
  r.node = s.column_text(2);
  r.image = s.column_text(3);
  r.env = s.column_text(4);
  r.visibility = s.column_text(5);
  r.idle_policy = s.column_text(6);
  r.template_name = s.column_opt_text(7);
  r.git_remote_url = s.column_opt_text(8);
  r.dev_command = s.column_opt_text(9);
  r.dev_port = s.column_opt_int64(10);
  r.memory_bytes = s.column_opt_int64(11);
  r.cpus_milli = s.column_opt_int64(12);
  r.pids = s.column_opt_int64(13);
  r.keepalive_until = s.column_opt_int64(14);
  r.last_active_at = s.column_int64(15);
  r.created_at = s.column_int64(16);
  r.updated_at = s.column_int64(17);
  r.started_at = s.column_opt_int64(18);
  r.stopped_at = s.column_opt_int64(19);
  r.stop_reason = s.column_opt_text(20);
  r.exit_code = s.column_opt_int64(21);
  r.oom_killed = s.column_int64(22) != 0;
  r.container_id = s.column_opt_text(23);
  r.container_ip = s.column_opt_text(24);
  r.container_missing = s.column_int64(25) != 0;
  r.fresh_workspace = s.column_int64(26) != 0;
  r.error_reason = s.column_opt_text(27);
  r.error_message = s.column_opt_text(28);
  r.external_user_id = s.column_opt_text(29);
  r.external_project_id = s.column_opt_text(30);
  r.external_workspace_id = s.column_opt_text(31);
  r.runtimed_secret_gen = s.column_int64(32);
  r.runtimed_secret_hash = s.column_opt_text(33);
  r.spec_version = s.column_int64(34);
  auto ports = parse_ports(s.column_text(35));
  if (!ports) return ports.error();
  r.ports = std::move(*ports);
  return r;
}

Status insert_ports(Tx& tx, std::string_view id, const std::vector<int>& ports) {
  if (ports.empty()) return ok();
  auto stmt =
      tx.prepare("INSERT INTO sandbox_port (sandbox_id, port, position) VALUES (?1, ?2, ?3)");
  if (!stmt) return stmt.error();
  for (std::size_t i = 0; i < ports.size(); ++i) {
    stmt->reset();
    stmt->bind(1, id).bind(2, ports[i]).bind(3, i);
    if (Status st = stmt->run(); !st) return st;
  }
  return ok();
}

Status replace_ports(Tx& tx, std::string_view id, const std::vector<int>& ports) {
  auto del = tx.prepare("DELETE FROM sandbox_port WHERE sandbox_id = ?1");
  if (!del) return del.error();
  del->bind(1, id);
  if (Status st = del->run(); !st) return st;
  return insert_ports(tx, id, ports);
}

Error no_such_sandbox(std::string_view id) {
  return Error{Errc::not_found, "no sandbox " + std::string(id)};
}

}  // namespace

Status insert(Tx& tx, const SandboxRow& row) {
  SandboxRow r = row;
  // 0 means "now" for the creation times, so callers need not read the clock themselves.
  if (r.created_at == 0) r.created_at = tx.now_ms();
  if (r.updated_at == 0) r.updated_at = r.created_at;
  if (r.last_active_at == 0) r.last_active_at = r.created_at;
  static const std::string sql = insert_sql();
  auto stmt = tx.prepare(sql);
  if (!stmt) return stmt.error();
  bind_row(*stmt, r);
  if (Status st = stmt->run(); !st) {
    if (st.error().code == Errc::conflict &&
        st.error().detail.find("UNIQUE constraint failed: sandbox.id") != std::string::npos) {
      return Error{Errc::conflict, "sandbox id " + r.id + " is taken"};
    }
    return st;
  }
  return insert_ports(tx, r.id, r.ports);
}

Result<SandboxRow> get(Tx& tx, std::string_view id) {
  static const std::string sql = select_sql() + " WHERE s.id = ?1";
  auto stmt = tx.prepare(sql);
  if (!stmt) return stmt.error();
  stmt->bind(1, id);
  auto row = stmt->step();
  if (!row) return row.error();
  if (!*row) return no_such_sandbox(id);
  return read_row(*stmt);
}

Result<std::vector<SandboxRow>> list(Tx& tx, const SandboxFilter& filter) {
  // Only the filters given appear in the SQL, so SQLite can pick the matching index.
  std::string sql = select_sql();
  std::vector<std::pair<const char*, const std::string*>> where;
  if (filter.status) where.emplace_back("s.status", &*filter.status);
  if (filter.external_user_id) where.emplace_back("s.external_user_id", &*filter.external_user_id);
  if (filter.external_project_id) {
    where.emplace_back("s.external_project_id", &*filter.external_project_id);
  }
  for (std::size_t i = 0; i < where.size(); ++i) {
    sql += i == 0 ? " WHERE " : " AND ";
    sql += where[i].first;
    sql += " = ?" + std::to_string(i + 1);
  }
  sql += " ORDER BY s.created_at DESC, s.id DESC";
  auto stmt = tx.prepare(sql);
  if (!stmt) return stmt.error();
  for (std::size_t i = 0; i < where.size(); ++i)
    stmt->bind(static_cast<int>(i + 1), *where[i].second);
  std::vector<SandboxRow> rows;
  while (true) {
    auto has = stmt->step();
    if (!has) return has.error();
    if (!*has) break;
    auto row = read_row(*stmt);
    if (!row) return row.error();
    rows.push_back(std::move(*row));
  }
  return rows;
}

Status update(Tx& tx, const SandboxRow& row) {
  SandboxRow r = row;
  r.updated_at = tx.now_ms();
  static const std::string sql = update_sql();
  auto stmt = tx.prepare(sql);
  if (!stmt) return stmt.error();
  bind_row(*stmt, r);
  if (Status st = stmt->run(); !st) return st;
  if (tx.changes() == 0) return no_such_sandbox(r.id);
  return replace_ports(tx, r.id, r.ports);
}

Status update_status(Tx& tx, std::string_view id, const StatusChange& change) {
  std::string sql =
      "UPDATE sandbox SET status = ?2, error_reason = ?3, error_message = ?4, updated_at = ?5 "
      "WHERE id = ?1";
  if (change.expect_status) sql += " AND status = ?6";
  auto stmt = tx.prepare(sql);
  if (!stmt) return stmt.error();
  stmt->bind(1, id).bind(2, change.status).bind(3, change.error_reason);
  stmt->bind(4, change.error_message).bind(5, tx.now_ms());
  if (change.expect_status) stmt->bind(6, *change.expect_status);
  if (Status st = stmt->run(); !st) return st;
  if (tx.changes() > 0) return ok();
  if (!change.expect_status) return no_such_sandbox(id);
  auto current = get(tx, id);
  if (!current) return current.error();
  return Error{Errc::conflict, "sandbox " + std::string(id) + " is " + current->status + ", not " +
                                   *change.expect_status};
}

Status update_container(Tx& tx, std::string_view id, const std::optional<std::string>& container_id,
                        const std::optional<std::string>& container_ip) {
  auto stmt = tx.prepare(
      "UPDATE sandbox SET container_id = ?2, container_ip = ?3, updated_at = ?4 WHERE id = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, id).bind(2, container_id).bind(3, container_ip).bind(4, tx.now_ms());
  if (Status st = stmt->run(); !st) return st;
  if (tx.changes() == 0) return no_such_sandbox(id);
  return ok();
}

Status set_runtimed_secret(Tx& tx, std::string_view id, std::int64_t generation,
                           std::string_view secret_hash) {
  auto stmt = tx.prepare(
      "UPDATE sandbox SET runtimed_secret_gen = ?2, runtimed_secret_hash = ?3 WHERE id = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, id).bind(2, generation).bind(3, secret_hash);
  if (Status st = stmt->run(); !st) return st;
  if (tx.changes() == 0) return no_such_sandbox(id);
  return ok();
}

Status set_ports(Tx& tx, std::string_view id, const std::vector<int>& ports) {
  auto stmt = tx.prepare("UPDATE sandbox SET updated_at = ?2 WHERE id = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, id).bind(2, tx.now_ms());
  if (Status st = stmt->run(); !st) return st;
  if (tx.changes() == 0) return no_such_sandbox(id);
  return replace_ports(tx, id, ports);
}

Status remove(Tx& tx, std::string_view id) {
  auto stmt = tx.prepare("DELETE FROM sandbox WHERE id = ?1");  // ports, tasks cascade
  if (!stmt) return stmt.error();
  stmt->bind(1, id);
  if (Status st = stmt->run(); !st) return st;
  if (tx.changes() == 0) return no_such_sandbox(id);
  return ok();
}

Status purge(Tx& tx, std::string_view id) {
  for (const char* sql : {"DELETE FROM task WHERE sandbox_id = ?1",  // task_event cascades
                          "DELETE FROM sandbox_port WHERE sandbox_id = ?1"}) {
    auto stmt = tx.prepare(sql);
    if (!stmt) return stmt.error();
    stmt->bind(1, id);
    if (Status st = stmt->run(); !st) return st;
  }
  auto stmt = tx.prepare(
      "UPDATE sandbox SET status = 'purged', env = '{}', template = NULL, git_remote_url = NULL, "
      "dev_command = NULL, dev_port = NULL, memory_bytes = NULL, cpus_milli = NULL, pids = NULL, "
      "keepalive_until = NULL, stop_reason = 'purge', container_id = NULL, container_ip = NULL, "
      "container_missing = 0, fresh_workspace = 0, error_reason = NULL, error_message = NULL, "
      "external_user_id = NULL, external_project_id = NULL, external_workspace_id = NULL, "
      "runtimed_secret_hash = NULL, updated_at = ?2 WHERE id = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, id).bind(2, tx.now_ms());
  if (Status st = stmt->run(); !st) return st;
  if (tx.changes() == 0) return no_such_sandbox(id);
  return ok();
}

Status touch_activity(Tx& tx, std::span<const ActivityMark> marks) {
  if (marks.empty()) return ok();
  auto stmt =
      tx.prepare("UPDATE sandbox SET last_active_at = max(last_active_at, ?1) WHERE id = ?2");
  if (!stmt) return stmt.error();
  for (const auto& mark : marks) {
    stmt->reset();
    stmt->bind(1, mark.last_active_at).bind(2, mark.id);
    if (Status st = stmt->run(); !st) return st;
  }
  return ok();
}

Result<std::int64_t> bump_running_activity(Tx& tx, std::int64_t boot_ms) {
  auto stmt = tx.prepare(
      "UPDATE sandbox SET last_active_at = ?1 WHERE status = 'running' AND last_active_at < ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, boot_ms);
  if (Status st = stmt->run(); !st) return st.error();
  return tx.changes();
}

Result<SandboxRow> get(Store& store, std::string_view id) {
  return store.read_value<SandboxRow>([&](Tx& tx) { return get(tx, id); });
}

Result<std::vector<SandboxRow>> list(Store& store, const SandboxFilter& filter) {
  return store.read_value<std::vector<SandboxRow>>([&](Tx& tx) { return list(tx, filter); });
}

}  // namespace sandboxd::store::sandbox_repo
