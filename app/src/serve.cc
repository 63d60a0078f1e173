// `sandboxd serve`: load the config, open the store, start the control plane, and run
// until SIGTERM or SIGINT.

#include "base/log.h"
#include "commands.h"
#include "config/print.h"
#include "config/legacy_env.h"
#include "config/reload.h"
#include "control/control_plane.h"
#include "load.h"
#include "store/store.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace sandboxd::app {

namespace {

constexpr log::Logger kLog{"app"};

// The real-time signal a fatal control-plane error sends to the main thread.
int fatal_signal() { return SIGRTMIN; }

std::string_view tls_mode_name(config::TlsMode m) { return config::to_string(m); }

void log_effective_config(const config::Config& c, const std::string& file) {
  std::string suffix = c.preview.suffix.empty() ? "preview." + c.preview.domain : c.preview.suffix;
  kLog.info("effective config",
            {{"file", file.empty() ? std::string("(defaults)") : file},
             {"data_dir", c.data_dir},
             {"control", c.control.listen.str()},
             {"edge_http", c.edge.http.listen.str()},
             {"preview_suffix", suffix},
             {"tls", tls_mode_name(c.tls.mode)},
             {"docker_socket", c.docker.socket},
             {"docker_image", c.docker.image},
             {"docker_network", c.docker.network},
             {"tokens", c.auth.tokens.size()},
             {"auth_required", config::to_string(c.auth.required)}});
  kLog.debug("effective config yaml", {{"yaml", config::effective_yaml(c)}});
}

Status prepare_data_dir(const std::string& dir) {
  struct stat st {};
  if (lstat(dir.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) return Error{Errc::conflict, "data_dir " + dir + " is a symlink"};
    if (!S_ISDIR(st.st_mode)) return Error{Errc::conflict, "data_dir " + dir + " is not a directory"};
    return ok();
  }
  // Create the missing parents too (like mkdir -p), each 0755.
  for (std::size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      std::string part = dir.substr(0, i);
      if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
        return Error{Errc::io, "cannot create " + part + ": " + std::strerror(errno)};
      }
    }
  }
  return ok();
}

// A container cannot get more open files than the engine's own hard limit; on hosts where
// the whole machine is capped lower than sandbox.nofile (containers, CI runners), creates
// would fail with "error setting rlimit". Our own hard limit is the best evidence we have.
void clamp_nofile(config::Config& cfg) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_max == RLIM_INFINITY) return;
  if (lim.rlim_max >= cfg.sandbox.nofile) return;
  kLog.warn("sandbox.nofile is above this host's open-files limit; using the host's",
            {{"configured", cfg.sandbox.nofile}, {"host_limit", lim.rlim_max}});
  cfg.sandbox.nofile = static_cast<std::uint32_t>(lim.rlim_max);
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& k : names) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// SIGHUP (SPEC §9.4): the file is read and validated again. Invalid: every error is logged
// and nothing changes. Valid: the changed `live` keys go to the modules as one new config
// (edge limits and timeouts for new connections; auth, wake, idle, pressure, tasks, files
// and the rest from the next request or tick; log.* at once; TLS files re-read; acme.* from
// the next attempt); changed `restart` keys keep their running values and are named.
// `running` becomes the config now in force.
void reload_config(const CommonFlags& flags, config::Config& running,
                   control::ControlPlane& plane) {
  Loaded next = load_config(flags);
  if (!next.result.ok()) {
    for (const auto& d : next.result.errors) kLog.error("SIGHUP: config error", {{"problem", d.str()}});
    kLog.error("SIGHUP: the config is invalid; nothing changed",
               {{"problems", next.result.errors.size()}, {"file", next.result.file}});
    plane.reload_failed();
    return;
  }
  for (const auto& w : next.result.warnings) kLog.warn("config warning", {{"problem", w.str()}});
  config::Config& c = *next.result.config;
  clamp_nofile(c);
  const std::vector<std::string> pending = config::restart_changes(running, c);
  const std::vector<std::string> applied = config::live_changes(running, c);
  config::Config live = config::keep_restart_keys(running, std::move(c));
  log::set_level(live.log.level);
  log::set_format(live.log.format);
  plane.reload(live, !pending.empty());
  running = std::move(live);
  if (!pending.empty()) kLog.warn("config reloaded; these changes need a restart: " + joined(pending));
  kLog.info("config reloaded", {{"applied", applied.size()},
                                {"pending", pending.size()},
                                {"keys", joined(applied)}});
}

}  // namespace

