// A worker's pool of idle keep-alive connections to upstreams (SPEC §3.8), keyed by
// address:port, at most `max_idle_per_backend` per key, closed after `idle_timeout`.
// A connection taken from the pool is checked first: one that is readable (EOF or stray
// bytes) is discarded. When the route table changes, idle connections whose sandbox left
// `running` or moved to another address are closed. One worker's thread only.
#pragma once

#include "base/ulid.h"
#include "edge/ip_address.h"
#include "edge/route_table.h"
#include "io.h"
#include "worker_counters.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

namespace sandboxd::edge::detail {

struct UpstreamKey {
  IpAddress address;
  std::uint16_t port = 0;
  friend bool operator==(const UpstreamKey&, const UpstreamKey&) = default;
};

struct UpstreamKeyHash {
  std::size_t operator()(const UpstreamKey& k) const noexcept;
};

// One upstream connection and its read buffer (the upstream→client direction's buffer).
// It counts itself in `open_count` (sandboxd_edge_upstream_connections_open) while it lives.
struct UpstreamConn {
  static constexpr std::size_t kBufferSize = 64 * 1024;

  UpstreamConn(asio::any_io_executor ex, UpstreamKey k, const Ulid& id,
               std::atomic<std::int64_t>& open_count)
      : socket(ex), key(std::move(k)), sandbox(id), buffer(kBufferSize), open_(open_count) {
    bump(open_);
  }
  ~UpstreamConn() { drop(open_); }
  UpstreamConn(const UpstreamConn&) = delete;
  UpstreamConn& operator=(const UpstreamConn&) = delete;

  tcp::socket socket;
  UpstreamKey key;
  Ulid sandbox;
  std::vector<char> buffer;
  std::size_t begin = 0;  // unread bytes are buffer[begin, end)
  std::size_t end = 0;
  steady::time_point idle_since{};
  bool reused = false;

  std::string_view pending() const { return {buffer.data() + begin, end - begin}; }
  void consume(std::size_t n) {
    begin += n;
    if (begin == end) begin = end = 0;
  }
  // Room after the unread bytes, compacting first when that gives more.
  asio::mutable_buffer room() {
    if (begin > 0 && end == buffer.size()) {
      std::memmove(buffer.data(), buffer.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    return asio::buffer(buffer.data() + end, buffer.size() - end);
  }

 private:
  std::atomic<std::int64_t>& open_;
};

class UpstreamPool {
 public:
  UpstreamPool(std::size_t max_idle_per_backend, std::chrono::milliseconds idle_timeout)
      : max_idle_(max_idle_per_backend), idle_timeout_(idle_timeout) {}
  // New limits (SIGHUP): `put` and `sweep` use them from now on.
  void set_limits(std::size_t max_idle_per_backend, std::chrono::milliseconds idle_timeout) {
    max_idle_ = max_idle_per_backend;
    idle_timeout_ = idle_timeout;
  }

  // A live idle connection for `key`, or null.
  std::unique_ptr<UpstreamConn> take(const UpstreamKey& key);
  // Keeps `conn` for reuse (its exchange ended cleanly), or closes it when the key is full.
  void put(std::unique_ptr<UpstreamConn> conn);
  // Closes connections idle for longer than idle_timeout.
  void sweep(steady::time_point now);
  // Closes idle connections whose sandbox is no longer running at their address.
  void drop_stale(const RouteTable& table);
  void clear();
  std::size_t idle_count() const { return count_; }

 private:
  std::size_t max_idle_;
  std::chrono::milliseconds idle_timeout_;
  std::size_t count_ = 0;
  std::unordered_map<UpstreamKey, std::deque<std::unique_ptr<UpstreamConn>>, UpstreamKeyHash>
      idle_;
};

}  // namespace sandboxd::edge::detail
