#include "server_state.h"

namespace sandboxd::edge::detail {

void Mailbox::post(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  if (ioc_ != nullptr) asio::post(*ioc_, std::move(fn));
}

void Mailbox::close() {
  std::lock_guard lock(mu_);
  ioc_ = nullptr;
}

void WakeCoordinator::join(const Ulid& id, Listener listener) {
  bool first = false;
  {
    std::lock_guard lock(mu_);
    auto& listeners = cycles_[id];
    first = listeners.empty();
    listeners.push_back(std::move(listener));
  }
  if (!first) return;
  calls_.fetch_add(1, std::memory_order_relaxed);
  std::weak_ptr<WakeCoordinator> self = weak_from_this();
  waker_.wake(id, [self, id](WakeOutcome outcome) {
    if (auto coordinator = self.lock()) coordinator->finish(id, outcome);
  });
}

void WakeCoordinator::finish(const Ulid& id, const WakeOutcome& outcome) {
  std::vector<Listener> listeners;
  {
    std::lock_guard lock(mu_);
    auto it = cycles_.find(id);
    if (it == cycles_.end()) return;
    listeners = std::move(it->second);
    cycles_.erase(it);
  }
  for (auto& listener : listeners) listener(outcome);
}

ClientLimiter::Key ClientLimiter::key_of(const asio::ip::address& ip) {
  Key key{};
  if (ip.is_v4()) {
    const auto b = ip.to_v4().to_bytes();
    key[0] = 4;
    for (std::size_t i = 0; i < 4; ++i) key[i + 1] = b[i];
  } else {
    const auto b = ip.to_v6().to_bytes();
    key[0] = 6;
    for (std::size_t i = 0; i < 8; ++i) key[i + 1] = b[i];  // the /64
  }
  return key;
}

bool ClientLimiter::try_add(const asio::ip::address& ip, std::size_t limit) {
  const Key key = key_of(ip);
  std::lock_guard lock(mu_);
  std::size_t& n = counts_[key];
  if (n >= limit) {
    if (n == 0) counts_.erase(key);
    return false;
  }
  ++n;
  return true;
}

void ClientLimiter::remove(const asio::ip::address& ip) {
  const Key key = key_of(ip);
  std::lock_guard lock(mu_);
  auto it = counts_.find(key);
  if (it == counts_.end()) return;
  if (--it->second == 0) counts_.erase(it);
}

void ServerState::connection_closed() {
  std::lock_guard lock(mu);
  cv.notify_all();
}

bool ServerState::wait_connections_below(std::uint64_t n, steady::time_point until) {
  std::unique_lock lock(mu);
  return cv.wait_until(lock, until, [&] {
    return open_connections.load(std::memory_order_relaxed) < n;
  });
}

}  // namespace sandboxd::edge::detail
