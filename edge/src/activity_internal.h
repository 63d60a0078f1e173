// The edge's side of the activity table (edge/activity.h): shards written by one worker
// each, plus the few per-sandbox counts that limits need process-wide (busy upstream
// connections and tunnels for max_connections_per_sandbox, held requests for the caps).
//
// A worker finds its `ShardEntry` for a sandbox with `ActivityShard::entry`: without a lock
// when the entry exists (the worker is the only writer of its map's structure), under the
// shard's lock when it inserts one, so readers can walk the map under that same lock.
// Entries are never erased, so their addresses stay valid for the table's life.
#pragma once

#include "edge/activity.h"
#include "ulid_hash.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace sandboxd::edge::detail {

// Shared by every worker: one per sandbox.
struct SandboxCounters {
  std::atomic<std::int64_t> busy{0};  // busy upstream connections + tunnels
  std::atomic<std::int64_t> held{0};
};

struct ShardEntry {
  std::atomic<std::int64_t> open_connections{0};
  std::atomic<std::int64_t> open_tunnels{0};
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::int64_t> last_activity_ms{0};
  SandboxCounters* shared = nullptr;  // set once, before the entry is visible

  // Stores `now_ms` at most once a second (SPEC §4.2), so the cache line stays quiet.
  void touch(std::int64_t now_ms) {
    if (now_ms - last_activity_ms.load(std::memory_order_relaxed) >= 1000) {
      last_activity_ms.store(now_ms, std::memory_order_relaxed);
    }
  }
};

class ActivityShard {
 public:
  explicit ActivityShard(ActivityTable::Impl& table) : table_(table) {}

  // The owning worker only.
  ShardEntry& entry(const Ulid& id);

  // Any thread: adds this shard's counts into `out`.
  void merge_into(std::unordered_map<Ulid, SandboxActivity, UlidHash>& out) const;
  void merge_one(const Ulid& id, SandboxActivity& out, bool* found) const;

 private:
  ActivityTable::Impl& table_;
  mutable std::mutex mu_;  // guards the map's structure, not the counters
  std::unordered_map<Ulid, ShardEntry, UlidHash> entries_;
};

// Unix milliseconds from the coarse real-time clock (a few ms of resolution, no syscall).
std::int64_t coarse_unix_ms();

}  // namespace sandboxd::edge::detail

namespace sandboxd::edge {

struct ActivityTable::Impl {
  // Workers call it at start; the shard lives as long as the table.
  detail::ActivityShard& add_shard();
  // The process-wide counters of a sandbox (created on first use).
  detail::SandboxCounters& counters(const Ulid& id);

  mutable std::mutex mu;
  std::vector<std::unique_ptr<detail::ActivityShard>> shards;
  std::unordered_map<Ulid, std::unique_ptr<detail::SandboxCounters>, detail::UlidHash> shared;
};

}  // namespace sandboxd::edge
