// A hash for Ulid keys in the edge's own maps. Ids are 80 random bits after the timestamp,
// and these maps are keyed only by ids that control created, so folding the bytes is enough.
#pragma once

#include "base/ulid.h"

#include <cstdint>
#include <cstring>

namespace sandboxd::edge::detail {

struct UlidHash {
  std::size_t operator()(const Ulid& id) const noexcept {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::memcpy(&a, id.bytes().data(), 8);
    std::memcpy(&b, id.bytes().data() + 8, 8);
    return static_cast<std::size_t>((a * 0x9E3779B97F4A7C15ull) ^ b);
  }
};

}  // namespace sandboxd::edge::detail
