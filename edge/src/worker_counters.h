// One worker's block of the edge's metric counters (edge/edge_metrics.h).
//
// Only the owning worker's thread writes a block (or the thread that joined it, during
// teardown), so an update is a relaxed load and store, without a locked instruction; any
// thread may read. Blocks are cache-line aligned so that two workers never share a line.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <type_traits>

#include "edge/edge_metrics.h"

namespace sandboxd::edge::detail {

// Single-writer counter updates.
template <class T>
inline void bump(std::atomic<T>& a, std::type_identity_t<T> n = 1) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
template <class T>
inline void drop(std::atomic<T>& a, std::type_identity_t<T> n = 1) {
  a.store(a.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
}

template <class E>
constexpr std::size_t idx(E e) {
  return static_cast<std::size_t>(e);
}

class AtomicHistogram {
 public:
  void observe(std::chrono::steady_clock::duration d);
  void add_to(DurationHistogram& out) const;

 private:
  std::array<std::atomic<std::uint64_t>, kDurationBuckets.size() + 1> counts_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

struct alignas(64) WorkerCounters {
  std::array<std::array<std::array<std::atomic<std::uint64_t>, kSourceNames.size()>,
                        kClassNames.size()>,
             kListenerNames.size()>
      requests{};
  std::array<std::atomic<std::int64_t>, kListenerNames.size()> connections_open{};
  std::array<std::atomic<std::uint64_t>, kListenerNames.size()> connections_total{};
  std::array<std::atomic<std::uint64_t>, kTlsVersionNames.size()> tls_handshakes_ok{};
  std::atomic<std::uint64_t> tls_handshakes_failed{0};
  std::array<std::array<std::array<std::atomic<std::uint64_t>, kPreviewReasons>,
                        kPreviewViaNames.size()>,
             kPreviewResultNames.size()>
      preview_auth{};
  std::array<AtomicHistogram, kSourceNames.size()> request_duration;
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::array<std::atomic<std::uint64_t>, kRejectNames.size()> rejected{};
  std::array<std::atomic<std::int64_t>, kTunnelProtocolNames.size()> tunnels_open{};
  std::array<std::atomic<std::uint64_t>, kTunnelEndNames.size()> tunnels_closed{};
  std::array<std::atomic<std::uint64_t>, kEdgeErrorCodes.size()> errors{};
  std::atomic<std::int64_t> upstream_open{0};
  std::atomic<std::uint64_t> upstream_retries{0};
  std::array<std::atomic<std::uint64_t>, kPortWaitNames.size()> port_waits{};
  std::array<AtomicHistogram, kHeldResultNames.size()> held_seconds;
  AtomicHistogram wake_duration;
  std::array<AtomicHistogram, kEdgeWakePhaseNames.size()> wake_phases;

  void reject(RejectReason r) { bump(rejected[idx(r)]); }
  void error(std::size_t code_index) { bump(errors[code_index]); }
  // Adds this block into `out`.
  void add_to(EdgeMetrics& out) const;
};

}  // namespace sandboxd::edge::detail
