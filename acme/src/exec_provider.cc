// exec: `<command> present|cleanup <fqdn> <value>`, as lego's exec provider calls its hook.
// No shell, only PATH in the environment, a default signal state, killed at the timeout.
#include "acme/dns_provider.h"

#include "base/log.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace sandboxd::acme {
namespace {

constexpr log::Logger kLog{"acme"};
constexpr std::size_t kMaxOutput = 4096;
constexpr const char* kPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

class SpawnAttr {
 public:
  SpawnAttr() {
    posix_spawnattr_init(&attr_);
    posix_spawn_file_actions_init(&actions_);
  }
  ~SpawnAttr() {
    posix_spawnattr_destroy(&attr_);
    posix_spawn_file_actions_destroy(&actions_);
  }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  posix_spawnattr_t attr_;
  posix_spawn_file_actions_t actions_;
};

class ExecProvider final : public DnsProvider {
 public:
  explicit ExecProvider(ExecOptions o) : opts_(std::move(o)) {}

  std::string_view name() const override { return "exec"; }
  Status present(const std::string& fqdn, const std::string& value) override {
    return run("present", fqdn, value);
  }
  Status cleanup(const std::string& fqdn, const std::string& value) override {
    return run("cleanup", fqdn, value);
  }

 private:
  Status run(const char* action, const std::string& fqdn, const std::string& value) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return Error{Errc::unavailable, std::string("exec: pipe: ") + std::strerror(errno)};
    }
    SpawnAttr sa;
    // A process group of its own, so the timeout kills what the hook started too; the
    // signal mask and dispositions of sandboxd's threads are not inherited.
    sigset_t none;
    sigset_t defaults;
    sigemptyset(&none);
    sigfillset(&defaults);
    posix_spawnattr_setflags(&sa.attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&sa.attr_, 0);
    posix_spawnattr_setsigmask(&sa.attr_, &none);
    posix_spawnattr_setsigdefault(&sa.attr_, &defaults);
    posix_spawn_file_actions_addopen(&sa.actions_, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&sa.actions_, pipe_fds[1], 1);
    posix_spawn_file_actions_adddup2(&sa.actions_, pipe_fds[1], 2);

    std::string cmd = opts_.command;
    std::string act = action;
    std::string f = fqdn;
    std::string v = value;
    char* argv[] = {cmd.data(), act.data(), f.data(), v.data(), nullptr};
    std::string path = kPath;
    char* envp[] = {path.data(), nullptr};
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, cmd.c_str(), &sa.actions_, &sa.attr_, argv, envp);
    ::close(pipe_fds[1]);
    if (rc != 0) {
      ::close(pipe_fds[0]);
      return Error{Errc::invalid_argument, "exec: cannot run acme.dns.exec.command " +
                                               opts_.command + ": " + std::strerror(rc)};
    }

    const auto deadline = std::chrono::steady_clock::now() + opts_.timeout;
    std::string output;
    bool timed_out = false;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      pollfd p{pipe_fds[0], POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
      if (n < 0 && errno != EINTR) break;
      if (n <= 0) continue;
      char buf[4096];
      const ssize_t got = ::read(pipe_fds[0], buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;  // EOF: the hook (and what it started) closed the pipe
      if (output.size() < kMaxOutput) {
        output.append(buf, std::min<std::size_t>(static_cast<std::size_t>(got),
                                                 kMaxOutput - output.size()));
      }
    }
    ::close(pipe_fds[0]);

    int status = 0;
    for (;;) {
      if (!timed_out && std::chrono::steady_clock::now() >= deadline) timed_out = true;
      if (timed_out) {
        // The whole process group: the hook and whatever it started.
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
      }
      const pid_t w = ::waitpid(pid, &status, timed_out ? 0 : WNOHANG);
      if (w == pid) break;
      if (w < 0 && errno != EINTR) break;
      if (w == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();

    if (timed_out) {
      return Error{Errc::timeout, std::string("exec: ") + action + " hook killed after " +
                                      std::to_string(opts_.timeout.count() / 1000) + "s" +
                                      (output.empty() ? "" : ": " + output)};
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      const std::string how = WIFEXITED(status)
                                  ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                  : "killed by signal " + std::to_string(WTERMSIG(status));
      kLog.warn("exec hook failed", {{"action", action}, {"fqdn", fqdn}, {"output", output}});
      return Error{Errc::unavailable, std::string("exec: ") + action + " hook " + how +
                                          (output.empty() ? "" : ": " + output)};
    }
    kLog.debug("exec hook ran", {{"action", action}, {"fqdn", fqdn}, {"output", output}});
    return ok();
  }

  ExecOptions opts_;
};

}  // namespace

Result<std::unique_ptr<DnsProvider>> make_exec_provider(ExecOptions options) {
  if (options.command.empty() || options.command.front() != '/') {
    return Error{Errc::invalid_argument, "acme.dns.exec.command must be an absolute path"};
  }
  if (::access(options.command.c_str(), X_OK) != 0) {
    return Error{Errc::invalid_argument,
                 "acme.dns.exec.command " + options.command + " is not executable"};
  }
  return std::unique_ptr<DnsProvider>(std::make_unique<ExecProvider>(std::move(options)));
}

}  // namespace sandboxd::acme
