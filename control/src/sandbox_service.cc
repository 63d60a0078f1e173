#include "sandbox_service.h"

#include "base/json.h"
#include "base/log.h"
#include "base/ulid.h"
#include "config/values.h"
#include "objects.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cerrno>
#include <cstring>
#include <set>

extern char** environ;

namespace sandboxd::control {

namespace json = boost::json;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

constexpr log::Logger kLog{"control"};
constexpr std::string_view kSkeletonPath = "/opt/sandbox-skel";
constexpr std::string_view kMount = "/home/sandbox";

bool is_live(std::string_view s) {
  return s == "creating" || s == "running" || s == "stopping" || s == "stopped" || s == "waking";
}

std::string json_detail(std::initializer_list<std::pair<std::string_view, std::string>> kv) {
  json::object o;
  for (const auto& [k, v] : kv) o[k] = v;
  return json::serialize(o);
}

ApiError docker_answer(const Error& e) {
  if (e.code == Errc::unavailable) return ApiError::unavailable("docker is unreachable: " + e.detail);
  if (e.code == Errc::timeout) return ApiError::timeout("docker did not answer in time: " + e.detail);
  if (e.code == Errc::conflict) return ApiError::conflict(e.detail);
  return ApiError::internal(e.detail);
}


bool glob_match(const std::vector<std::string>& patterns, const std::string& name) {
  for (const auto& p : patterns) {
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

// Removes a directory tree under `parent_fd` without following symlinks. The run directory
// is small (runtimed's socket and files), so a bounded depth is enough.
void remove_tree_at(int parent_fd, const char* name, int depth) {
  if (depth > 32) return;
  int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    unlinkat(parent_fd, name, 0);
    return;
  }
  DIR* dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return;
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  for (const auto& n : names) {
    if (unlinkat(dirfd(dir), n.c_str(), 0) != 0 && (errno == EISDIR || errno == EPERM)) {
      remove_tree_at(dirfd(dir), n.c_str(), depth + 1);
    }
  }
  closedir(dir);
  unlinkat(parent_fd, name, AT_REMOVEDIR);
}

}  // namespace

SandboxService::SandboxService(asio::any_io_executor executor, const config::Config& config,
                               store::Store& store, docker::Client& docker,
                               WorkspaceRoot& workspaces, std::string run_dir, const Clock& clock)
    : executor_(std::move(executor)),
      config_(config),
      store_(store),
      docker_(docker),
      workspaces_(workspaces),
      run_dir_(std::move(run_dir)),
      clock_(clock),
      instance_id_(store.instance_id().str()) {}

// ---------------------------------------------------------------------------- helpers

std::optional<store::SandboxRow> SandboxService::load(const std::string& id) const {
  auto row = store::sandbox_repo::get(store_, id);
  if (!row) return std::nullopt;
  return std::move(*row);
}

void SandboxService::announce(std::string_view from, const store::SandboxRow& row) {
  if (events_ == nullptr || from == row.status) return;
  events_->sandbox_state(row.id, row.external_user_id.value_or(""), from, row.status,
                         transition_reason(from, row));
}

asio::awaitable<Status> SandboxService::save(const store::SandboxRow& row,
                                             const store::AuditRow* audit) {
  const auto stored = load(row.id);
  const std::string from = stored ? stored->status : "";
  std::optional<store::AuditRow> audit_row;
  if (audit) audit_row = *audit;
  // Every write job is named before the co_await: g++ 12 destroys a temporary argument of
  // a co_await expression twice.
  store::WriteJob job = [row, audit_row](store::Tx& tx) -> Status {
    if (auto st = store::sandbox_repo::update(tx, row); !st) return st;
    if (audit_row) {
      if (auto a = store::audit_repo::append(tx, *audit_row); !a) return a.error();
    }
    return ok();
  };
  Status st = co_await write_state(std::move(job));
  if (st) announce(from, row);
  co_return st;
}

asio::awaitable<void> SandboxService::touch(const std::string& id) {
  store::ActivityMark mark{id, clock_.unix_ms()};
  store::WriteJob job = [mark](store::Tx& tx) {
    return store::sandbox_repo::touch_activity(tx, std::span(&mark, 1));
  };
  if (Status st = co_await store_write(store_, std::move(job)); !st) {
    kLog.warn("activity not recorded", {{"id", id}, {"error", st.error().message()}});
  }
}

asio::awaitable<Status> SandboxService::record_audit(const Actor& actor, std::string action,
                                                     const std::string& id, std::string detail) {
  store::AuditRow row = audit(actor, std::move(action), id, std::move(detail));
  store::WriteJob job = [row](store::Tx& tx) -> Status {
    if (auto a = store::audit_repo::append(tx, row); !a) return a.error();
    return ok();
  };
  co_return co_await store_write(store_, std::move(job));
}

asio::awaitable<Status> SandboxService::write_state(store::WriteJob job) {
  Status st = co_await store_write(store_, std::move(job));
  if (st && on_change_) on_change_();
  co_return st;
}

store::AuditRow SandboxService::audit(const Actor& actor, std::string action,
                                      const std::string& id, std::string detail) const {
  store::AuditRow a;
  a.actor = actor.name;
  if (!actor.ip.empty()) a.actor_ip = actor.ip;
  if (!actor.request_id.empty()) a.request_id = actor.request_id;
  a.action = std::move(action);
  a.sandbox_id = id;
  a.detail = std::move(detail);
  return a;
}

store::SandboxRow SandboxService::new_row(const CreateRequest& req, const std::string& id) const {
  store::SandboxRow row;
  std::int64_t now = clock_.unix_ms();
  row.id = id;
  row.status = "creating";
  row.image = config_.docker.image;
  json::object env;
  for (const auto& [k, v] : req.env) env[k] = v;
  row.env = json::serialize(env);
  row.visibility = std::string(to_string(req.visibility));
  row.idle_policy = std::string(to_string(req.idle_policy));
  row.template_name = req.template_name;
  row.git_remote_url = req.git_remote_url;
  row.dev_command = req.dev_command;
  if (req.dev_port) row.dev_port = *req.dev_port;
  if (req.memory_bytes) row.memory_bytes = static_cast<std::int64_t>(*req.memory_bytes);
  if (req.cpus_milli) row.cpus_milli = *req.cpus_milli;
  if (req.pids) row.pids = *req.pids;
  row.last_active_at = now;
  row.created_at = now;
  row.updated_at = now;
  row.external_user_id = req.user_id;
  row.external_project_id = req.project_id;
  row.external_workspace_id = req.workspace_id;
  for (auto p : req.ports) row.ports.push_back(p);
  return row;
}

std::vector<std::string> SandboxService::container_env(const store::SandboxRow& row) const {
  // SPEC §5.4: fixed names first; later sources never override them.
  std::string host = preview_host(row.id, 0, config_);
  host.replace(host.find("-0."), 3, "-{port}.");
  std::vector<std::pair<std::string, std::string>> fixed = {
      {"HOME", std::string(kMount)}, {"SANDBOX_ID", row.id}, {"SANDBOX_PREVIEW_HOST", host}};
  std::map<std::string, std::string> rest;
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    std::string name = entry.substr(0, eq);
    if (glob_match(config_.sandbox.env_passthrough, name) &&
        !glob_match(config_.sandbox.env_blocklist, name)) {
      rest[name] = entry.substr(eq + 1);
    }
  }
  for (const auto& [k, v] : config_.sandbox.env) rest[k] = v;
  if (auto env = parse_json_object(row.env)) {
    for (const auto& kv : *env) {
      if (kv.value().is_string()) rest[std::string(kv.key())] = std::string(kv.value().get_string());
    }
  }
  std::vector<std::string> out;
  std::set<std::string> fixed_names;
  for (const auto& [k, v] : fixed) {
    out.push_back(k + "=" + v);
    fixed_names.insert(k);
  }
  for (const auto& [k, v] : rest) {
    if (!fixed_names.contains(k)) out.push_back(k + "=" + v);
  }
  return out;
}

