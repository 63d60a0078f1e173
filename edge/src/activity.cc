#include "activity_internal.h"

#include <ctime>

namespace sandboxd::edge {

namespace detail {

std::int64_t coarse_unix_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ShardEntry& ActivityShard::entry(const Ulid& id) {
  if (auto it = entries_.find(id); it != entries_.end()) return it->second;
  SandboxCounters& shared = table_.counters(id);
  std::lock_guard lock(mu_);
  auto [it, inserted] = entries_.try_emplace(id);
  it->second.shared = &shared;
  return it->second;
}

namespace {

void add(SandboxActivity& a, const ShardEntry& e) {
  a.open_connections += e.open_connections.load(std::memory_order_relaxed);
  a.open_tunnels += e.open_tunnels.load(std::memory_order_relaxed);
  a.in_flight += e.in_flight.load(std::memory_order_relaxed);
  a.bytes_in += e.bytes_in.load(std::memory_order_relaxed);
  a.bytes_out += e.bytes_out.load(std::memory_order_relaxed);
  a.last_activity_ms = std::max(a.last_activity_ms, e.last_activity_ms.load(std::memory_order_relaxed));
}

}  // namespace

void ActivityShard::merge_into(std::unordered_map<Ulid, SandboxActivity, UlidHash>& out) const {
  std::lock_guard lock(mu_);
  for (const auto& [id, e] : entries_) {
    SandboxActivity& a = out[id];
    a.id = id;
    add(a, e);
  }
}

void ActivityShard::merge_one(const Ulid& id, SandboxActivity& out, bool* found) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  *found = true;
  add(out, it->second);
}

}  // namespace detail

detail::ActivityShard& ActivityTable::Impl::add_shard() {
  std::lock_guard lock(mu);
  shards.push_back(std::make_unique<detail::ActivityShard>(*this));
  return *shards.back();
}

detail::SandboxCounters& ActivityTable::Impl::counters(const Ulid& id) {
  std::lock_guard lock(mu);
  auto& slot = shared[id];
  if (!slot) slot = std::make_unique<detail::SandboxCounters>();
  return *slot;
}

ActivityTable::ActivityTable() : impl_(std::make_unique<Impl>()) {}
ActivityTable::~ActivityTable() = default;

std::vector<SandboxActivity> ActivityTable::snapshot() const {
  std::unordered_map<Ulid, SandboxActivity, detail::UlidHash> merged;
  std::lock_guard lock(impl_->mu);
  for (const auto& shard : impl_->shards) shard->merge_into(merged);
  std::vector<SandboxActivity> out;
  out.reserve(merged.size());
  for (auto& [id, a] : merged) {
    if (auto it = impl_->shared.find(id); it != impl_->shared.end()) {
      a.held = it->second->held.load(std::memory_order_relaxed);
    }
    out.push_back(a);
  }
  return out;
}

std::optional<SandboxActivity> ActivityTable::get(const Ulid& id) const {
  SandboxActivity a;
  a.id = id;
  bool found = false;
  std::lock_guard lock(impl_->mu);
  for (const auto& shard : impl_->shards) shard->merge_one(id, a, &found);
  if (auto it = impl_->shared.find(id); it != impl_->shared.end()) {
    found = true;
    a.held = it->second->held.load(std::memory_order_relaxed);
  }
  if (!found) return std::nullopt;
  return a;
}

}  // namespace sandboxd::edge
