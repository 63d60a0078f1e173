#include "process.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string_view>

extern char** environ;

namespace sandboxd::runtimed {

namespace {

// Only async-signal-safe calls from here on: the parent has other threads.
[[noreturn]] void child_main(const SpawnSpec& spec, char* const* argv, char* const* envp,
                             int out_w, int err_w, int report_w) {
  int err = 0;
  if (setsid() < 0) err = errno;
  if (!err && spec.cwd_fd >= 0 && fchdir(spec.cwd_fd) < 0) err = errno;
  int devnull = err ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (!err && devnull < 0) err = errno;
  if (!err && (dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)) err = errno;
  if (!err) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Handlers are reset by exec, but an ignored signal (SIGPIPE) would stay ignored.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);
    // Every other fd must not reach the program.
    if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
      struct rlimit rl {};
      int limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536
                      ? static_cast<int>(rl.rlim_cur)
                      : 65536;
      for (int fd = 3; fd < limit; ++fd) {
        if (fd != report_w) fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
    }
    environ = const_cast<char**>(envp);
    execvp(argv[0], argv);
    err = errno;
  }
  ssize_t ignored = write(report_w, &err, sizeof err);
  (void)ignored;
  _exit(127);
}

bool read_file(const std::string& path, std::string& out, std::size_t max) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  out.clear();
  char buf[8192];
  while (out.size() < max) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return true;
}

template <class F>
void for_each_pid(F&& f) {
  DIR* d = opendir("/proc");
  if (!d) return;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (!end || *end != '\0' || pid <= 0) continue;
    f(static_cast<pid_t>(pid));
  }
  closedir(d);
}

// State letter and parent pid from /proc/<pid>/stat; false when it is gone.
bool read_stat(pid_t pid, char* state, pid_t* ppid) {
  std::string text;
  if (!read_file("/proc/" + std::to_string(pid) + "/stat", text, 4096)) return false;
  // "pid (comm) S ppid ..." where comm may hold spaces and parentheses.
  std::size_t close_paren = text.rfind(')');
  if (close_paren == std::string::npos || close_paren + 4 > text.size()) return false;
  *state = text[close_paren + 2];
  *ppid = static_cast<pid_t>(std::strtol(text.c_str() + close_paren + 4, nullptr, 10));
  return true;
}

}  // namespace

Result<Spawned> spawn_process(const SpawnSpec& spec, int* exec_errno) {
  *exec_errno = 0;
  if (spec.argv.empty()) return Error{Errc::invalid_argument, "empty argv"};
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int out[2], err[2], report[2];
  if (pipe2(out, O_CLOEXEC) < 0) return Error{Errc::io, std::strerror(errno)};
  if (pipe2(err, O_CLOEXEC) < 0) {
    int e = errno;
    close(out[0]);
    close(out[1]);
    return Error{Errc::io, std::strerror(e)};
  }
  if (pipe2(report, O_CLOEXEC) < 0) {
    int e = errno;
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    return Error{Errc::io, std::strerror(e)};
  }
  pid_t pid = fork();
  if (pid == 0) child_main(spec, argv.data(), envp.data(), out[1], err[1], report[1]);
  int fork_errno = errno;
  close(out[1]);
  close(err[1]);
  close(report[1]);
  if (pid < 0) {
    for (int fd : {out[0], err[0], report[0]}) close(fd);
    return Error{Errc::unavailable, std::string("fork failed: ") + std::strerror(fork_errno)};
  }
  // The report pipe closes on a successful exec, or carries the errno of the failure.
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(report[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    close(out[0]);
    close(err[0]);
    *exec_errno = child_errno;
    return Error{Errc::unavailable, std::strerror(child_errno)};
  }
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  return Spawned{pid, out[0], err[0]};
}

bool group_alive(pid_t pgid) { return pgid > 0 && kill(-pgid, 0) == 0; }

bool pid_gone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  char state = 0;
  pid_t ppid = 0;
  if (!read_stat(pid, &state, &ppid)) return true;
  return state == 'Z' || state == 'X';
}

std::vector<pid_t> find_marked(const std::string& marker) {
  std::vector<pid_t> found;
  pid_t self = getpid();
  std::string env;
  for_each_pid([&](pid_t pid) {
    if (pid == self) return;
    if (!read_file("/proc/" + std::to_string(pid) + "/environ", env, 1 << 20)) return;
    std::size_t start = 0;
    while (start < env.size()) {
      std::size_t end = env.find('\0', start);
      if (end == std::string::npos) end = env.size();
      if (std::string_view(env).substr(start, end - start) == marker) {
        if (!pid_gone(pid)) found.push_back(pid);
        return;
      }
      start = end + 1;
    }
  });
  return found;
}

std::vector<pid_t> find_descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  for_each_pid([&](pid_t pid) {
    char state = 0;
    pid_t ppid = 0;
    if (read_stat(pid, &state, &ppid) && state != 'Z' && state != 'X') children.emplace(ppid, pid);
  });
  std::vector<pid_t> out;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    auto [lo, hi] = children.equal_range(p);
    for (auto it = lo; it != hi; ++it) {
      out.push_back(it->second);
      todo.push_back(it->second);
    }
  }
  return out;
}

ExitStatus decode_wait_status(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) s.code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) s.signal = WTERMSIG(status);
  return s;
}

}  // namespace sandboxd::runtimed