docker::ContainerSpec SandboxService::container_spec(const store::SandboxRow& row) const {
  const auto& sb = config_.sandbox;
  docker::ContainerSpec s;
  s.name = "s-" + row.id;
  s.image = row.image;
  s.hostname = "s-";
  for (char c : row.id) s.hostname += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  s.user = std::to_string(sb.user.uid) + ":" + std::to_string(sb.user.gid);
  s.env = container_env(row);
  s.working_dir = std::string(kMount) + "/workspace";
  s.labels = {{"sandboxd.managed", "true"}, {"sandboxd.id", row.id},
              {"sandboxd.instance", instance_id_}};
  s.stop_signal = "SIGTERM";
  s.stop_timeout = static_cast<int>(
      std::chrono::duration_cast<std::chrono::seconds>(config_.docker.stop_timeout).count());
  std::string data_dir = config_.data_dir;
  s.binds = {data_dir + "/workspaces/" + row.id + ":" + std::string(kMount) + ":rw",
             run_dir_ + "/" + row.id + ":/run/sandboxd:rw"};
  s.cap_drop = {"ALL"};
  s.security_opt = {"no-new-privileges"};
  s.readonly_rootfs = true;
  s.tmpfs = {{"/tmp", "rw,exec,nosuid,nodev,size=" + std::to_string(sb.tmpfs_size)}};
  auto memory = row.memory_bytes ? *row.memory_bytes : static_cast<std::int64_t>(sb.memory);
  s.memory_bytes = memory;
  s.memory_swap_bytes = memory;
  s.pids_limit = row.pids ? *row.pids : sb.pids;
  s.ulimits = {{"nofile", sb.nofile, sb.nofile}};
  double cpus = row.cpus_milli ? static_cast<double>(*row.cpus_milli) / 1000.0 : sb.cpus;
  s.nano_cpus = static_cast<std::int64_t>(cpus * 1e9);
  s.init = false;
  s.network_mode = config_.docker.network;
  s.endpoints[config_.docker.network] = docker::EndpointConfig{};
  s.runtime = config_.docker.runtime;
  s.restart_policy = docker::RestartPolicy{"no", 0};
  s.log_config = docker::LogConfig{"json-file", {{"max-size", "10m"}, {"max-file", "2"}}};
  return s;
}

Status SandboxService::ensure_run_dir(const std::string& id) const {
  std::string path = run_dir_ + "/" + id;
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error{Errc::io, "cannot create the run directory of " + id + ": " + std::strerror(errno)};
  }
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error{Errc::io, "run directory of " + id + " is not a directory"};
  const auto& u = config_.sandbox.user;
  int rc = fchown(fd, u.uid, u.gid);
  if (rc == 0) rc = fchmod(fd, 0700);
  int err = errno;
  close(fd);
  if (rc != 0) return Error{Errc::io, std::string("cannot prepare the run directory: ") + std::strerror(err)};
  return ok();
}

void SandboxService::remove_run_dir(const std::string& id) const {
  int fd = open(run_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  remove_tree_at(fd, id.c_str(), 0);
  close(fd);
}

// ---------------------------------------------------------------------------- network

asio::awaitable<Status> SandboxService::ensure_network() {
  const std::string& name = config_.docker.network;
  auto info = co_await docker_.network_inspect(name);
  if (!info && info.error().code == Errc::not_found) {
    docker::NetworkSpec spec;
    spec.name = name;
    spec.options = {{"com.docker.network.bridge.enable_icc", "false"}};
    spec.labels = {{"sandboxd.managed", "true"}};
    auto made = co_await docker_.network_create(spec);
    if (!made && made.error().code != Errc::conflict) co_return made.error();
    kLog.info("network created", {{"network", name}});
    info = co_await docker_.network_inspect(name);
  }
  if (!info) co_return info.error();
  auto icc = info->options.find("com.docker.network.bridge.enable_icc");
  if (icc == info->options.end() || icc->second != "false") {
    co_return Error{Errc::conflict,
                    "docker network " + name +
                        " allows traffic between containers; sandboxes must not reach each "
                        "other: remove it or set docker.network to another name"};
  }
  subnets_.clear();
  for (const auto& subnet : info->subnets) {
    if (auto cidr = config::parse_cidr(subnet)) subnets_.push_back(*cidr);
  }
  co_return ok();
}

// ---------------------------------------------------------------------------- reads

ApiResult<store::SandboxRow> SandboxService::get(const std::string& id) const {
  auto row = store::sandbox_repo::get(store_, id);
  if (!row) {
    if (row.error().code == Errc::not_found) return ApiError::not_found("no such sandbox " + id);
    return ApiError::from(row.error());
  }
  return std::move(*row);
}

ApiResult<std::vector<store::SandboxRow>> SandboxService::list(
    const store::SandboxFilter& filter) const {
  auto rows = store::sandbox_repo::list(store_, filter);
  if (!rows) return ApiError::from(rows.error());
  return std::move(*rows);
}

// ---------------------------------------------------------------------------- create

asio::awaitable<ApiResult<CreateOutcome>> SandboxService::create(CreateRequest req, bool v1,
                                                                 bool wait, Actor actor) {
  // Concurrent v1 creates of one (user, project) without an id (a client's retries) must find
  // each other's row: the check and the insert run under a per-project key, held until this
  // create has answered. A key with a newline never collides with a sandbox id.
  IdLocks::Guard project_guard;
  if (v1 && !req.id) {
    std::string project_key = "project\n" + req.user_id + "\n" + req.project_id.value_or("");
    project_guard = co_await locks_.lock(project_key);
    // v1 idempotency: the live sandbox of this (user, project) is the answer.
    store::SandboxFilter f;
    f.external_user_id = req.user_id;
    f.external_project_id = req.project_id;
    auto rows = list(f);
    if (!rows) co_return rows.error();
    for (auto& r : *rows) {
      if (is_live(r.status)) co_return CreateOutcome{std::move(r), 200};
    }
  }
  std::string id = req.id ? *req.id : new_ulid().str();
  IdLocks::Guard guard = co_await locks_.lock(id);

  std::optional<store::SandboxRow> previous = load(id);
  if (previous) {
    const std::string& st = previous->status;
    if (st == "destroyed") {
      if (previous->external_user_id.value_or("local") != req.user_id) {
        co_return ApiError::conflict("sandbox id is owned by another user");
      }
    } else if (st != "purged") {
      if (v1 && previous->external_user_id == req.user_id &&
          previous->external_project_id == req.project_id) {
        co_return CreateOutcome{std::move(*previous), 200};
      }
      co_return ApiError::conflict("sandbox id " + id + " is in use");
    }
  }
  if (req.template_name) {
    std::string dir = config_.data_dir + "/templates/" + *req.template_name;
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      co_return ApiError::invalid("template: no template named " + *req.template_name);
    }
  }
  // The image must be there already; it is never pulled (SPEC §5.3 step 5).
  auto image = co_await docker_.image_exists(config_.docker.image);
  if (!image) co_return docker_answer(image.error());
  if (!*image) {
    co_return ApiError::internal("image " + config_.docker.image +
                                 " is not on the Docker Engine; it is never pulled: build it "
                                 "(scripts/run.sh does) or set docker.image");
  }

  // Admission (SPEC §4.6) before anything is written: a refused create leaves no row,
  // directory or container. The slot is held until the container has started.
  std::optional<Admission::Ticket> ticket;
  if (admission_) {
    auto admitted = co_await admission_->admit(AdmissionKind::create);
    if (!admitted) co_return admitted.error();
    ticket.emplace(std::move(*admitted));
  }

  store::SandboxRow row = new_row(req, id);
  bool revive = previous && previous->status == "destroyed";
  if (revive) {
    row.created_at = previous->created_at;
    row.runtimed_secret_gen = previous->runtimed_secret_gen;
  }
  row.fresh_workspace = !workspaces_.exists(id);
  store::AuditRow audit_row = audit(actor, "sandbox.create", id,
                                    json_detail({{"revive", revive ? "true" : "false"}}));
  store::WriteJob insert_job = [row, previous, audit_row](store::Tx& tx) -> Status {
    Status st = previous ? store::sandbox_repo::update(tx, row) : store::sandbox_repo::insert(tx, row);
    if (!st) return st;
    if (auto a = store::audit_repo::append(tx, audit_row); !a) return a.error();
    return ok();
  };
  Status stored = co_await write_state(std::move(insert_job));
  if (!stored) co_return ApiError::from(stored.error());
  announce(previous ? std::string_view(previous->status) : std::string_view(), row);
  kLog.info("sandbox creating", {{"id", id}, {"revive", revive}});

  if (!wait) {
    asio::co_spawn(executor_, finish_async_create(std::move(guard), row, std::move(ticket)),
                   asio::detached);
    co_return CreateOutcome{row, 202};
  }

  bool made_container = false;
  auto failure = co_await provision(row, &made_container);
  if (!failure) co_return CreateOutcome{row, 201};

  // Roll back (SPEC §5.3): the container we made, a fresh workspace, and the row.
  kLog.warn("create failed; rolling back", {{"id", id}, {"error", failure->answer.message}});
  bool clean = true;
  if (made_container || row.container_id) {
    if (auto f = co_await remove_container(row); f) clean = false;
  }
  if (row.fresh_workspace) {
    if (!workspaces_.remove(id)) clean = false;
    remove_run_dir(id);
  }
  Status undone;
  if (!clean) {
    row.status = "error";
    row.error_reason = failure->reason;
    row.error_message = failure->answer.message;
    undone = co_await save(row);
  } else if (previous) {
    undone = co_await save(*previous);  // a revived row goes back to destroyed
  } else {
    store::WriteJob remove_job = [id](store::Tx& tx) { return store::sandbox_repo::remove(tx, id); };
    undone = co_await write_state(std::move(remove_job));
    if (undone && events_ != nullptr) {
      events_->sandbox_state(id, row.external_user_id.value_or(""), "creating", "", failure->reason);
    }
  }
  if (!undone) kLog.error("rollback write failed", {{"id", id}, {"error", undone.error().message()}});
  co_return failure->answer;
}

