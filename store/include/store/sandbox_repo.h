// Typed access to the `sandbox` and `sandbox_port` tables (SPEC §8).
//
// `SandboxRow` mirrors every column of `sandbox`, plus the ports in declaration order. The
// functions taking `Tx&` compose: call several inside one write job to change them in one
// transaction (e.g. a status change and its audit row). The `Store&` overloads are blocking
// conveniences for a single read. Rows are never deleted here: destroyed and purged
// sandboxes stay as tombstones. Times are unix ms; updates take them from `Tx::now_ms()`.
// Plain data; no SQL leaves store/.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/store.h"
#include "store/tx.h"

namespace sandboxd::store {

struct SandboxRow {
  std::string id{};      // canonical upper-case ULID
  std::string status{};  // creating|running|stopping|stopped|waking|error|destroyed|purged
  std::string node = "local";
  std::string image{};
  std::string env = "{}";                      // a JSON object
  std::string visibility = "public";           // public|private
  std::string idle_policy = "sleep";           // sleep|always_on
  std::optional<std::string> template_name{};  // column `template`
  std::optional<std::string> git_remote_url{};
  std::optional<std::string> dev_command{};
  std::optional<std::int64_t> dev_port{};
  std::optional<std::int64_t> memory_bytes{};
  std::optional<std::int64_t> cpus_milli{};
  std::optional<std::int64_t> pids{};
  std::optional<std::int64_t> keepalive_until{};
  std::int64_t last_active_at = 0;
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  std::optional<std::int64_t> started_at{};
  std::optional<std::int64_t> stopped_at{};
  std::optional<std::string> stop_reason{};
  std::optional<std::int64_t> exit_code{};
  bool oom_killed = false;
  std::optional<std::string> container_id{};
  std::optional<std::string> container_ip{};
  bool container_missing = false;
  bool fresh_workspace = false;
  std::optional<std::string> error_reason{};
  std::optional<std::string> error_message{};
  std::optional<std::string> external_user_id{};
  std::optional<std::string> external_project_id{};
  std::optional<std::string> external_workspace_id{};
  std::int64_t runtimed_secret_gen = 0;
  std::optional<std::string> runtimed_secret_hash{};
  std::int64_t spec_version = 1;
  std::vector<int> ports{};  // sandbox_port in `position` order; [0] is the primary

  friend bool operator==(const SandboxRow&, const SandboxRow&) = default;
};

// Exact-match filters; unset fields match everything.
struct SandboxFilter {
  std::optional<std::string> status{};
  std::optional<std::string> external_user_id{};
  std::optional<std::string> external_project_id{};
};

struct StatusChange {
  std::string status{};
  // Stored as given: unset clears error_reason / error_message.
  std::optional<std::string> error_reason{};
  std::optional<std::string> error_message{};
  // Compare-and-set: when set, the change applies only if the row has this status
  // (otherwise Errc::conflict).
  std::optional<std::string> expect_status{};
};

struct ActivityMark {
  std::string id{};
  std::int64_t last_active_at = 0;  // unix ms
};

namespace sandbox_repo {

// Inserts the row and its ports. A taken id is Errc::conflict.
Status insert(Tx& tx, const SandboxRow& row);
// Errc::not_found when absent.
Result<SandboxRow> get(Tx& tx, std::string_view id);
// Newest created_at first.
Result<std::vector<SandboxRow>> list(Tx& tx, const SandboxFilter& filter = {});
// Rewrites every column but id and created_at, and the ports; sets updated_at = now.
Status update(Tx& tx, const SandboxRow& row);
// Sets status, error_reason, error_message and updated_at = now.
Status update_status(Tx& tx, std::string_view id, const StatusChange& change);
// Sets container_id, container_ip (unset = NULL) and updated_at = now.
Status update_container(Tx& tx, std::string_view id, const std::optional<std::string>& container_id,
                        const std::optional<std::string>& container_ip);
// Records the runtimed secret issued for the next container start (SPEC §6.2): its
// generation and the hex SHA-256 of the secret. updated_at is untouched.
Status set_runtimed_secret(Tx& tx, std::string_view id, std::int64_t generation,
                           std::string_view secret_hash);
// Replaces the ports (declaration order kept) and sets updated_at = now.
Status set_ports(Tx& tx, std::string_view id, const std::vector<int>& ports);
// Deletes the row with its ports, tasks and task events: only for a create that is rolled
// back before anyone could see the sandbox. Errc::not_found when absent.
Status remove(Tx& tx, std::string_view id);
// Turns the row into a purged tombstone (SPEC §5.5, §8): the owner, env, spec overrides,
// container, ports, tasks and their events are deleted; id, times and status remain.
Status purge(Tx& tx, std::string_view id);
// The activity flush: last_active_at only moves forward; updated_at is untouched; unknown
// ids are ignored.
Status touch_activity(Tx& tx, std::span<const ActivityMark> marks);
// After a crash: running sandboxes get last_active_at = max(last_active_at, boot_ms), so
// activity lost with the process never causes an early stop. Returns the rows changed.
Result<std::int64_t> bump_running_activity(Tx& tx, std::int64_t boot_ms);

Result<SandboxRow> get(Store& store, std::string_view id);
Result<std::vector<SandboxRow>> list(Store& store, const SandboxFilter& filter = {});

}  // namespace sandbox_repo
}  // namespace sandboxd::store
