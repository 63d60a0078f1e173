// The sandbox service: the state machine of SPEC §5 over the store (the truth) and Docker
// (derived state). Every state-changing operation on one id runs under that id's lock, in
// arrival order (SPEC §5.11); reads never wait. Every transition is one store write.
//
// Threading: everything here runs on the control executor's single thread; Docker calls
// are coroutines on the same executor and store writes resume on it. Nothing blocks that
// thread except short SQLite reads on the read pool.
#pragma once

#include "admission.h"
#include "api_error.h"
#include "async_util.h"
#include "lifecycle_events.h"
#include "config/config.h"
#include "docker/client.h"
#include "requests.h"
#include "runtimed_link.h"
#include "store/audit_repo.h"
#include "store/sandbox_repo.h"
#include "store/store.h"
#include "workspace.h"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sandboxd::control {

// Who asked, for audit rows.
struct Actor {
  std::string name = "system";  // "token:<name>", "anonymous", "system"
  std::string ip;
  std::string request_id;
};

struct CreateOutcome {
  store::SandboxRow row;
  int status = 201;  // 200 existing (idempotent v1), 201 made, 202 accepted (wait=false)
};

struct ExecOutput {
  std::string exec_id;
  std::optional<int> exit_code;
  bool timed_out = false;
  std::int64_t duration_ms = 0;
};

// What the edge's Waker learns from one start and tells it (SPEC §3.6 step 3, §11 phases).
struct WakeTrace {
  // Out: time spent in admission (the slot queue and the memory check).
  std::chrono::steady_clock::duration admission{};
  // In: asked once admission is done. True: nobody waits for this wake any more (its
  // deadline passed while it queued), so the sandbox is not started; the answer is 504.
  std::function<bool()> abandoned;
};

struct PurgeOutcome {
  bool existed = false;
  std::uint64_t freed_bytes = 0;
};

class SandboxService {
 public:
  SandboxService(asio::any_io_executor executor, const config::Config& config,
                 store::Store& store, docker::Client& docker, WorkspaceRoot& workspaces,
                 std::string run_dir, const Clock& clock);

  // Boot: inspect or create docker.network (inter-container traffic off). A network with
  // inter-container traffic on is refused. Fills sandbox_subnets().
  asio::awaitable<Status> ensure_network();
  const std::vector<config::Cidr>& sandbox_subnets() const { return subnets_; }

  asio::awaitable<ApiResult<CreateOutcome>> create(CreateRequest request, bool v1, bool wait,
                                                   Actor actor);
  ApiResult<store::SandboxRow> get(const std::string& id) const;
  ApiResult<std::vector<store::SandboxRow>> list(const store::SandboxFilter& filter) const;