asio::awaitable<void> SandboxService::finish_async_create(IdLocks::Guard guard,
                                                          store::SandboxRow row,
                                                          std::optional<Admission::Ticket> ticket) {
  bool made_container = false;
  auto failure = co_await provision(row, &made_container);
  if (failure) {
    kLog.warn("async create failed", {{"id", row.id}, {"error", failure->answer.message}});
    if (row.container_id) co_await remove_container(row);
    row.status = "error";
    row.error_reason = failure->reason;
    row.error_message = failure->answer.message;
    co_await save(row);
  }
  if (ticket) ticket->release();
  guard.release();
}

asio::awaitable<std::optional<SandboxService::Failure>> SandboxService::provision(
    store::SandboxRow& row, bool* made_container) {
  if (auto f = co_await fill_workspace(row)) co_return f;
  if (auto st = ensure_run_dir(row.id); !st) {
    co_return Failure{ApiError::internal(st.error().detail), "create_failed"};
  }
  if (auto f = co_await create_container(row)) co_return f;
  *made_container = true;
  auto failure = co_await start_container(row);
  // A container gone right after its create is a failed create, not an unknown sandbox.
  if (failure && failure->answer.status == 404) failure->answer = ApiError::internal(failure->answer.message);
  co_return failure;
}

asio::awaitable<std::optional<SandboxService::Failure>> SandboxService::fill_workspace(
    const store::SandboxRow& row) {
  auto made = workspaces_.create(row.id);
  if (!made) co_return Failure{ApiError::internal("workspace: " + made.error().detail), "create_failed"};
  auto empty = workspaces_.is_empty(row.id);
  if (!empty) co_return Failure{ApiError::internal("workspace: " + empty.error().detail), "create_failed"};
  if (!*empty) co_return std::nullopt;  // revive: used as it is

  Status filled;
  if (row.template_name) {
    filled = workspaces_.fill_from_dir(row.id, config_.data_dir + "/templates/" + *row.template_name);
  } else if (!config_.sandbox.skeleton.empty()) {
    filled = workspaces_.fill_from_dir(row.id, config_.sandbox.skeleton);
  } else {
    // The image's skeleton, read once per image id from a created, never-started container
    // and kept in memory (SPEC §5.3 allows a per-image cache): reading it costs a container
    // create and remove, most of a create's own time.
    auto image = co_await docker_.image_inspect(row.image);
    if (!image) co_return Failure{docker_answer(image.error()), "create_failed"};
    auto cached = skeletons_.find(image->id);
    if (cached == skeletons_.end()) {
      docker::ContainerSpec probe;
      probe.image = row.image;
      probe.cmd = {"/nonexistent"};
      probe.entrypoint = std::vector<std::string>{};
      probe.network_mode = "none";
      // Labelled with the instance so that one left behind by a crash is found and removed
      // by the reconciler (reconcile_all); never started, so removing it loses nothing.
      probe.labels = {{"sandboxd.skeleton", "true"}, {"sandboxd.instance", instance_id_}};
      probe.cap_drop = {"ALL"};
      probe.security_opt = {"no-new-privileges"};
      auto created = co_await docker_.container_create(probe);
      if (!created) co_return Failure{docker_answer(created.error()), "create_failed"};
      probes_in_use_.insert(created->id);
      auto tar = co_await docker_.container_archive(created->id, kSkeletonPath);
      co_await docker_.container_remove(created->id, true);
      probes_in_use_.erase(created->id);
      if (!tar && tar.error().code != Errc::not_found) {
        co_return Failure{docker_answer(tar.error()), "create_failed"};
      }
      // "" records an image without a skeleton: its workspaces start empty.
      std::string skeleton = tar ? std::move(*tar) : std::string();
      cached = skeletons_.emplace(image->id, std::move(skeleton)).first;
    }
    if (cached->second.empty()) co_return std::nullopt;
    filled = workspaces_.fill_from_tar(row.id, cached->second, "sandbox-skel");
  }
  if (!filled) co_return Failure{ApiError::internal("workspace: " + filled.error().detail), "create_failed"};
  co_return std::nullopt;
}

