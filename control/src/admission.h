// Admission (SPEC §4.6): a wake and a create both start a container, so both pass here
// first. A caller takes one of `wake.max_concurrent` slots, queueing in FIFO order, then
// memory must pass: MemAvailable − `wake.admission.estimate_per_sandbox` ≥
// `wake.admission.min_available_memory` (a share of MemTotal or a size). When it fails and
// pressure is enabled, one pressure pass runs at once, judged with the `stop_idle_for` of
// the band with the highest `below`, and memory is checked again. Still short: the answer
// is `low_memory`, 503 `sandbox_capacity` with Retry-After 30 (the edge turns a wake's into
// `wake_refused`), counted in sandboxd_admission_refusals_total{kind, reason}.
//
// An admitted caller holds its Ticket (the slot) until its container start has returned.
// Memory comes from `read_memory` (/proc/meminfo, or the test hook of metrics.h); when it
// cannot be read, memory is not judged.
//
// Threading: admit() and the slot counts run on the control thread only; the refusal
// counters are atomics, so a scrape may read them from anywhere. The Config must outlive it.
#pragma once

#include "api_error.h"
#include "async_util.h"
#include "config/config.h"
#include "metrics.h"

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>

namespace sandboxd::control {

enum class AdmissionKind { wake, create };

// The memory floor of `a` on a host of `total_bytes`.
std::uint64_t memory_floor_bytes(const config::AdmissionConfig& a, std::uint64_t total_bytes);
// §4.6: whether `available_bytes` admits one more sandbox on this host.
bool memory_admits(std::uint64_t available_bytes, std::uint64_t total_bytes,
                   const config::AdmissionConfig& a);

// The refusal of a create or start for low memory (SPEC §2.2, §2.5.1): v1 gets the
// envelope, legacy routes `{"error":"low_memory","code":"sandbox_capacity",
// "mem_available_percent":<n>}`; both with Retry-After: 30.
ApiError low_memory_refusal(double available_percent);

class Admission {
 public:
  // Holds an admission slot until destroyed or released.
  class Ticket {
   public:
    Ticket() = default;
    explicit Ticket(Slots::Guard slot) : slot_(std::move(slot)) {}
    void release() { slot_.release(); }

   private:
    Slots::Guard slot_;
  };

  // One pressure pass judged with `band`, from host memory `mem`, stopping victims until
  // the estimate of available memory reaches `target_bytes`. Returns the bytes it estimates
  // it freed.
  using PressurePass = std::function<asio::awaitable<std::uint64_t>(
      config::PressureBand band, HostMemory mem, std::uint64_t target_bytes)>;
  using ReadMemory = std::function<std::optional<HostMemory>()>;

  Admission(const config::Config& config, ReadMemory read_memory);

  void set_pressure_pass(PressurePass pass) { pressure_pass_ = std::move(pass); }
  // SIGHUP, on the control thread: wake.max_concurrent for admissions from now on.
  void set_max_concurrent(std::size_t count) { slots_.resize(std::max<std::size_t>(1, count)); }

  // Waits for a slot, then judges memory (with one pressure pass when that helps). The
  // ticket holds the slot; an error is low_memory_refusal, and the slot is free again.
  asio::awaitable<ApiResult<Ticket>> admit(AdmissionKind kind);

  std::size_t in_progress() const { return slots_.in_use(); }
  std::size_t queued() const { return slots_.waiting(); }

  // sandboxd_admission_refusals_total, family line included.
  void write_metrics(TextWriter& w) const;

 private:
  const config::Config& config_;
  ReadMemory read_memory_;
  PressurePass pressure_pass_;
  Slots slots_;
  std::array<std::atomic<std::uint64_t>, 2> refusals_{};  // by AdmissionKind
};

}  // namespace sandboxd::control
