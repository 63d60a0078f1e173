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

std::optional<std::int64_t> parse_rfc3339_ms(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.fraction]Z
  if (t.size() < 20 || t.back() != 'Z') return std::nullopt;
  auto digits = [&](std::size_t at, std::size_t n, int* out) {
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      v = v * 10 + (t[i] - '0');
    }
    *out = v;
    return true;
  };
  int year, mon, day, hour, min, sec;
  if (!digits(0, 4, &year) || t[4] != '-' || !digits(5, 2, &mon) || t[7] != '-' ||
      !digits(8, 2, &day) || (t[10] != 'T' && t[10] != 't') || !digits(11, 2, &hour) ||
      t[13] != ':' || !digits(14, 2, &min) || t[16] != ':' || !digits(17, 2, &sec)) {
    return std::nullopt;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return std::nullopt;
  }
  int ms = 0;
  std::size_t at = 19;
  if (t[at] == '.') {
    ++at;
    int scale = 100;
    std::size_t first = at;
    while (at < t.size() - 1) {
      if (t[at] < '0' || t[at] > '9') return std::nullopt;
      ms += (t[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == first) return std::nullopt;
  }
  if (at != t.size() - 1) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  std::int64_t secs = timegm(&tm);
  return secs * 1000 + ms;
}

}  // namespace sandboxd