asio::awaitable<std::optional<SandboxService::Failure>> SandboxService::create_container(
    store::SandboxRow& row) {
  std::string name = "s-" + row.id;
  auto existing = co_await docker_.container_inspect(name);
  if (existing) {
    const auto& labels = existing->labels;
    auto label = [&](const char* k) {
      auto it = labels.find(k);
      return it == labels.end() ? std::string() : it->second;
    };
    if (label("sandboxd.instance") != instance_id_ || label("sandboxd.id") != row.id) {
      co_return Failure{ApiError::conflict("container name " + name + " is taken"), "name_taken"};
    }
    // Ours but possibly with a stale spec: re-create it.
    auto removed = co_await docker_.container_remove(existing->id, true);
    if (!removed && removed.error().code != Errc::not_found) {
      co_return Failure{docker_answer(removed.error()), "create_failed"};
    }
  } else if (existing.error().code != Errc::not_found) {
    co_return Failure{docker_answer(existing.error()), "create_failed"};
  }
  docker::ContainerSpec spec = container_spec(row);
  auto created = co_await docker_.container_create(spec);
  if (!created) {
    if (created.error().code == Errc::conflict) {
      co_return Failure{ApiError::conflict("container name " + name + " is taken"), "name_taken"};
    }
    co_return Failure{docker_answer(created.error()), "create_failed"};
  }
  row.container_id = created->id;
  row.container_missing = false;
  if (auto st = co_await save(row); !st) co_return Failure{ApiError::from(st.error()), "create_failed"};
  co_return std::nullopt;
}

asio::awaitable<std::optional<SandboxService::Failure>> SandboxService::issue_runtimed_secret(
    store::SandboxRow& row) {
  if (!runtimed_) co_return std::nullopt;
  const std::int64_t generation = row.runtimed_secret_gen + 1;
  const std::string secret = runtimed_->secret(row.id, generation);
  const std::string hash = RuntimedLink::secret_hash(secret);
  // Stored first: a crash after the delivery must not leave runtimed with a secret that
  // sandboxd cannot derive again.
  const std::string id = row.id;
  store::WriteJob job = [id, generation, hash](store::Tx& tx) {
    return store::sandbox_repo::set_runtimed_secret(tx, id, generation, hash);
  };
  if (auto st = co_await store_write(store_, std::move(job)); !st) {
    co_return Failure{ApiError::from(st.error()), "start_failed"};
  }
  row.runtimed_secret_gen = generation;
  row.runtimed_secret_hash = hash;
  if (auto st = runtimed_->deliver(row.id, runtimed_->settings_json(row, secret)); !st) {
    co_return Failure{ApiError::internal("runtimed.json: " + st.error().detail), "start_failed"};
  }
  co_return std::nullopt;
}

asio::awaitable<std::optional<SandboxService::Failure>> SandboxService::start_container(
    store::SandboxRow& row) {
  if (auto f = co_await issue_runtimed_secret(row)) co_return f;
  auto started = co_await docker_.container_start(*row.container_id);
  if (!started && started.error().code == Errc::not_found) {
    // Removed behind our back, before its destroy event was seen: a 404 that finish_wake
    // answers by re-creating the container (SPEC §5.5, §13). docker_answer would make it 500.
    co_return Failure{ApiError::not_found("container " + *row.container_id + " is gone"),
                      "start_failed"};
  }
  if (!started) co_return Failure{docker_answer(started.error()), "start_failed"};
  auto info = co_await docker_.container_inspect(*row.container_id);
  if (!info) co_return Failure{docker_answer(info.error()), "start_failed"};
  std::string ip = info->ip_address(config_.docker.network);
  if (!info->state.running || ip.empty()) {
    co_return Failure{ApiError::internal("container exited right after start (exit code " +
                                         std::to_string(info->state.exit_code) + ")"),
                      "start_failed"};
  }
  std::int64_t now = clock_.unix_ms();
  row.status = "running";
  row.container_ip = ip;
  row.started_at = now;
  row.last_active_at = std::max(row.last_active_at, now);
  row.stopped_at.reset();
  row.stop_reason.reset();
  row.exit_code.reset();
  row.oom_killed = false;
  row.error_reason.reset();
  row.error_message.reset();
  if (auto st = co_await save(row); !st) co_return Failure{ApiError::from(st.error()), "start_failed"};
  kLog.info("sandbox running", {{"id", row.id}, {"ip", ip}});
  if (on_started_) on_started_(row.id);
  co_return std::nullopt;
}

asio::awaitable<void> SandboxService::stop_before_removal(store::SandboxRow& row,
                                                         std::string reason) {
  if (row.status != "running" || !row.container_id) co_return;
  row.status = "stopping";
  row.stop_reason = reason;
  if (Status st = co_await save(row); !st) co_return;  // the forced removal follows anyway
  if (before_stop_) co_await before_stop_(row.id);
  const auto grace = std::chrono::duration_cast<std::chrono::seconds>(config_.docker.stop_timeout);
  if (auto stopped = co_await docker_.container_stop(*row.container_id, grace); !stopped) {
    kLog.warn("stop before removal failed; removing by force",
              {{"id", row.id}, {"error", stopped.error().message()}});
  }
}

asio::awaitable<std::optional<SandboxService::Failure>> SandboxService::remove_container(
    store::SandboxRow& row) {
  std::string target;
  if (row.container_id) {
    target = *row.container_id;
  } else {
    // No container id stored (a crash right after the create, or the create failed): remove
    // a container by name only if it carries this instance's labels for this id. One that
    // took the name without them is not ours and is never touched (SPEC §1.6, §5.9).
    std::string name = "s-" + row.id;
    auto existing = co_await docker_.container_inspect(name);
    if (!existing && existing.error().code != Errc::not_found) {
      co_return Failure{docker_answer(existing.error()), "destroy_failed"};
    }
    auto label = [&](const char* key) {
      auto it = existing->labels.find(key);
      return it == existing->labels.end() ? std::string() : it->second;
    };
    if (!existing || label("sandboxd.instance") != instance_id_ || label("sandboxd.id") != row.id) {
      row.container_ip.reset();
      co_return std::nullopt;
    }
    target = existing->id;
  }
  auto removed = co_await docker_.container_remove(target, true);
  if (!removed && removed.error().code != Errc::not_found) {
    co_return Failure{docker_answer(removed.error()), "destroy_failed"};
  }
  row.container_id.reset();
  row.container_ip.reset();
  co_return std::nullopt;
}

// ---------------------------------------------------------------------------- start / stop

asio::awaitable<ApiResult<store::SandboxRow>> SandboxService::start(const std::string& id,
                                                                    Actor actor, bool wait,
                                                                    WakeTrace* trace) {
  co_return co_await start_if(id, std::move(actor), wait, trace, nullptr);
}

asio::awaitable<std::optional<ApiResult<store::SandboxRow>>> SandboxService::restart_always_on(
    const std::string& id, std::string reason) {
  bool declined = false;
  RowCheck wanted = [&reason, &declined](const store::SandboxRow& row) {
    declined = row.idle_policy != "always_on" || row.status != "stopped" ||
               row.stop_reason.value_or("") != reason;
    return !declined;
  };
  Actor system;
  auto started = co_await start_if(id, system, true, nullptr, &wanted);
  if (declined) co_return std::nullopt;
  co_return std::move(started);
}

