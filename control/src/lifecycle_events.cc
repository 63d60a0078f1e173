#include "lifecycle_events.h"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>

namespace sandboxd::control {

namespace json = boost::json;

namespace {

std::string at_now(const Clock& clock) {
  return format_rfc3339(Clock::WallTime(std::chrono::milliseconds(clock.unix_ms())));
}

json::value text_or_null(std::string_view s) {
  if (s.empty()) return nullptr;
  return json::string(s);
}

}  // namespace

std::string transition_reason(std::string_view from, const store::SandboxRow& to) {
  const std::string& s = to.status;
  if (s == "error") return to.error_reason.value_or("error");
  if (s == "stopping" || s == "stopped") return to.stop_reason.value_or("stopped");
  if (s == "creating") return "create";
  if (s == "waking") return "wake";
  if (s == "destroyed") return "destroy";
  if (s == "purged") return "purge";
  if (s == "running") {
    if (from == "creating") return "created";
    if (from == "stopping") return "stop_failed";  // Docker's stop failed: still running
    return "started";
  }
  return s;
}

std::int64_t lifecycle_floor_ms(store::Store& store, const Clock& clock) {
  std::int64_t floor = clock.unix_ms();
  if (auto rows = store::sandbox_repo::list(store)) {
    for (const auto& row : *rows) floor = std::max(floor, row.updated_at + 1);
  }
  return floor;
}

LifecycleEvents::LifecycleEvents(asio::any_io_executor executor, const Clock& clock,
                                 std::int64_t floor_ms, std::size_t capacity)
    : executor_(std::move(executor)),
      clock_(clock),
      capacity_(std::max<std::size_t>(capacity, 1)),
      horizon_(static_cast<std::uint64_t>(std::max<std::int64_t>(floor_ms, 1)) * 1000 - 1),
      newest_(horizon_) {}

void LifecycleEvents::sandbox_state(std::string_view sandbox_id, std::string_view user_id,
                                    std::string_view from, std::string_view to,
                                    std::string_view reason) {
  json::object o;
  o["sandbox_id"] = sandbox_id;
  o["from"] = text_or_null(from);
  o["to"] = text_or_null(to);
  o["reason"] = reason;
  o["at"] = at_now(clock_);
  add("sandbox.state", sandbox_id, user_id, json::serialize(o));
}

void LifecycleEvents::task_state(const store::TaskRow& task, std::string_view user_id) {
  json::object o;
  o["sandbox_id"] = task.sandbox_id;
  o["task_id"] = task.id;
  o["status"] = task.status;
  o["at"] = at_now(clock_);
  add("task.state", task.sandbox_id, user_id, json::serialize(o));
}

void LifecycleEvents::add(std::string type, std::string_view sandbox_id, std::string_view user_id,
                          std::string data) {
  const auto now = static_cast<std::uint64_t>(std::max<std::int64_t>(clock_.unix_ms(), 0)) * 1000;
  LifecycleEvent e;
  e.id = std::max(newest_ + 1, now);
  e.type = std::move(type);
  e.sandbox_id = sandbox_id;
  e.user_id = user_id;
  e.data = std::move(data);
  newest_ = e.id;
  kept_.push_back(std::move(e));
  if (kept_.size() > capacity_) {
    horizon_ = kept_.front().id;
    kept_.pop_front();
  }
  if (next_) {
    next_->fire();
    next_.reset();
  }
}

std::optional<std::vector<LifecycleEvent>> LifecycleEvents::after(std::uint64_t last_id) const {
  if (last_id < horizon_ || last_id > newest_) return std::nullopt;
  auto first = std::upper_bound(kept_.begin(), kept_.end(), last_id,
                                [](std::uint64_t id, const LifecycleEvent& e) { return id < e.id; });
  return std::vector<LifecycleEvent>(first, kept_.end());
}

std::shared_ptr<OneShot> LifecycleEvents::next() {
  if (!next_) next_ = std::make_shared<OneShot>(executor_);
  return next_;
}

}  // namespace sandboxd::control
