// ULIDs: the one id format of sandboxd (sandboxes, tasks, execs, the instance).
//
// `Ulid::parse` is THE parser for every entry point (URL path, JSON, query, Host, label,
// directory name): exactly 26 characters of Crockford base32, any case, first character
// 0-7. Crockford's aliases (I, L, O), U, hyphens and anything else are rejected, never
// mapped. `str()` gives the canonical upper-case form, the only one stored or logged.
// `UlidGenerator` is thread-safe; ids it makes within one millisecond strictly increase.
#pragma once

#include "base/clock.h"
#include "base/result.h"

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace sandboxd {

class Ulid {
 public:
  static constexpr std::size_t kLength = 26;
  using Bytes = std::array<std::uint8_t, 16>;  // big-endian: 48-bit ms, then 80 random bits

  Ulid() = default;  // all zero: "00000000000000000000000000"
  explicit Ulid(const Bytes& bytes) : bytes_(bytes) {}

  static Result<Ulid> parse(std::string_view text);

  std::string str() const;
  const Bytes& bytes() const { return bytes_; }
  std::uint64_t unix_ms() const;

  friend auto operator<=>(const Ulid&, const Ulid&) = default;

 private:
  Bytes bytes_{};
};

class UlidGenerator {
 public:
  explicit UlidGenerator(const Clock& clock = system_clock()) : clock_(clock) {}

  Ulid next();

 private:
  const Clock& clock_;
  std::mutex mu_;
  std::uint64_t last_ms_ = 0;
  Ulid::Bytes last_{};
};

// A process-wide generator on the system clock.
Ulid new_ulid();

}  // namespace sandboxd