  // Start or wake (SPEC §5.5); a running sandbox is returned at once. Without `wait` the
  // wake goes on in the background and the row comes back in `waking`. A sandbox that must
  // start passes admission first (§4.6), outside its id's lock (so a creating or stopping
  // sandbox is waited for first, §3.6 step 3); a refusal leaves the state unchanged.
  // `trace`, when given, must outlive the call.
  asio::awaitable<ApiResult<store::SandboxRow>> start(const std::string& id, Actor actor,
                                                      bool wait = true, WakeTrace* trace = nullptr);
  // The row of a sandbox an exec may run in (SPEC §2.9): running, or woken now (admission
  // included); 404 unknown or purged, 409 destroyed or in error.
  asio::awaitable<ApiResult<store::SandboxRow>> runnable_row(const std::string& id,
                                                             const Actor& actor);
  // What the last reconciliation found without a row (SPEC §5.9): reported, never deleted.
  struct Orphans {
    std::size_t containers = 0;
    std::size_t workspaces = 0;
  };
  Orphans orphans() const { return orphans_; }
  // SPEC §4.1: API work that counts as activity (exec start and end, task start and end, a
  // file write) moves last_active_at to now.
  asio::awaitable<void> touch(const std::string& id);
  // SPEC §5.10: `start` of an always_on sandbox, only while it is still `stopped` with stop
  // reason `reason` (checked under the id's lock, again after admission). nullopt when it
  // no longer is (stopped through the API meanwhile, destroyed, policy changed, …).
  asio::awaitable<std::optional<ApiResult<store::SandboxRow>>> restart_always_on(
      const std::string& id, std::string reason);
  // Without `wait` the stop goes on in the background and the row comes back in `stopping`.
  asio::awaitable<ApiResult<store::SandboxRow>> stop(const std::string& id, StopRequest request,
                                                     std::string reason, Actor actor,
                                                     bool wait = true);
  // The reapers' stop (SPEC §4.4 steps 2-7): under the id's lock, reload the row and stop
  // it like `stop` (grace idle.stop_timeout) only if `still_idle` holds for the fresh row
  // (it may hand the route over to `stopping` first). The stop reason is `reason` (`idle`
  // or `pressure`); the `sandbox.stop` audit row has actor `system` and detail
  // `{"reason", "band"?}` (`band`: the pressure band's label). nullopt when the sandbox is
  // no longer idle (or is gone).
  using IdleCheck = std::function<asio::awaitable<bool>(const store::SandboxRow&)>;
  asio::awaitable<std::optional<ApiResult<store::SandboxRow>>> stop_if_idle(
      const std::string& id, IdleCheck still_idle, std::string reason, std::string band);
  // Ids with an attached exec in flight, or busy by the busy source (open tasks): the
  // control-side busy signal of the idle reaper (SPEC §4.1).
  std::set<std::string> execs_in_flight() const;
  std::size_t execs_running() const;  // attached execs now, all sandboxes
  asio::awaitable<ApiResult<store::SandboxRow>> destroy(const std::string& id, Actor actor);
  asio::awaitable<ApiResult<PurgeOutcome>> purge(const std::string& id, Actor actor);
  // Replaces the owner record (SPEC §2.5.9, §5.7) in one transaction with its audit row
  // `sandbox.claim {prior_user_id, new_user_id}`. Every state but purged.
  asio::awaitable<ApiResult<store::SandboxRow>> claim(const std::string& id, ClaimRequest request,
                                                      Actor actor);
  // v1 PATCH (SPEC §2.6.4): the route changes are published at once through the change
  // hook; the container is not touched. 404 unknown or purged, 409 destroyed.
  asio::awaitable<ApiResult<store::SandboxRow>> patch(const std::string& id, PatchRequest request,
                                                      Actor actor);
  // until_ms: nullopt → now + idle.threshold; 0 → clear; else clamped to keepalive_max.
  asio::awaitable<ApiResult<store::SandboxRow>> keepalive(const std::string& id,
                                                          std::optional<std::int64_t> until_ms,
                                                          Actor actor);
  // Runs a command attached (output to `on_output`), waking the sandbox first.
  // `exec_id` is sandboxd's own ULID for the exec (SPEC §1.2), used in answers and logs.
  // When `cancel` fires first (the client left), the command's processes get SIGTERM, then
  // SIGKILL 5 s later, and the answer is an error nobody reads.
  asio::awaitable<ApiResult<ExecOutput>> exec(const std::string& id, const ExecRequest& request,
                                              const std::string& exec_id,
                                              docker::OutputFn on_output, Actor actor,
                                              std::shared_ptr<OneShot> cancel = nullptr);
  // Starts a command detached; returns its exec id (a new ULID).
  asio::awaitable<ApiResult<std::string>> exec_detached(const std::string& id,
                                                        const ExecRequest& request, Actor actor);

  // One audit row for an action that changes no sandbox row, e.g. `file.put` (SPEC §7).
  asio::awaitable<Status> record_audit(const Actor& actor, std::string action,
                                       const std::string& id, std::string detail);

