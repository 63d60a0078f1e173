// Time as a dependency.
//
// Code that decides anything by time (idle thresholds, renewals, ULID timestamps, store
// rows) asks a `Clock` instead of the system, so tests can drive time by hand. `wall()` is
// calendar time (stored, logged, shown); `mono()` only measures intervals and never jumps.
// `system_clock()` is thread-safe and lives for the whole process; a `ManualClock` is
// thread-safe too and is advanced only by `advance()` / `set_wall()`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd {

class Clock {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  using MonoTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual WallTime wall() const = 0;
  virtual MonoTime mono() const = 0;

  // Unix milliseconds UTC: the unit of every time column in the store.
  std::int64_t unix_ms() const;
};

// The real clocks of the machine.
Clock& system_clock();

class ManualClock final : public Clock {
 public:
  // Starts at 2026-01-01T00:00:00Z unless told otherwise.
  ManualClock();
  explicit ManualClock(WallTime start);

  WallTime wall() const override;
  MonoTime mono() const override;

  // Moves both clocks forward.
  void advance(std::chrono::nanoseconds d);
  // Moves only calendar time, as an NTP step would; mono() is untouched.
  void set_wall(WallTime t);

 private:
  std::atomic<std::int64_t> wall_ns_;
  std::atomic<std::int64_t> mono_ns_{0};
};

// RFC 3339 UTC with seconds, e.g. "2026-11-22T15:02:07Z".
std::string format_rfc3339(Clock::WallTime t);
// "YYYY-MM-DDTHH:MM:SS[.fraction]Z" to unix ms; nullopt when malformed.
std::optional<std::int64_t> parse_rfc3339_ms(std::string_view text);

}  // namespace sandboxd
