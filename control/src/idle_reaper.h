// The idle reaper's decisions (SPEC §4.1-4.4), apart from any I/O so they can be tested
// with an explicit `now`.
//
// `idle_candidates` applies §4.4's rule to the stored rows and the edge's activity snapshot;
// the control plane then re-checks each candidate under its id lock (`is_idle` again, with a
// fresh row and activity entry) before stopping it. `ActivityFlush` remembers what the last
// flush wrote, so each flush writes only the sandboxes whose edge activity moved (§4.2).
// Plain functions and data; not thread-safe (the control thread owns the flush state).
#pragma once

#include "config/config.h"
#include "edge/activity.h"
#include "store/sandbox_repo.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sandboxd::control {

// Busy signals kept by control (§4.1): ids with an exec in flight or a running task.
using ControlBusy = std::set<std::string>;

// The latest activity of the row: max(stored last_active_at, the edge's last_activity_ms).
std::int64_t last_activity_ms(const store::SandboxRow& row, const edge::SandboxActivity* edge);

// §4.1's definition of idle: running, policy `sleep`, not under keepalive, no busy signal
// (tunnels only when idle.websockets_count_as_activity), and quiet for idle.threshold.
// `edge` is null when the edge never saw the sandbox.
bool is_idle(const store::SandboxRow& row, const edge::SandboxActivity* edge, bool control_busy,
             std::int64_t now_ms, const config::IdleConfig& idle);

// The ids of the idle rows, least recently active first (§4.4 step 1).
std::vector<std::string> idle_candidates(const std::vector<store::SandboxRow>& rows,
                                         const std::vector<edge::SandboxActivity>& activity,
                                         std::int64_t now_ms, const config::IdleConfig& idle,
                                         const ControlBusy& busy = {});

// §4.6 step 2: the band with the smallest `below` that is still above `avail_pct`; nullopt
// when memory is above every band.
std::optional<config::PressureBand> active_band(const std::vector<config::PressureBand>& bands,
                                                double avail_pct);

// §4.6 step 3: the running rows a pressure pass may stop, in stop order. In a band with a
// `stop_idle_for`, those idle (§4.1) for at least that long, least recently active first. In
// a `0s` band every running sandbox: the idle ones first, then the rest (busy, always_on or
// under keepalive), each group least recently active first.
std::vector<std::string> pressure_victims(const std::vector<store::SandboxRow>& rows,
                                          const std::vector<edge::SandboxActivity>& activity,
                                          std::int64_t now_ms, const config::PressureBand& band,
                                          const config::IdleConfig& idle,
                                          const ControlBusy& busy = {});

// The idle settings a pressure band judges with: idle.threshold replaced by stop_idle_for.
config::IdleConfig band_idle(const config::IdleConfig& idle, const config::PressureBand& band);

// The §11 `band` label of a pressure stop: the band's `below`, e.g. "15".
std::string band_label(const config::PressureBand& band);

// What the activity flush writes (§4.2): one mark per sandbox whose edge last_activity_ms
// advanced past what an earlier flush wrote. Call `pending`, write the marks in one
// transaction, then `committed` with them once the write succeeded (a failed write is
// retried by the next flush, since nothing was recorded).
class ActivityFlush {
 public:
  std::vector<store::ActivityMark> pending(const std::vector<edge::SandboxActivity>& activity) const;
  void committed(const std::vector<store::ActivityMark>& marks);

 private:
  std::map<std::string, std::int64_t> flushed_;  // id → last_active_at last written
};

}  // namespace sandboxd::control
