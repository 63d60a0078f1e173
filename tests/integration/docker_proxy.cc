#include "docker_proxy.h"

#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace sandboxd::testing {

namespace {

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw std::runtime_error("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Bounded: a peer that stops reading for 5 s counts as gone, so the proxy thread always gets
// back to its loop (and to the stop request of the destructor).
bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 5000) <= 0) return false;
      continue;
    }
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

struct Pair {
  int client = -1;
  int engine = -1;
  bool holding = false;  // the client's bytes are swallowed from now on
};

}  // namespace

DockerProxy::DockerProxy(std::string listen_path, std::string engine_path, const std::string& hold)
    : listen_path_(std::move(listen_path)), engine_path_(std::move(engine_path)), hold_(hold) {
  sockaddr_un addr = unix_address(listen_path_);
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::unlink(listen_path_.c_str());
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0 || ::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("proxy setup failed: ") + std::strerror(errno));
  }
  thread_ = std::thread([this] { serve(); });
}

DockerProxy::~DockerProxy() {
  char byte = 0;
  (void)!::write(stop_pipe_[1], &byte, 1);
  thread_.join();
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
  ::close(listen_fd_);
  ::unlink(listen_path_.c_str());
}

bool DockerProxy::wait_held(std::chrono::milliseconds deadline) const {
  return wait_until([this] { return held_.load(); }, deadline);
}

std::string DockerProxy::held_request() const { return held_ ? held_request_ : std::string(); }

void DockerProxy::serve() {
  std::vector<Pair> pairs;
  char buf[65536];
  for (;;) {
    std::vector<pollfd> fds = {{stop_pipe_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const auto& p : pairs) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.engine, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) break;
    // Only the pairs that were polled; one accepted below waits for the next round.
    const std::size_t polled = pairs.size();
    if (fds[1].revents & POLLIN) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        sockaddr_un addr = unix_address(engine_path_);
        int engine = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (engine >= 0 && ::connect(engine, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
          pairs.push_back({client, engine, false});
        } else {
          ::close(client);
          if (engine >= 0) ::close(engine);
        }
      }
    }
    std::vector<bool> closed(pairs.size(), false);
    for (std::size_t i = 0; i < polled; ++i) {
      Pair& p = pairs[i];
      const pollfd& from_client = fds[2 + 2 * i];
      const pollfd& from_engine = fds[3 + 2 * i];
      if (from_client.revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = ::recv(p.client, buf, sizeof buf, 0);
        if (n <= 0) {
          closed[i] = true;
        } else if (!p.holding) {
          std::string chunk(buf, static_cast<std::size_t>(n));
          if (!held_ && std::regex_search(chunk, hold_)) {
            p.holding = true;
            held_request_ = chunk;
            held_ = true;
          } else if (!write_all(p.engine, buf, static_cast<std::size_t>(n))) {
            closed[i] = true;
          }
        }
      }
      if (!closed[i] && (from_engine.revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = ::recv(p.engine, buf, sizeof buf, 0);
        if (n <= 0 || !write_all(p.client, buf, static_cast<std::size_t>(n))) closed[i] = true;
      }
    }
    std::vector<Pair> open;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      if (closed[i]) {
        ::close(pairs[i].client);
        ::close(pairs[i].engine);
      } else {
        open.push_back(pairs[i]);
      }
    }
    pairs = std::move(open);
  }
  for (const auto& p : pairs) {
    ::close(p.client);
    ::close(p.engine);
  }
}

}  // namespace sandboxd::testing
