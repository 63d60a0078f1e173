#include "worker_counters.h"

#include <algorithm>
#include <string>

namespace sandboxd::edge {

namespace {

std::size_t index_of(std::string_view code) {
  auto it = std::find(kEdgeErrorCodes.begin(), kEdgeErrorCodes.end(), code);
  return static_cast<std::size_t>(it - kEdgeErrorCodes.begin());
}

}  // namespace

std::size_t edge_error_index(std::string_view code) {
  const std::size_t i = index_of(code);
  return i < kEdgeErrorCodes.size() ? i : index_of("internal");
}

std::size_t edge_rejection_index(int status) {
  const std::size_t i = index_of("http_" + std::to_string(status));
  return i < kEdgeErrorCodes.size() ? i : index_of("http_400");
}

std::uint64_t DurationHistogram::count() const {
  std::uint64_t n = 0;
  for (std::uint64_t c : counts) n += c;
  return n;
}

}  // namespace sandboxd::edge

namespace sandboxd::edge::detail {

namespace {

template <class T, std::size_t N>
void add_all(std::array<T, N>& out, const std::array<std::atomic<T>, N>& in) {
  for (std::size_t i = 0; i < N; ++i) out[i] += in[i].load(std::memory_order_relaxed);
}

}  // namespace

void AtomicHistogram::observe(std::chrono::steady_clock::duration d) {
  const double seconds = std::chrono::duration<double>(d).count();
  const auto bucket = std::lower_bound(kDurationBuckets.begin(), kDurationBuckets.end(), seconds);
  bump(counts_[static_cast<std::size_t>(bucket - kDurationBuckets.begin())]);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  bump(sum_ns_, static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0)));
}

void AtomicHistogram::add_to(DurationHistogram& out) const {
  add_all(out.counts, counts_);
  out.sum += static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
}

void WorkerCounters::add_to(EdgeMetrics& out) const {
  for (std::size_t l = 0; l < requests.size(); ++l) {
    for (std::size_t c = 0; c < requests[l].size(); ++c) add_all(out.requests[l][c], requests[l][c]);
    out.connections_open[l] += static_cast<std::uint64_t>(
        std::max<std::int64_t>(connections_open[l].load(std::memory_order_relaxed), 0));
  }
  add_all(out.connections_total, connections_total);
  add_all(out.tls_handshakes_ok, tls_handshakes_ok);
  out.tls_handshakes_failed += tls_handshakes_failed.load(std::memory_order_relaxed);
  for (std::size_t r = 0; r < preview_auth.size(); ++r) {
    for (std::size_t v = 0; v < preview_auth[r].size(); ++v) add_all(out.preview_auth[r][v], preview_auth[r][v]);
  }
  for (std::size_t s = 0; s < request_duration.size(); ++s) {
    request_duration[s].add_to(out.request_duration[s]);
  }
  out.bytes_in += bytes_in.load(std::memory_order_relaxed);
  out.bytes_out += bytes_out.load(std::memory_order_relaxed);
  add_all(out.rejected, rejected);
  add_all(out.tunnels_open, tunnels_open);
  add_all(out.tunnels_closed, tunnels_closed);
  add_all(out.errors, errors);
  out.upstream_connections_open += upstream_open.load(std::memory_order_relaxed);
  out.upstream_retries += upstream_retries.load(std::memory_order_relaxed);
  add_all(out.port_waits, port_waits);
  for (std::size_t r = 0; r < held_seconds.size(); ++r) held_seconds[r].add_to(out.held_seconds[r]);
  wake_duration.add_to(out.wake_duration);
  for (std::size_t p = 0; p < wake_phases.size(); ++p) wake_phases[p].add_to(out.wake_phases[p]);
}

}  // namespace sandboxd::edge::detail