asio::awaitable<ApiResult<store::SandboxRow>> SandboxService::start_if(const std::string& id,
                                                                       Actor actor, bool wait,
                                                                       WakeTrace* trace,
                                                                       const RowCheck* wanted) {
  std::optional<Admission::Ticket> ticket;
  for (;;) {
    IdLocks::Guard guard = co_await locks_.lock(id);
    auto row = load(id);
    if (!row || row->status == "purged") co_return ApiError::not_found("no such sandbox " + id);
    if (wanted && !(*wanted)(*row)) co_return std::move(*row);
    if (row->status == "destroyed") co_return ApiError::conflict("sandbox " + id + " is destroyed");
    if (row->status == "running") co_return std::move(*row);
    if (admission_ && !ticket) {
      // Admission (SPEC §4.6) never runs under this id's lock: it may wait for a slot, and
      // its pressure pass takes other sandboxes' locks. Then the state is read again.
      guard.release();
      const auto queued = std::chrono::steady_clock::now();
      auto admission = co_await admission_->admit(AdmissionKind::wake);
      if (trace) trace->admission += std::chrono::steady_clock::now() - queued;
      if (!admission) co_return admission.error();
      if (trace && trace->abandoned && trace->abandoned()) {
        co_return ApiError::timeout("the wake's deadline passed while it waited for admission");
      }
      ticket.emplace(std::move(*admission));
      continue;
    }
    if (wait) co_return co_await wake_locked(std::move(*row), actor);
    if (auto st = co_await mark_waking(*row, actor); !st) co_return ApiError::from(st.error());
    asio::co_spawn(executor_, finish_wake_detached(std::move(guard), *row, std::move(ticket)),
                   asio::detached);
    co_return std::move(*row);
  }
}

asio::awaitable<void> SandboxService::finish_wake_detached(IdLocks::Guard guard,
                                                           store::SandboxRow row,
                                                           std::optional<Admission::Ticket> ticket) {
  co_await finish_wake(std::move(row));
  if (ticket) ticket->release();
  guard.release();
}

asio::awaitable<ApiResult<store::SandboxRow>> SandboxService::wake_locked(store::SandboxRow row,
                                                                          const Actor& actor) {
  if (auto st = co_await mark_waking(row, actor); !st) co_return ApiError::from(st.error());
  co_return co_await finish_wake(std::move(row));
}

asio::awaitable<Status> SandboxService::mark_waking(store::SandboxRow& row, const Actor& actor) {
  row.status = "waking";
  store::AuditRow start_audit = audit(actor, "sandbox.start", row.id);
  co_return co_await save(row, &start_audit);
}

asio::awaitable<ApiResult<store::SandboxRow>> SandboxService::finish_wake(store::SandboxRow row) {
  std::optional<Failure> failure;
  if (!row.container_id || row.container_missing) {
    if (auto st = ensure_run_dir(row.id); !st) failure = Failure{ApiError::internal(st.error().detail), "start_failed"};
    if (!failure) failure = co_await create_container(row);
  }
  if (!failure) {
    failure = co_await start_container(row);
    if (failure && failure->answer.status == 404) {
      // Removed behind our back: re-create from the stored spec (workspace untouched).
      failure = co_await create_container(row);
      if (!failure) failure = co_await start_container(row);
    }
  }
  if (!failure) co_return std::move(row);
  bool retry_later = failure->answer.status == 503 || failure->answer.status == 504;
  row.status = retry_later ? "stopped" : "error";
  if (!retry_later) {
    row.error_reason = failure->reason == "name_taken" ? "name_taken" : "start_failed";
    row.error_message = failure->answer.message;
  }
  co_await save(row);
  kLog.warn("wake failed", {{"id", row.id}, {"error", failure->answer.message}});
  co_return failure->answer;
}

asio::awaitable<ApiResult<store::SandboxRow>> SandboxService::stop(const std::string& id,
                                                                   StopRequest req,
                                                                   std::string reason,
                                                                   Actor actor, bool wait) {
  IdLocks::Guard guard = co_await locks_.lock(id);
  auto row = load(id);
  if (!row || row->status == "purged") co_return ApiError::not_found("no such sandbox " + id);
  if (row->status == "destroyed" || row->status == "error") {
    co_return ApiError::conflict("sandbox " + id + " is " + row->status);
  }
  if (row->status == "stopped") co_return std::move(*row);
  auto grace = req.timeout.value_or(
      std::chrono::duration_cast<std::chrono::seconds>(config_.docker.stop_timeout));
  row->status = "stopping";
  row->stop_reason = reason;
  store::AuditRow stop_audit = audit(actor, "sandbox.stop", id);
  if (auto st = co_await save(*row, &stop_audit); !st) {
    co_return ApiError::from(st.error());
  }
  if (wait) co_return co_await stop_locked(std::move(*row), grace, reason);
  asio::co_spawn(executor_, finish_stop_detached(std::move(guard), *row, grace, reason),
                 asio::detached);
  co_return std::move(*row);
}

asio::awaitable<void> SandboxService::finish_stop_detached(IdLocks::Guard guard,
                                                           store::SandboxRow row,
                                                           std::chrono::seconds grace,
                                                           std::string reason) {
  co_await stop_locked(std::move(row), grace, std::move(reason));
  guard.release();
}

asio::awaitable<ApiResult<store::SandboxRow>> SandboxService::stop_locked(
    store::SandboxRow row, std::chrono::seconds grace, std::string reason) {
  if (row.container_id) {
    if (before_stop_) co_await before_stop_(row.id);
    auto stopped = co_await docker_.container_stop(*row.container_id, grace);
    if (!stopped) {
      if (stopped.error().code == Errc::not_found) {
        row.container_missing = true;
        row.container_id.reset();
      } else {
        row.status = "running";  // still running: back to running, and say why
        co_await save(row);
        co_return docker_answer(stopped.error());
      }
    }
  }
  row.status = "stopped";
  row.stopped_at = clock_.unix_ms();
  row.stop_reason = reason;
  row.container_ip.reset();
  if (auto st = co_await save(row); !st) co_return ApiError::from(st.error());
  kLog.info("sandbox stopped", {{"id", row.id}, {"reason", reason}});
  co_return std::move(row);
}

asio::awaitable<std::optional<ApiResult<store::SandboxRow>>> SandboxService::stop_if_idle(
    const std::string& id, IdleCheck still_idle, std::string reason, std::string band) {
  IdLocks::Guard guard = co_await locks_.lock(id);
  auto row = load(id);
  if (!row) co_return std::nullopt;
  const bool idle = co_await still_idle(*row);
  if (!idle) co_return std::nullopt;
  auto grace = std::chrono::ceil<std::chrono::seconds>(config_.idle.stop_timeout);
  row->status = "stopping";
  row->stop_reason = reason;
  Actor system;
  std::string detail = band.empty() ? json_detail({{"reason", reason}})
                                    : json_detail({{"reason", reason}, {"band", band}});
  store::AuditRow stop_audit = audit(system, "sandbox.stop", id, std::move(detail));
  if (auto st = co_await save(*row, &stop_audit); !st) {
    co_return ApiResult<store::SandboxRow>(ApiError::from(st.error()));
  }
  auto stopped = co_await stop_locked(std::move(*row), grace, reason);
  co_return std::move(stopped);
}

std::set<std::string> SandboxService::execs_in_flight() const {
  std::set<std::string> ids = busy_source_ ? busy_source_() : std::set<std::string>{};
  for (const auto& [id, n] : *execs_) {
    if (n > 0) ids.insert(id);
  }
  return ids;
}

std::size_t SandboxService::execs_running() const {
  std::size_t n = 0;
  for (const auto& [id, count] : *execs_) n += static_cast<std::size_t>(std::max(count, 0));
  return n;
}

// ---------------------------------------------------------------------------- destroy / purge

