// What the workers of one EdgeServer share: the options, the route publisher, the activity
// table, the process-wide counters and limits, the workers' metric blocks, and the wake
// coordinator that turns every
// held request of a sandbox, on any worker, into one `Waker::wake` call.
#pragma once

#include "edge/activity.h"
#include "edge/edge_options.h"
#include "edge/edge_server.h"
#include "edge/preview_auth.h"
#include "edge/route_table.h"
#include "edge/waker.h"
#include "io.h"
#include "tls_context.h"
#include "ulid_hash.h"
#include "worker_counters.h"

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace sandboxd::edge::detail {

// Posts work to a worker's event loop from any thread, until the worker closes it; later
// posts are dropped. Lets a Waker's `done` run after the server is gone.
class Mailbox {
 public:
  explicit Mailbox(asio::io_context& ioc) : ioc_(&ioc) {}
  void post(std::function<void()> fn);
  void close();

 private:
  std::mutex mu_;
  asio::io_context* ioc_;
};

// One wake cycle per sandbox for the whole process (SPEC §3.6 rule 2). Each worker joins
// with a listener once per cycle; the first joiner calls the Waker; `done` hands the
// outcome to every listener and ends the cycle. Thread-safe. Kept alive by the Waker's
// `done` callback, so a late `done` finds it.
class WakeCoordinator : public std::enable_shared_from_this<WakeCoordinator> {
 public:
  using Listener = std::function<void(const WakeOutcome&)>;

  explicit WakeCoordinator(Waker& waker) : waker_(waker) {}
  void join(const Ulid& id, Listener listener);
  std::uint64_t calls() const { return calls_.load(std::memory_order_relaxed); }

 private:
  void finish(const Ulid& id, const WakeOutcome& outcome);

  Waker& waker_;
  std::mutex mu_;
  std::unordered_map<Ulid, std::vector<Listener>, UlidHash> cycles_;
  std::atomic<std::uint64_t> calls_{0};
};

// A value published to every worker (certificates, preview keys): a writer swaps it under a
// lock and bumps the generation; a worker copies the pointer only when the generation moved
// since its last look (`SwapCache`), so the request path takes no lock.
template <class T>
class SwapSlot {
 public:
  void publish(std::shared_ptr<const T> value) {
    {
      std::lock_guard lock(mu_);
      value_ = std::move(value);
    }
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  std::shared_ptr<const T> load() const {
    std::lock_guard lock(mu_);
    return value_;
  }
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const T> value_;
  std::atomic<std::uint64_t> generation_{0};
};

// One worker's copy of a SwapSlot's value.
template <class T>
class SwapCache {
 public:
  const std::shared_ptr<const T>& get(const SwapSlot<T>& slot) {
    const std::uint64_t g = slot.generation();
    if (g != generation_) {
      value_ = slot.load();
      generation_ = g;
    }
    return value_;
  }

 private:
  std::shared_ptr<const T> value_;
  std::uint64_t generation_ = 0;
};

// The options in force for new connections (SPEC §9.4: limits, timeouts, trusted proxies,
// ports, wake), replaced whole on SIGHUP. A reader takes the current snapshot with one
// acquire load and may keep the reference while the server lives: every published snapshot
// is kept until then (reloads are rare and a snapshot is small), so a connection holds its
// own for its whole life without counting references.
class TuningSlot {
 public:
  explicit TuningSlot(const EdgeOptions& first) { publish(first); }
  const EdgeOptions& current() const { return *current_.load(std::memory_order_acquire); }
  // From any thread.
  void publish(EdgeOptions next) {
    std::lock_guard lock(mu_);
    published_.push_back(std::make_unique<const EdgeOptions>(std::move(next)));
    current_.store(published_.back().get(), std::memory_order_release);
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<const EdgeOptions>> published_;
  std::atomic<const EdgeOptions*> current_{nullptr};
};

// max_connections_per_client (§3.10): IPv4 per address, IPv6 per /64.
class ClientLimiter {
 public:
  // False when the client is at its limit (nothing is counted then).
  bool try_add(const asio::ip::address& ip, std::size_t limit);
  void remove(const asio::ip::address& ip);

 private:
  using Key = std::array<std::uint8_t, 9>;
  static Key key_of(const asio::ip::address& ip);
  std::mutex mu_;
  std::map<Key, std::size_t> counts_;
};

struct ServerState {
  ServerState(EdgeOptions o, RouteTablePublisher& r, Waker& waker, ActivityTable& a)
      : options(std::move(o)), tuning(options), routes(r), activity(a),
        wake(std::make_shared<WakeCoordinator>(waker)) {}

  // As started: the listeners, workers, TLS on or off, the suffix and the access log come
  // from here for the server's life; everything else is read from `tuning`.
  const EdgeOptions options;
  TuningSlot tuning;
  RouteTablePublisher& routes;
  ActivityTable& activity;
  std::shared_ptr<WakeCoordinator> wake;
  std::uint16_t port = 0;
  std::uint16_t https_port = 0;

  // §3.15 hot swap: the certificate set new handshakes use, and the certificates it was
  // built from (under tls_mu), to build it again when tls.min_version changes.
  std::shared_ptr<TicketKeys> tickets = std::make_shared<TicketKeys>();
  SwapSlot<TlsContexts> tls;
  std::mutex tls_mu;
  TlsCertificates tls_source;
  std::atomic<std::uint64_t> tls_reloads_ok{0};
  std::atomic<std::uint64_t> tls_reloads_error{0};
  // §3.14: the keys that verify preview tokens, the cookie lifetime, the login redirect.
  SwapSlot<PreviewAuthSettings> preview_auth;

  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> open_connections{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> held{0};
  std::atomic<std::uint64_t> upstream_connects{0};
  std::atomic<std::uint64_t> upstream_reuses{0};
  ClientLimiter clients;

  // One block per worker (SPEC §3.2: counters per worker, summed by readers). Added while
  // the server starts, before any reader; never removed, so they outlive the workers.
  std::vector<std::unique_ptr<WorkerCounters>> counters;
  WorkerCounters& add_counters() {
    counters.push_back(std::make_unique<WorkerCounters>());
    return *counters.back();
  }

  // Signalled whenever a connection ends, for stop().
  std::mutex mu;
  std::condition_variable cv;
  void connection_closed();
  bool wait_connections_below(std::uint64_t n, steady::time_point until);
};

}  // namespace sandboxd::edge::detail