int run_serve(const CommonFlags& flags) {
  Loaded loaded = load_config(flags);
  if (loaded.exit_code != kExitOk) return loaded.exit_code;
  config::Config& cfg = *loaded.result.config;
  log::set_level(cfg.log.level);
  log::set_format(cfg.log.format);
  for (const auto& w : loaded.result.warnings) kLog.warn("config warning", {{"problem", w.str()}});
  // SPEC §9.5: the original's variables are not read; each set one is named once.
  for (const auto& w : config::legacy_env_warnings(config::process_env_vars())) kLog.warn(w);
  clamp_nofile(cfg);
  log_effective_config(cfg, loaded.result.file);

  // Block the signals we wait for before any thread starts, so every thread inherits the
  // mask and only sigwait below receives them.
  sigset_t wait_set;
  sigemptyset(&wait_set);
  sigaddset(&wait_set, SIGTERM);
  sigaddset(&wait_set, SIGINT);
  sigaddset(&wait_set, SIGHUP);
  sigaddset(&wait_set, SIGUSR1);
  sigaddset(&wait_set, fatal_signal());
  pthread_sigmask(SIG_BLOCK, &wait_set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (auto st = prepare_data_dir(cfg.data_dir); !st) {
    kLog.error("cannot prepare data_dir", {{"error", st.error().message()}});
    return kExitConfig;
  }
  store::StoreOptions store_options;
  store_options.data_dir = cfg.data_dir;
  store_options.busy_timeout = cfg.store.busy_timeout;
  store_options.read_connections = static_cast<int>(cfg.store.read_connections);
  auto store = store::Store::open(store_options);
  if (!store) {
    kLog.error("cannot open the store", {{"error", store.error().message()}});
    std::fprintf(stderr, "sandboxd: %s\n", store.error().detail.c_str());
    return store.error().code == Errc::too_new ? kExitTooNew : kExitConfig;
  }
  kLog.info("store open", {{"path", (*store)->db_path().string()},
                           {"instance", (*store)->instance_id().str()}});

  static std::atomic<bool> fatal_seen{false};
  static Error fatal_error;
  auto plane = control::ControlPlane::start(cfg, **store, [](const Error& e) {
    if (fatal_seen.exchange(true)) return;
    fatal_error = e;
    kill(getpid(), fatal_signal());
  });
  if (!plane) {
    kLog.error("cannot start", {{"error", plane.error().message()}});
    std::fprintf(stderr, "sandboxd: %s\n", plane.error().detail.c_str());
    return kExitConfig;
  }
  kLog.info("sandboxd started", {{"control_port", (*plane)->port()},
                                 {"edge_port", (*plane)->edge_port()},
                                 {"edge_https_port", (*plane)->edge_https_port()}});

  int exit_code = kExitOk;
  config::Config running = cfg;  // what the last reload applied
  for (;;) {
    int sig = 0;
    if (sigwait(&wait_set, &sig) != 0) continue;
    if (sig == SIGHUP || sig == SIGUSR1) {
      // SPEC §3.11, §9.4: both reopen the access log (for logrotate); SIGHUP then reloads.
      const char* name = sig == SIGHUP ? "SIGHUP" : "SIGUSR1";
      if (Status reopened = (*plane)->reopen_logs(); !reopened) {
        kLog.error(std::string(name) + ": cannot reopen the access log",
                   {{"error", reopened.error().message()}});
      } else {
        kLog.info(std::string(name) + ": access log reopened");
      }
      if (sig == SIGHUP) reload_config(flags, running, **plane);
      continue;
    }
    if (sig == fatal_signal()) {
      kLog.error("fatal", {{"error", fatal_error.message()}});
      std::fprintf(stderr, "sandboxd: %s\n", fatal_error.detail.c_str());
      exit_code = kExitConfig;
    } else {
      kLog.info("stopping", {{"signal", strsignal(sig)}});
    }
    break;
  }
  (*plane)->stop();
  plane->reset();
  (*store)->close();
  kLog.info("stopped");
  return exit_code;
}

}  // namespace sandboxd::app
