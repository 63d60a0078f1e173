// runtimed: the supervisor inside every sandbox (SPEC §6). It is the container's main
// process; it reads its settings and secret from the run directory, answers sandboxd on a
// unix socket there, keeps the dev server running and runs agent tasks one at a time.
//
//   runtimed [--run-dir DIR] [--workspace DIR]
//
// --run-dir (default /run/sandboxd) holds runtimed.json and runtimed.sock; --workspace
// (default /home/sandbox) is the tenant's workspace root. Exit statuses: 0 after a graceful
// shutdown, 78 when runtimed.json is missing or invalid, 1 when runtimed cannot start, 2 for
// a usage error.
#include "api.h"
#include "base/log.h"
#include "context.h"
#include "devserver.h"
#include "http_server.h"
#include "journal.h"
#include "process.h"
#include "reaper.h"
#include "runtimed/settings.h"
#include "runtimed/text.h"
#include "task_files.h"
#include "task_manager.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>

extern char** environ;

namespace sandboxd::runtimed {
namespace {

constexpr log::Logger kLog{"runtimed"};
constexpr int kExitConfig = 78;
constexpr std::size_t kMaxSettingsFile = 64 * 1024;
constexpr auto kShutdownGrace = std::chrono::seconds(8);  // inside Docker's 10 s
constexpr auto kRetention = std::chrono::hours(24 * 7);

struct Options {
  std::string run_dir = "/run/sandboxd";
  std::string workspace = "/home/sandbox";
};

constexpr std::string_view kUsage =
    "usage: runtimed [--run-dir DIR] [--workspace DIR]\n"
    "  --run-dir DIR     where runtimed.json is read and runtimed.sock is made "
    "(default /run/sandboxd)\n"
    "  --workspace DIR   the workspace root (default /home/sandbox)\n";

std::string absolute(const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  char buf[PATH_MAX];
  if (!::getcwd(buf, sizeof buf)) return path;
  return std::string(buf) + "/" + path;
}

class Runtime {
 public:
  Runtime(Context& ctx, asio::io_context& ioc, std::string socket_path)
      : ctx_(ctx),
        ioc_(ioc),
        socket_path_(std::move(socket_path)),
        signals_(ioc, SIGTERM, SIGINT, SIGHUP),
        devserver_(ctx),
        tasks_(ctx, [this] { return std::string(devserver_.state()); }),
        api_(ctx, tasks_, devserver_),
        server_(ioc.get_executor(), api_) {}

  int start(RecoveryReport report) {
    tasks_.load(std::move(report));
    if (Status st = server_.listen(socket_path_); !st) {
      kLog.error("cannot listen", {{"error", st.error().detail}});
      return 1;
    }
    devserver_.start();
    tasks_.start();
    arm_signals();
    kLog.info("runtimed ready", {{"socket", socket_path_}, {"pid", ::getpid()}});
    return 0;
  }

 private:
  void arm_signals() {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        devserver_.restart(std::nullopt, std::nullopt);
      } else if (!shutting_down_) {
        shutting_down_ = true;
        kLog.info("shutting down", {{"signal", signal_name(sig)}});
        asio::co_spawn(ioc_, [this] { return shutdown(); }, asio::detached);
      }
      arm_signals();
    });
  }

  asio::awaitable<void> shutdown() {
    using steady = std::chrono::steady_clock;
    server_.close();
    tasks_.begin_shutdown();
    devserver_.begin_shutdown();
    auto deadline = steady::now() + kShutdownGrace;
    co_await devserver_.wait_stopped(deadline);
    co_await tasks_.wait_stopped(deadline);

    // Whatever ignored SIGTERM. As PID 1, kill(-1) reaches every process of the container;
    // elsewhere (under an init, or on a developer's machine) only runtimed's descendants.
    if (::getpid() == 1) {
      ::kill(-1, SIGKILL);
    } else {
      auto job = [] { return find_descendants(::getpid()); };
      std::vector<pid_t> left = co_await offload(ctx_.pool, job);
      for (pid_t p : left) ::kill(p, SIGKILL);
    }
    auto flush_deadline = steady::now() + std::chrono::seconds(3);
    co_await devserver_.wait_stopped(flush_deadline);
    co_await tasks_.wait_stopped(flush_deadline);
    ::unlink(socket_path_.c_str());
    kLog.info("runtimed stopped");
    // Everything is on disk; skip destructors of objects other threads still touch.
    std::_Exit(0);
  }

  Context& ctx_;
  asio::io_context& ioc_;
  std::string socket_path_;
  asio::signal_set signals_;
  DevServer devserver_;
  TaskManager tasks_;
  Api api_;
  HttpServer server_;
  bool shutting_down_ = false;
};

