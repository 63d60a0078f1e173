#include "ctl_runner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace sandboxd::testing {

std::ostream& operator<<(std::ostream& os, const Ctl& c) {
  return os << "exit " << c.status << "\n--- stdout\n" << c.out << "--- stderr\n" << c.err;
}

Ctl ctl(const std::vector<std::string>& args, const std::vector<std::string>& env,
        const std::string& input, std::chrono::milliseconds deadline) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    return {};
  signal(SIGPIPE, SIG_IGN);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    unsetenv("SANDBOXD_URL");
    unsetenv("SANDBOXD_TOKEN");
    for (const auto& e : env) putenv(strdup(e.c_str()));
    // SANDBOXCTL_TEST_BIN runs another build of the binary (the ASan one).
    const char* bin = std::getenv("SANDBOXCTL_TEST_BIN");
    std::vector<char*> argv{const_cast<char*>(bin && *bin ? bin : SANDBOXCTL_BIN)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (!input.empty()) {
    [[maybe_unused]] ssize_t n = write(in[1], input.data(), input.size());
  }
  close(in[1]);
  Ctl r;
  auto until = std::chrono::steady_clock::now() + deadline;
  int fds[2] = {out[0], err[0]};
  bool timed_out = false;
  while (fds[0] >= 0 || fds[1] >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    if (poll(p, 2, static_cast<int>(left.count())) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t n = read(fds[i], buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      } else {
        close(fds[i]);
        fds[i] = -1;
      }
    }
  }
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  if (timed_out) kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!timed_out) r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

FakeServer::FakeServer(std::function<std::string(const std::string&, int)> script)
    : script_(std::move(script)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  listen(listen_fd_, 16);
  socklen_t len = sizeof a;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  if (pipe2(stop_, O_CLOEXEC) != 0) return;
  thread_ = std::thread([this] { serve(); });
}

FakeServer::~FakeServer() {
  if (stop_[1] >= 0) {
    [[maybe_unused]] ssize_t n = write(stop_[1], "x", 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int fd : {listen_fd_, stop_[0], stop_[1]}) {
    if (fd >= 0) close(fd);
  }
}

std::vector<std::string> FakeServer::requests() {
  std::lock_guard lock(mu_);
  return requests_;
}

void FakeServer::serve() {
  for (int n = 0;; ++n) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) continue;
    if (p[1].revents) return;
    int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    // One request: the head, then as many body bytes as Content-Length says.
    std::string req;
    char buf[4096];
    std::size_t want = std::string::npos;
    for (;;) {
      std::size_t end = req.find("\r\n\r\n");
      if (end != std::string::npos && want == std::string::npos) {
        want = end + 4;
        std::size_t cl = req.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) want += std::stoul(req.substr(cl + 16));
      }
      if (want != std::string::npos && req.size() >= want) break;
      pollfd q[2] = {{c, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (poll(q, 2, -1) < 0) continue;
      if (q[1].revents) {
        close(c);
        return;
      }
      ssize_t got = read(c, buf, sizeof buf);
      if (got <= 0) break;
      req.append(buf, static_cast<std::size_t>(got));
    }
    {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
    }
    std::string answer = script_(req, n);
    std::string_view rest = answer;
    while (!rest.empty()) {
      ssize_t w = send(c, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (w <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(w));
    }
    close(c);
  }
}

}  // namespace sandboxd::testing