asio::awaitable<ApiResult<store::SandboxRow>> SandboxService::destroy(const std::string& id,
                                                                      Actor actor) {
  IdLocks::Guard guard = co_await locks_.lock(id);
  auto row = load(id);
  if (!row || row->status == "purged") co_return ApiError::not_found("no such sandbox " + id);
  if (row->status == "destroyed") co_return std::move(*row);
  const std::string destroy_reason = "destroy";
  co_await stop_before_removal(*row, destroy_reason);
  if (auto f = co_await remove_container(*row)) {
    row->status = "error";
    row->error_reason = "destroy_failed";
    row->error_message = f->answer.message;
    co_await save(*row);
    co_return f->answer;
  }
  row->status = "destroyed";
  row->stop_reason = "destroy";
  if (!row->stopped_at) row->stopped_at = clock_.unix_ms();
  store::AuditRow destroy_audit = audit(actor, "sandbox.destroy", id);
  if (auto st = co_await save(*row, &destroy_audit); !st) {
    co_return ApiError::from(st.error());
  }
  kLog.info("sandbox destroyed", {{"id", id}});
  co_return std::move(*row);
}

asio::awaitable<ApiResult<PurgeOutcome>> SandboxService::purge(const std::string& id, Actor actor) {
  IdLocks::Guard guard = co_await locks_.lock(id);
  auto row = load(id);
  if (!row || row->status == "purged") co_return PurgeOutcome{false, 0};
  const std::string purge_reason = "purge";
  co_await stop_before_removal(*row, purge_reason);
  if (auto f = co_await remove_container(*row)) {
    row->status = "error";
    row->error_reason = "purge_failed";
    row->error_message = "purge: container: " + f->answer.message;
    co_await save(*row);
    co_return ApiError::internal(*row->error_message);
  }
  auto freed = workspaces_.remove(id);
  if (!freed) {
    row->status = "error";
    row->error_reason = "purge_failed";
    row->error_message = "purge: workspace: " + freed.error().detail;
    co_await save(*row);
    co_return ApiError::internal(*row->error_message);
  }
  remove_run_dir(id);
  std::uint64_t bytes = *freed;
  store::AuditRow audit_row =
      audit(actor, "sandbox.purge", id, json_detail({{"freed_bytes", std::to_string(bytes)}}));
  store::WriteJob purge_job = [id, audit_row](store::Tx& tx) -> Status {
    if (auto s = store::sandbox_repo::purge(tx, id); !s) return s;
    if (auto a = store::audit_repo::append(tx, audit_row); !a) return a.error();
    return ok();
  };
  Status st = co_await write_state(std::move(purge_job));
  if (!st) co_return ApiError::from(st.error());
  if (events_ != nullptr) {
    events_->sandbox_state(id, row->external_user_id.value_or(""), row->status, "purged", "purge");
  }
  kLog.info("sandbox purged", {{"id", id}, {"freed_bytes", bytes}});
  co_return PurgeOutcome{true, bytes};
}

// ---------------------------------------------------------------------------- claim, patch

asio::awaitable<ApiResult<store::SandboxRow>> SandboxService::claim(const std::string& id,
                                                                    ClaimRequest request,
                                                                    Actor actor) {
  IdLocks::Guard guard = co_await locks_.lock(id);
  auto row = load(id);
  if (!row || row->status == "purged") co_return ApiError::not_found("no such sandbox " + id);
  std::string prior = row->external_user_id.value_or("local");
  row->external_user_id = request.user_id;
  if (request.project_id) row->external_project_id = *request.project_id;
  if (request.workspace_id) row->external_workspace_id = *request.workspace_id;
  store::AuditRow claim_audit = audit(actor, "sandbox.claim", id,
                                      json_detail({{"prior_user_id", prior},
                                                   {"new_user_id", request.user_id}}));
  if (auto st = co_await save(*row, &claim_audit); !st) co_return ApiError::from(st.error());
  kLog.info("sandbox claimed", {{"id", id}, {"actor", actor.name}});
  co_return std::move(*row);
}

asio::awaitable<ApiResult<store::SandboxRow>> SandboxService::patch(const std::string& id,
                                                                    PatchRequest request,
                                                                    Actor actor) {
  IdLocks::Guard guard = co_await locks_.lock(id);
  auto row = load(id);
  if (!row || row->status == "purged") co_return ApiError::not_found("no such sandbox " + id);
  if (row->status == "destroyed") co_return ApiError::conflict("sandbox " + id + " is destroyed");
  json::array fields;
  if (request.visibility) {
    row->visibility = std::string(to_string(*request.visibility));
    fields.emplace_back("visibility");
  }
  if (request.idle_policy) {
    row->idle_policy = std::string(to_string(*request.idle_policy));
    fields.emplace_back("idle_policy");
  }
  if (request.ports) {
    row->ports.assign(request.ports->begin(), request.ports->end());
    fields.emplace_back("ports");
  }
  if (request.git_remote_url) {
    row->git_remote_url = *request.git_remote_url;
    fields.emplace_back("git_remote_url");
  }
  if (request.keepalive_until_ms) {
    // Clamped like the legacy keepalive (SPEC §2.5.6): never in the past, at most
    // idle.keepalive_max ahead.
    std::optional<std::int64_t> until = *request.keepalive_until_ms;
    std::int64_t now = clock_.unix_ms();
    if (until && *until < now - 1000) {
      co_return ApiError::invalid("keepalive_until: must not be in the past");
    }
    std::int64_t max = now + std::chrono::duration_cast<std::chrono::milliseconds>(
                                 config_.idle.keepalive_max).count();
    if (until) until = std::min(*until, max);
    row->keepalive_until = until;
    fields.emplace_back("keepalive_until");
  }
  if (fields.empty()) co_return std::move(*row);  // an empty merge patch changes nothing
  store::AuditRow patch_audit =
      audit(actor, "sandbox.patch", id, json::serialize(json::object{{"fields", fields}}));
  if (auto st = co_await save(*row, &patch_audit); !st) co_return ApiError::from(st.error());
  co_return std::move(*row);
}

// ---------------------------------------------------------------------------- keepalive, exec

asio::awaitable<ApiResult<store::SandboxRow>> SandboxService::keepalive(
    const std::string& id, std::optional<std::int64_t> until_ms, Actor actor) {
  IdLocks::Guard guard = co_await locks_.lock(id);
  auto row = load(id);
  if (!row || row->status == "purged" || row->status == "destroyed") {
    co_return ApiError::not_found("no such sandbox " + id);
  }
  std::int64_t now = clock_.unix_ms();
  std::int64_t max = now + std::chrono::duration_cast<std::chrono::milliseconds>(
                               config_.idle.keepalive_max).count();
  if (!until_ms) {
    row->keepalive_until = now + std::chrono::duration_cast<std::chrono::milliseconds>(
                                     config_.idle.threshold).count();
  } else if (*until_ms == 0) {
    row->keepalive_until.reset();
  } else {
    if (*until_ms < now) co_return ApiError::invalid("until: must not be in the past");
    row->keepalive_until = *until_ms;
  }
  if (row->keepalive_until) row->keepalive_until = std::min(*row->keepalive_until, max);
  store::AuditRow keepalive_audit = audit(actor, "sandbox.keepalive", id);
  if (auto st = co_await save(*row, &keepalive_audit); !st) {
    co_return ApiError::from(st.error());
  }
  co_return std::move(*row);
}