  // Docker's view of the sandbox's container (legacy GET's live_state, SPEC §2.5.3);
  // nullopt when it has no container or the inspect fails.
  asio::awaitable<std::optional<docker::ContainerInfo>> inspect_container(
      const store::SandboxRow& row);
  // The container's own output (SPEC §2.6.9) to options.on_output until Docker's answer
  // ends (with follow: the container stopped) or `cancel` fires. A sandbox without a
  // container, or one Docker no longer knows, has no output: success, nothing delivered.
  asio::awaitable<ApiResult<void>> container_logs(const store::SandboxRow& row,
                                                  docker::LogsOptions options,
                                                  std::shared_ptr<OneShot> cancel);

  // The reconciler (SPEC §5.9): converge every row with Docker.
  asio::awaitable<Status> reconcile_all();
  // One Docker event of this instance's containers.
  asio::awaitable<void> on_event(const docker::Event& event);

  const std::string& instance_id() const { return instance_id_; }

  // Called on the control thread after every committed change of a sandbox row (the
  // route table is derived from the rows, SPEC §5.2).
  void set_on_change(std::function<void()> fn) { on_change_ = std::move(fn); }
  // Where every transition of §5.2 is announced (GET /v1/events), after its store write.
  void set_events(LifecycleEvents& events) { events_ = &events; }
  // Runs before a running sandbox's container is stopped (the edge ends its tunnels, §3.9).
  using BeforeStop = std::function<asio::awaitable<void>(const std::string& id)>;
  void set_before_container_stop(BeforeStop fn) { before_stop_ = std::move(fn); }

  // With a link, every container start (create, start, wake, re-create) is preceded by a new
  // runtimed secret: its generation and hash are stored, then runtimed.json is delivered
  // into the run directory (SPEC §6.2). The link must outlive the service.
  void set_runtimed(const RuntimedLink& link) { runtimed_ = &link; }
  // Called on the control thread after a container start was recorded (`running`).
  void set_on_container_started(std::function<void(const std::string& id)> fn) {
    on_started_ = std::move(fn);
  }
  // Called on the control thread once a container's exit that sandboxd did not cause (a
  // `die`, or its removal behind sandboxd's back) was recorded: `stopped`, reason `exited`.
  void set_on_exit(std::function<void(const store::SandboxRow&)> fn) { on_exit_ = std::move(fn); }
  // Creates and starts pass `admission` first (SPEC §4.6); it must outlive the service.
  // Without it nothing is judged.
  void set_admission(Admission& admission) { admission_ = &admission; }
  // More busy sandboxes for execs_in_flight() (sandboxes with a running task).
  void set_busy_source(std::function<std::set<std::string>()> fn) { busy_source_ = std::move(fn); }

 private:
  struct Failure {
    ApiError answer;
    std::string reason;  // SPEC §5.1 error reason: create_failed, start_failed, ...
  };

  std::optional<store::SandboxRow> load(const std::string& id) const;
  // A store write that changes sandbox rows; runs on_change_ once it committed.
  asio::awaitable<Status> write_state(store::WriteJob job);
  asio::awaitable<Status> save(const store::SandboxRow& row, const store::AuditRow* audit = nullptr);
  // A sandbox.state event when `row` left `from` ("" = it did not exist).
  void announce(std::string_view from, const store::SandboxRow& row);
  store::SandboxRow new_row(const CreateRequest& request, const std::string& id) const;
  docker::ContainerSpec container_spec(const store::SandboxRow& row) const;
  std::vector<std::string> container_env(const store::SandboxRow& row) const;

