#include "upstream_pool.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace sandboxd::edge::detail {

namespace {

// An idle connection must have nothing to read: EOF, stray bytes or an error all mean the
// upstream is done with it.
bool still_quiet(tcp::socket& socket) {
  char byte = 0;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Closes with a reset instead of a FIN. For a connection the pool has no room for: its
// exchange ended cleanly, so nothing is lost, and a graceful close would leave a TIME_WAIT
// entry toward the container's address and port for each request above the pool size; under
// a steady load those pile up by the ten thousand and connect() then spends most of the
// edge's CPU searching for a free local port.
void close_without_time_wait(tcp::socket& socket) {
  const linger reset{1, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  error_code ignored;
  socket.close(ignored);
}

}  // namespace

std::size_t UpstreamKeyHash::operator()(const UpstreamKey& k) const noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (std::uint8_t b : k.address.bytes()) h = (h ^ b) * 1099511628211ull;
  h = (h ^ k.port) * 1099511628211ull;
  return h;
}

std::unique_ptr<UpstreamConn> UpstreamPool::take(const UpstreamKey& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  auto& list = it->second;
  while (!list.empty()) {
    // The most recently used first: it is the least likely to have been closed.
    std::unique_ptr<UpstreamConn> conn = std::move(list.back());
    list.pop_back();
    --count_;
    if (still_quiet(conn->socket)) {
      conn->reused = true;
      if (list.empty()) idle_.erase(it);
      return conn;
    }
  }
  idle_.erase(it);
  return nullptr;
}

void UpstreamPool::put(std::unique_ptr<UpstreamConn> conn) {
  if (max_idle_ == 0 || !conn->pending().empty()) return;
  auto& list = idle_[conn->key];
  if (list.size() >= max_idle_) {
    close_without_time_wait(conn->socket);
    return;
  }
  conn->idle_since = steady::now();
  conn->begin = conn->end = 0;
  list.push_back(std::move(conn));
  ++count_;
}

void UpstreamPool::sweep(steady::time_point now) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& list = it->second;
    while (!list.empty() && now - list.front()->idle_since >= idle_timeout_) {
      list.pop_front();
      --count_;
    }
    it = list.empty() ? idle_.erase(it) : std::next(it);
  }
}

void UpstreamPool::drop_stale(const RouteTable& table) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& list = it->second;
    for (auto c = list.begin(); c != list.end();) {
      const Route* route = table.find((*c)->sandbox);
      const bool keep = route != nullptr && route->state == RouteState::running &&
                        route->address == (*c)->key.address;
      if (keep) {
        ++c;
      } else {
        c = list.erase(c);
        --count_;
      }
    }
    it = list.empty() ? idle_.erase(it) : std::next(it);
  }
}

void UpstreamPool::clear() {
  idle_.clear();
  count_ = 0;
}

}  // namespace sandboxd::edge::detail