namespace {

// Marks every process an exec starts (children inherit it), so a cancelled exec's whole
// tree can be found inside the container. Request env cannot set it (SANDBOXD_ is reserved).
constexpr std::string_view kExecIdVar = "SANDBOXD_EXEC_ID";

// Run inside the sandbox as the sandbox user: SIGTERM to every process carrying
// SANDBOXD_EXEC_ID=$1, then SIGKILL to those left 5 s later.
constexpr std::string_view kCancelScript =
    "t=\"SANDBOXD_EXEC_ID=$1\"\n"
    "pids() {\n"
    "  for d in /proc/[0-9]*; do\n"
    "    p=${d#/proc/}\n"
    "    [ \"$p\" = \"$$\" ] && continue\n"
    "    tr '\\0' '\\n' < \"$d/environ\" 2>/dev/null | grep -qxF \"$t\" && echo \"$p\"\n"
    "  done\n"
    "}\n"
    "left=$(pids); [ -n \"$left\" ] && kill -TERM $left 2>/dev/null\n"
    "i=0\n"
    "while [ $i -lt 25 ]; do left=$(pids); [ -z \"$left\" ] && exit 0; sleep 0.2; i=$((i+1)); done\n"
    "left=$(pids); [ -n \"$left\" ] && kill -KILL $left 2>/dev/null\n"
    "exit 0\n";

docker::ExecSpec exec_spec(const ExecRequest& req, const config::Config& config,
                           const std::string& exec_id) {
  docker::ExecSpec spec;
  spec.cmd = req.cmd;
  for (const auto& [k, v] : req.env) spec.env.push_back(k + "=" + v);
  if (!exec_id.empty()) spec.env.push_back(std::string(kExecIdVar) + "=" + exec_id);
  spec.working_dir = req.cwd;
  spec.user = std::to_string(config.sandbox.user.uid) + ":" + std::to_string(config.sandbox.user.gid);
  return spec;
}

}  // namespace

asio::awaitable<ApiResult<ExecOutput>> SandboxService::exec(const std::string& id,
                                                            const ExecRequest& req,
                                                            const std::string& exec_id,
                                                            docker::OutputFn on_output,
                                                            Actor actor,
                                                            std::shared_ptr<OneShot> cancel) {
  // Counts as activity while it runs (SPEC §4.1), so the idle reaper leaves the sandbox be.
  struct InFlight {
    std::weak_ptr<std::map<std::string, int>> table;
    std::string id;
    ~InFlight() {
      auto t = table.lock();
      if (!t) return;
      if (auto it = t->find(id); it != t->end() && --it->second <= 0) t->erase(it);
    }
  };
  ++(*execs_)[id];
  InFlight in_flight{execs_, id};
  auto row = co_await runnable_row(id, actor);
  if (!row) co_return row.error();
  if (!row->container_id) co_return ApiError::conflict("sandbox " + id + " has no container");
  auto started = clock_.mono();
  docker::ExecOptions options;
  options.timeout = req.timeout;
  options.on_output = std::move(on_output);
  co_await touch(id);
  docker::ExecSpec spec = exec_spec(req, config_, exec_id);
  std::optional<Result<docker::ExecResult>> finished;
  if (cancel) {
    auto run = docker_.exec(*row->container_id, spec, options);
    auto hangup = cancel->wait();
    auto first = co_await (std::move(run) || std::move(hangup));
    if (first.index() == 0) finished.emplace(std::move(std::get<0>(first)));
  } else {
    finished.emplace(co_await docker_.exec(*row->container_id, spec, options));
  }
  if (!finished) {
    // The client left: end the command's whole process tree (SPEC §2.6.8), in the background.
    const bool killed = co_await end_exec(*row->container_id, spec.user, exec_id);
    kLog.info("exec cancelled: the client went away",
              {{"id", id}, {"exec_id", exec_id}, {"kill_started", killed}});
  }
  co_await touch(id);
  if (!finished) co_return ApiError::invalid("cancelled: the client went away");
  auto& result = *finished;
  if (!result) co_return docker_answer(result.error());
  kLog.info("exec finished", {{"id", id}, {"exec_id", exec_id}, {"docker_exec", result->exec_id},
                              {"exit_code", result->exit_code.value_or(-1)},
                              {"timed_out", result->timed_out}});
  ExecOutput out;
  out.exec_id = exec_id;
  out.exit_code = result->exit_code;
  out.timed_out = result->timed_out;
  out.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.mono() - started).count();
  co_return out;
}

// The row of a sandbox a command can run in (SPEC §2.9): destroyed and error refuse, any
// other live state is woken first.
asio::awaitable<ApiResult<store::SandboxRow>> SandboxService::runnable_row(const std::string& id,
                                                                          const Actor& actor) {
  auto row = load(id);
  if (!row || row->status == "purged") co_return ApiError::not_found("no such sandbox " + id);
  if (row->status == "destroyed" || row->status == "error") {
    co_return ApiError::conflict("sandbox " + id + " is " + row->status);
  }
  if (row->status == "running") co_return std::move(*row);
  co_return co_await start(id, actor);
}

asio::awaitable<ApiResult<std::string>> SandboxService::exec_detached(const std::string& id,
                                                                      const ExecRequest& req,
                                                                      Actor actor) {
  auto row = co_await runnable_row(id, actor);
  if (!row) co_return row.error();
  std::string exec_id = new_ulid().str();
  docker::ExecSpec spec = exec_spec(req, config_, exec_id);
  auto docker_exec = co_await docker_.exec_detached(*row->container_id, spec);
  if (!docker_exec) co_return docker_answer(docker_exec.error());
  kLog.info("exec detached", {{"id", id}, {"exec_id", exec_id}, {"docker_exec", *docker_exec}});
  // SPEC §2.6.8: a detached command gets timeout_s only when it was given.
  if (req.timeout_given) {
    asio::co_spawn(executor_, end_exec_after(*row->container_id, spec.user, exec_id, req.timeout),
                   asio::detached);
  }
  co_return exec_id;
}

asio::awaitable<bool> SandboxService::end_exec(std::string container_id, std::string user,
                                               std::string exec_id) {
  docker::ExecSpec killer;
  killer.cmd = {"sh", "-c", std::string(kCancelScript), "sandboxd-exec-cancel", exec_id};
  killer.user = std::move(user);
  auto started = co_await docker_.exec_detached(container_id, killer);
  co_return started.has_value();
}

asio::awaitable<void> SandboxService::end_exec_after(std::string container_id, std::string user,
                                                     std::string exec_id,
                                                     std::chrono::milliseconds after) {
  asio::steady_timer timer(executor_, after);
  co_await timer.async_wait(nothrow);
  // A command that ended already leaves nothing to signal; a removed container fails here.
  const bool started = co_await end_exec(std::move(container_id), std::move(user), exec_id);
  kLog.info("detached exec timed out; ended", {{"exec_id", exec_id}, {"kill_started", started}});
}

asio::awaitable<std::optional<docker::ContainerInfo>> SandboxService::inspect_container(
    const store::SandboxRow& row) {
  if (!row.container_id) co_return std::nullopt;
  auto info = co_await docker_.container_inspect(*row.container_id);
  if (!info) co_return std::nullopt;
  co_return std::move(*info);
}

asio::awaitable<ApiResult<void>> SandboxService::container_logs(const store::SandboxRow& row,
                                                                docker::LogsOptions options,
                                                                std::shared_ptr<OneShot> cancel) {
  if (!row.container_id) co_return ApiResult<void>();
  std::optional<Status> finished;
  if (cancel) {
    auto run = docker_.container_logs(*row.container_id, options);
    auto hangup = cancel->wait();
    auto first = co_await (std::move(run) || std::move(hangup));
    if (first.index() == 0) finished.emplace(std::move(std::get<0>(first)));
  } else {
    finished.emplace(co_await docker_.container_logs(*row.container_id, options));
  }
  if (!finished || *finished) co_return ApiResult<void>();
  const Error& e = finished->error();
  if (docker::docker_error_kind(e) == docker::DockerErrorKind::not_found) co_return ApiResult<void>();
  co_return docker_answer(e);
}

