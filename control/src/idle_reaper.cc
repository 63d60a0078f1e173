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

std::optional<config::PressureBand> active_band(const std::vector<config::PressureBand>& bands,
                                                double avail_pct) {
  std::optional<config::PressureBand> best;
  for (const auto& b : bands) {
    if (b.below > avail_pct && (!best || b.below < best->below)) best = b;
  }
  return best;
}

config::IdleConfig band_idle(const config::IdleConfig& idle, const config::PressureBand& band) {
  config::IdleConfig c = idle;
  c.threshold = band.stop_idle_for;
  return c;
}

std::string band_label(const config::PressureBand& band) {
  std::string text = std::to_string(band.below);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

std::vector<std::string> pressure_victims(const std::vector<store::SandboxRow>& rows,
                                          const std::vector<edge::SandboxActivity>& activity,
                                          std::int64_t now_ms, const config::PressureBand& band,
                                          const config::IdleConfig& idle, const ControlBusy& busy) {
  std::vector<std::string> ids = idle_candidates(rows, activity, now_ms, band_idle(idle, band), busy);
  if (band.stop_idle_for.count() > 0) return ids;
  // The last band: every running sandbox, the ones that did not qualify after the others.
  std::map<std::string, const edge::SandboxActivity*> by_id;
  for (const auto& a : activity) by_id[a.id.str()] = &a;
  std::vector<std::pair<std::int64_t, std::string>> rest;
  for (const auto& row : rows) {
    if (row.status != "running" || std::find(ids.begin(), ids.end(), row.id) != ids.end()) continue;
    auto it = by_id.find(row.id);
    rest.emplace_back(last_activity_ms(row, it == by_id.end() ? nullptr : it->second), row.id);
  }
  std::sort(rest.begin(), rest.end());
  for (auto& [at, id] : rest) ids.push_back(std::move(id));
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
