// The activity table (SPEC §4.1-4.2): what the edge knows about each sandbox's use.
//
// The edge fills it; control reads it (idle reaper, metrics, the flush of `last_active_at`).
// It lives in memory, one shard per edge worker. A worker updates only its own shard, with
// relaxed atomics and without a lock on the request path (a lock is taken only when a
// worker sees a sandbox for the first time). Readers call `snapshot()` or `get()` from any
// thread: they merge the shards, summing the counts and taking the latest `last_activity`.
// Counts are a moment's view, consistent per field, not across fields.
// The table must outlive every `EdgeServer` that fills it. Entries are never removed.
#pragma once

#include "base/ulid.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace sandboxd::edge {

struct SandboxActivity {
  Ulid id;
  std::int64_t open_connections = 0;  // client connections whose latest request went here
  std::int64_t open_tunnels = 0;      // WebSocket and other Upgrade tunnels
  std::int64_t in_flight = 0;         // requests from head read to response end (tunnels and
                                      // held requests included)
  std::int64_t held = 0;              // requests held by the wake gate
  std::uint64_t bytes_in = 0;         // body and tunnel bytes from clients
  std::uint64_t bytes_out = 0;        // body and tunnel bytes to clients
  std::int64_t last_activity_ms = 0;  // unix ms of the latest request or byte; 0 = none yet

  // Requests being proxied now: neither held nor tunnels.
  std::int64_t proxied() const { return in_flight - held - open_tunnels; }

  // §4.1's edge signals, tunnels included or not (idle.websockets_count_as_activity). A
  // tunnel's connection and request count as the tunnel only.
  bool busy(bool tunnels_count) const {
    return open_connections - open_tunnels > 0 || proxied() > 0 || held > 0 ||
           (tunnels_count && open_tunnels > 0);
  }
};

class ActivityTable {
 public:
  ActivityTable();
  ~ActivityTable();
  ActivityTable(const ActivityTable&) = delete;
  ActivityTable& operator=(const ActivityTable&) = delete;

  // Every sandbox the edge has seen, merged over the shards. Thread-safe.
  std::vector<SandboxActivity> snapshot() const;
  // One sandbox; nullopt when the edge never saw it. Thread-safe.
  std::optional<SandboxActivity> get(const Ulid& id) const;

  // The edge's side (edge/src/activity_internal.h); not for other modules.
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandboxd::edge