  // Create steps 7-11 of SPEC §5.3 on a row in `creating`; leaves it `running`.
  asio::awaitable<std::optional<Failure>> provision(store::SandboxRow& row, bool* made_container);
  asio::awaitable<std::optional<Failure>> fill_workspace(const store::SandboxRow& row);
  // Creates the container from the stored spec (removing a stale one of ours first).
  asio::awaitable<std::optional<Failure>> create_container(store::SandboxRow& row);
  // Starts the container and records running with its address.
  asio::awaitable<std::optional<Failure>> start_container(store::SandboxRow& row);
  // A new runtimed secret for the next start: generation + 1 and its hash stored, then
  // runtimed.json written (SPEC §6.2).
  asio::awaitable<std::optional<Failure>> issue_runtimed_secret(store::SandboxRow& row);
  asio::awaitable<ApiResult<store::SandboxRow>> wake_locked(store::SandboxRow row, const Actor& actor);
  // wake_locked in two halves: store `waking`, then bring the container up.
  asio::awaitable<Status> mark_waking(store::SandboxRow& row, const Actor& actor);
  asio::awaitable<ApiResult<store::SandboxRow>> finish_wake(store::SandboxRow row);
  // SPEC §5.2, §5.5: destroy and purge stop a running sandbox first — `stopping` (stored,
  // routes hold), its tunnels end with 1001, Docker stop with the grace — then remove it.
  asio::awaitable<void> stop_before_removal(store::SandboxRow& row, std::string reason);
  // Runs the cancel script in the container: SIGTERM, then SIGKILL 5 s later, to every
  // process of exec `exec_id`. True when Docker started it.
  asio::awaitable<bool> end_exec(std::string container_id, std::string user, std::string exec_id);
  asio::awaitable<void> end_exec_after(std::string container_id, std::string user,
                                       std::string exec_id, std::chrono::milliseconds after);
  // `start`, but a row for which `wanted` (when given) is false is returned as it is.
  using RowCheck = std::function<bool(const store::SandboxRow&)>;
  asio::awaitable<ApiResult<store::SandboxRow>> start_if(const std::string& id, Actor actor,
                                                         bool wait, WakeTrace* trace,
                                                         const RowCheck* wanted);
  // The background halves of start and stop without wait; they hold the id's lock.
  asio::awaitable<void> finish_wake_detached(IdLocks::Guard guard, store::SandboxRow row,
                                             std::optional<Admission::Ticket> ticket);
  asio::awaitable<void> finish_stop_detached(IdLocks::Guard guard, store::SandboxRow row,
                                             std::chrono::seconds grace, std::string reason);
  asio::awaitable<ApiResult<store::SandboxRow>> stop_locked(store::SandboxRow row,
                                                            std::chrono::seconds grace,
                                                            std::string reason);
  asio::awaitable<std::optional<Failure>> remove_container(store::SandboxRow& row);
  asio::awaitable<void> finish_async_create(IdLocks::Guard guard, store::SandboxRow row,
                                            std::optional<Admission::Ticket> ticket);
  asio::awaitable<void> reconcile_row(const std::string& id,
                                      const std::optional<docker::ContainerSummary>& container);
  Status ensure_run_dir(const std::string& id) const;
  void remove_run_dir(const std::string& id) const;
  store::AuditRow audit(const Actor& actor, std::string action, const std::string& id,
                        std::string detail = "{}") const;

  asio::any_io_executor executor_;
  const config::Config& config_;
  store::Store& store_;
  docker::Client& docker_;
  WorkspaceRoot& workspaces_;
  std::string run_dir_;
  const Clock& clock_;
  std::string instance_id_;
  IdLocks locks_;
  std::vector<config::Cidr> subnets_;
  std::map<std::string, bool> oom_seen_;  // container id → an oom event preceded its die
  std::function<void()> on_change_;
  LifecycleEvents* events_ = nullptr;
  Orphans orphans_;
  std::function<void(const store::SandboxRow&)> on_exit_;
  BeforeStop before_stop_;
  const RuntimedLink* runtimed_ = nullptr;
  std::function<void(const std::string&)> on_started_;
  std::function<std::set<std::string>()> busy_source_;
  Admission* admission_ = nullptr;
  std::map<std::string, std::string> skeletons_;  // image id → tar of /opt/sandbox-skel
  std::set<std::string> probes_in_use_;
  // id → attached execs running; held weakly by exec frames that may outlive the service.
  std::shared_ptr<std::map<std::string, int>> execs_ = std::make_shared<std::map<std::string, int>>();   // skeleton probe containers a create is reading
};

}  // namespace sandboxd::control