int run(const Options& options) {
  log::set_fd(1);
  ::prctl(PR_SET_DUMPABLE, 0);
  ::umask(022);
  // Orphans must reach runtimed also when an init runs as PID 1.
  if (::getpid() != 1) ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  ::signal(SIGPIPE, SIG_IGN);

  std::string settings_path = options.run_dir + "/runtimed.json";
  auto text = read_small_file(settings_path, kMaxSettingsFile);
  ::unlink(settings_path.c_str());
  if (!text) {
    kLog.error("runtimed configuration missing", {{"path", settings_path}});
    return kExitConfig;
  }
  auto settings = parse_settings(*text);
  if (!settings) {
    kLog.error("runtimed configuration invalid", {{"error", settings.error().detail}});
    return kExitConfig;
  }

  Context ctx;
  ctx.settings = std::move(*settings);
  ctx.workspace = absolute(options.workspace);
  while (ctx.workspace.size() > 1 && ctx.workspace.back() == '/') ctx.workspace.pop_back();
  ctx.state_dir = ctx.workspace + "/.sandboxd";
  ctx.tasks_dir = ctx.state_dir + "/tasks";
  for (char** e = environ; e && *e; ++e) ctx.base_env.emplace_back(*e);
  ctx.booted_at = ctx.clock->wall();
  kLog.info("runtimed starting", {{"sandbox", ctx.settings.sandbox_id},
                                  {"project_dir", ctx.settings.project_dir},
                                  {"dev_port", ctx.settings.dev.port},
                                  {"pid", ::getpid()}});

  if (Status made = make_dirs(ctx.tasks_dir, 0700); !made) {
    kLog.error("cannot create the task directory", {{"error", made.error().detail}});
    return 1;
  }

  // Threads made from here on inherit a mask without the signals the loop handles.
  sigset_t handled;
  sigemptyset(&handled);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&handled, s);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);
  asio::thread_pool pool(2);
  pthread_sigmask(SIG_UNBLOCK, &handled, nullptr);

  asio::io_context ioc(1);
  ctx.loop = ioc.get_executor();
  ctx.pool = pool.get_executor();
  ctx.writer = asio::make_strand(pool.get_executor());
  Reaper reaper(ioc.get_executor());
  ctx.reaper = &reaper;
  reaper.reap();

  RecoveryReport report =
      recover_tasks(ctx.tasks_dir, RequestDefaults{ctx.settings.tasks.timeout_s, ctx.settings.project_dir},
                    ctx.clock->wall(), kRetention, "waiting");

  Runtime runtime(ctx, ioc, options.run_dir + "/runtimed.sock");
  if (int rc = runtime.start(std::move(report)); rc != 0) return rc;
  ioc.run();
  return 0;
}

}  // namespace
}  // namespace sandboxd::runtimed

int main(int argc, char** argv) {
  sandboxd::runtimed::Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    if (arg == "--run-dir") {
      if (!value(options.run_dir)) return (std::cerr << sandboxd::runtimed::kUsage, 2);
    } else if (arg == "--workspace") {
      if (!value(options.workspace)) return (std::cerr << sandboxd::runtimed::kUsage, 2);
    } else if (arg == "--version") {
      std::cout << "runtimed " << sandboxd::runtimed::kRuntimedVersion << "\n";
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << sandboxd::runtimed::kUsage;
      return 0;
    } else {
      std::cerr << "runtimed: unknown argument " << arg << "\n" << sandboxd::runtimed::kUsage;
      return 2;
    }
  }
  return sandboxd::runtimed::run(options);
}