// ---------------------------------------------------------------------------- reconciler

asio::awaitable<Status> SandboxService::reconcile_all() {
  docker::ListOptions options;
  options.all = true;
  options.labels = {"sandboxd.instance=" + instance_id_};
  auto containers = co_await docker_.container_list(options);
  if (!containers) co_return containers.error();
  std::map<std::string, docker::ContainerSummary> by_id;
  std::size_t orphan_containers = 0;
  for (auto& c : *containers) {
    if (auto probe = c.labels.find("sandboxd.skeleton");
        probe != c.labels.end() && probe->second == "true") {
      // A skeleton probe that a crash left behind (a create in flight still uses its own).
      if (!probes_in_use_.contains(c.id)) {
        auto removed = co_await docker_.container_remove(c.id, true);
        kLog.info("removed a leftover skeleton probe",
                  {{"container", c.id}, {"ok", removed.has_value()}});
      }
      continue;
    }
    auto label = c.labels.find("sandboxd.id");
    auto parsed = label == c.labels.end() ? Result<Ulid>(Error{}) : Ulid::parse(label->second);
    if (!parsed || parsed->str() != label->second) {
      kLog.warn("orphan container", {{"container", c.id}, {"reason", "bad sandboxd.id label"}});
      ++orphan_containers;
      continue;
    }
    by_id[label->second] = c;
  }
  auto rows = store::sandbox_repo::list(store_, {});
  if (!rows) co_return rows.error();
  std::set<std::string> known;
  for (const auto& r : *rows) {
    known.insert(r.id);
    std::optional<docker::ContainerSummary> c;
    if (auto it = by_id.find(r.id); it != by_id.end()) c = it->second;
    co_await reconcile_row(r.id, c);
  }
  for (const auto& [id, c] : by_id) {
    if (!known.contains(id)) {
      kLog.warn("orphan container", {{"container", c.id}, {"id", id}, {"reason", "no row"}});
      ++orphan_containers;
    }
  }
  std::size_t orphan_workspaces = 0;
  for (const auto& dir : workspaces_.list_ids()) {
    if (!known.contains(dir)) {
      kLog.warn("orphan workspace", {{"dir", dir}});
      ++orphan_workspaces;
    }
  }
  orphans_ = Orphans{orphan_containers, orphan_workspaces};
  co_return ok();
}

asio::awaitable<void> SandboxService::reconcile_row(
    const std::string& id, const std::optional<docker::ContainerSummary>& c) {
  IdLocks::Guard guard = co_await locks_.lock(id);
  auto loaded = load(id);
  if (!loaded) co_return;
  store::SandboxRow row = std::move(*loaded);
  bool running = c && c->state == "running";
  const std::string st = row.status;
  if (st == "creating") {
    bool made = false;
    if (auto f = co_await provision(row, &made)) {
      row.status = "error";
      row.error_reason = f->reason;
      row.error_message = f->answer.message;
      co_await save(row);
    }
  } else if (st == "running" || st == "waking") {
    if (running) {
      auto info = co_await docker_.container_inspect(c->id);
      if (info) {
        std::string ip = info->ip_address(config_.docker.network);
        if (ip != row.container_ip.value_or("") || row.container_id != c->id || st == "waking") {
          row.container_ip = ip;
          row.container_id = c->id;
          row.status = "running";
          co_await save(row);
        }
      }
    } else {
      row.status = "stopped";
      row.stop_reason = "exited";
      row.stopped_at = clock_.unix_ms();
      row.container_ip.reset();
      if (!c) {
        row.container_missing = true;
        row.container_id.reset();
      }
      co_await save(row);
      kLog.info("reconciled", {{"id", id}, {"from", st}, {"to", "stopped"}});
    }
  } else if (st == "stopping") {
    std::string reason = row.stop_reason.value_or("api");
    if (c) {
      auto grace = std::chrono::duration_cast<std::chrono::seconds>(config_.docker.stop_timeout);
      co_await stop_locked(std::move(row), grace, reason);
    } else {
      row.stop_reason = reason;
      row.status = "stopped";
      row.container_missing = true;
      row.container_id.reset();
      row.container_ip.reset();
      co_await save(row);
    }
  } else if (st == "stopped") {
    if (running) {
      kLog.info("stopping a container the store says is stopped", {{"id", id}});
      co_await docker_.container_stop(c->id, std::chrono::duration_cast<std::chrono::seconds>(
                                                 config_.docker.stop_timeout));
    } else if (!c && !row.container_missing) {
      row.container_missing = true;
      row.container_id.reset();
      co_await save(row);
    }
  } else if (st == "destroyed" || st == "purged") {
    if (c) {
      co_await docker_.container_remove(c->id, true);
      kLog.info("removed the container of a destroyed sandbox", {{"id", id}});
    }
  }
}

asio::awaitable<void> SandboxService::on_event(const docker::Event& event) {
  if (event.type != "container") co_return;
  auto label = event.attributes.find("sandboxd.id");
  if (label == event.attributes.end()) co_return;
  if (event.action == "oom") {
    oom_seen_[event.id] = true;
    co_return;
  }
  if (event.action != "die" && event.action != "destroy" && event.action != "start") co_return;
  const std::string& id = label->second;
  IdLocks::Guard guard = co_await locks_.lock(id);
  auto loaded = load(id);
  if (!loaded) co_return;
  store::SandboxRow row = std::move(*loaded);
  if (row.container_id && *row.container_id != event.id) co_return;  // an older container
  // Events arrive late: a `die` of our own stop may come after the sandbox was started again,
  // a `start` after it was stopped again. What the container is NOW decides; an event that
  // it contradicts is stale and ignored.
  std::optional<bool> running_now;
  if (event.action == "die" || event.action == "start") {
    auto info = co_await docker_.container_inspect(event.id);
    if (info) running_now = info->state.running;
  }
  if (event.action == "die") {
    bool oom = oom_seen_.erase(event.id) > 0;
    if (running_now.value_or(false)) co_return;  // started again since
    if (row.status != "running" && row.status != "waking") co_return;  // our own stop
    row.status = "stopped";
    row.stop_reason = "exited";
    row.exit_code = event.exit_code();
    row.oom_killed = oom;
    row.stopped_at = clock_.unix_ms();
    row.container_ip.reset();
    const Status saved = co_await save(row);
    kLog.info("sandbox exited", {{"id", id}, {"exit_code", row.exit_code.value_or(-1)}, {"oom", oom}});
    if (saved && on_exit_) on_exit_(row);
  } else if (event.action == "destroy") {
    if (row.status == "destroyed" || row.status == "purged" || !row.container_id) co_return;
    row.container_missing = true;
    row.container_id.reset();
    const bool exited = row.status == "running";
    if (exited) {
      row.status = "stopped";
      row.stop_reason = "exited";
      row.stopped_at = clock_.unix_ms();
    }
    row.container_ip.reset();
    const Status saved = co_await save(row);
    kLog.info("container removed outside sandboxd", {{"id", id}});
    if (saved && exited && on_exit_) on_exit_(row);
  } else if (event.action == "start") {
    if (row.status == "stopped" && running_now.value_or(false)) {
      kLog.info("container started outside sandboxd; stopping it", {{"id", id}});
      co_await docker_.container_stop(event.id, std::chrono::duration_cast<std::chrono::seconds>(
                                                    config_.docker.stop_timeout));
    }
  }
}

}  // namespace sandboxd::control
