#include "base/clock.h"

#include <ctime>

namespace sandboxd {

namespace {

class SystemClock final : public Clock {
 public:
  WallTime wall() const override { return std::chrono::system_clock::now(); }
  MonoTime mono() const override { return std::chrono::steady_clock::now(); }
};

// 2026-01-01T00:00:00Z
constexpr std::int64_t kManualEpochNs = 1767225600LL * 1000 * 1000 * 1000;

}  // namespace

std::int64_t Clock::unix_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(wall().time_since_epoch()).count();
}

Clock& system_clock() {
  static SystemClock clock;
  return clock;
}

ManualClock::ManualClock() : wall_ns_(kManualEpochNs) {}

ManualClock::ManualClock(WallTime start)
    : wall_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch())
                   .count()) {}

Clock::WallTime ManualClock::wall() const {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(
      std::chrono::nanoseconds(wall_ns_.load())));
}

Clock::MonoTime ManualClock::mono() const {
  return MonoTime(std::chrono::duration_cast<MonoTime::duration>(
      std::chrono::nanoseconds(mono_ns_.load())));
}

void ManualClock::advance(std::chrono::nanoseconds d) {
  wall_ns_ += d.count();
  mono_ns_ += d.count();
}

void ManualClock::set_wall(WallTime t) {
  wall_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string format_rfc3339(Clock::WallTime t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(
      std::chrono::floor<std::chrono::seconds>(t));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace sandboxd
