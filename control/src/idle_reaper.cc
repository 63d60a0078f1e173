#include "idle_reaper.h"

#include <algorithm>
#include <utility>

namespace sandboxd::control {

std::int64_t last_activity_ms(const store::SandboxRow& row, const edge::SandboxActivity* edge) {
  return std::max(row.last_active_at, edge ? edge->last_activity_ms : 0);
}

bool is_idle(const store::SandboxRow& row, const edge::SandboxActivity* edge, bool control_busy,
             std::int64_t now_ms, const config::IdleConfig& idle) {
  if (row.status != "running" || row.idle_policy != "sleep") return false;
  if (row.keepalive_until && *row.keepalive_until > now_ms) return false;
  if (control_busy) return false;
  if (edge && edge->busy(idle.websockets_count_as_activity)) return false;
  return now_ms - last_activity_ms(row, edge) >= idle.threshold.count();
}

std::vector<std::string> idle_candidates(const std::vector<store::SandboxRow>& rows,
                                         const std::vector<edge::SandboxActivity>& activity,
                                         std::int64_t now_ms, const config::IdleConfig& idle,
                                         const ControlBusy& busy) {
  std::map<std::string, const edge::SandboxActivity*> by_id;
  for (const auto& a : activity) by_id[a.id.str()] = &a;
  std::vector<std::pair<std::int64_t, std::string>> found;
  for (const auto& row : rows) {
    auto it = by_id.find(row.id);
    const edge::SandboxActivity* edge = it == by_id.end() ? nullptr : it->second;
    if (is_idle(row, edge, busy.contains(row.id), now_ms, idle)) {
      found.emplace_back(last_activity_ms(row, edge), row.id);
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> ids;
  ids.reserve(found.size());
  for (auto& [at, id] : found) ids.push_back(std::move(id));
  return ids;
}

std::vector<store::ActivityMark> ActivityFlush::pending(
    const std::vector<edge::SandboxActivity>& activity) const {
  std::vector<store::ActivityMark> marks;
  for (const auto& a : activity) {
    if (a.last_activity_ms <= 0) continue;
    std::string id = a.id.str();
    auto it = flushed_.find(id);
    if (it != flushed_.end() && it->second >= a.last_activity_ms) continue;
    marks.push_back(store::ActivityMark{std::move(id), a.last_activity_ms});
  }
  return marks;
}

void ActivityFlush::committed(const std::vector<store::ActivityMark>& marks) {
  for (const auto& m : marks) {
    auto& at = flushed_[m.id];
    at = std::max(at, m.last_active_at);
  }
}

}  // namespace sandboxd::control
