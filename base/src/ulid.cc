#include "base/ulid.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sandboxd {

namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// Value of an ASCII character in Crockford base32, or -1. Lower case is accepted; the
// aliases I, L, O and the excluded U are not.
constexpr int digit_value(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  for (int i = 0; i < 32; ++i) {
    if (kAlphabet[i] == c) return i;
  }
  return -1;
}

void fill_random(std::uint8_t* out, std::size_t n) {
  while (n > 0) {
    ssize_t got = ::getrandom(out, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      // Without a CSPRNG ids would be guessable; there is no safe way to continue.
      throw std::runtime_error(std::string("getrandom failed: ") + std::strerror(errno));
    }
    out += got;
    n -= static_cast<std::size_t>(got);
  }
}

}  // namespace

Result<Ulid> Ulid::parse(std::string_view text) {
  if (text.size() != kLength) {
    return Error{Errc::invalid_argument, "an id is 26 characters, got " +
                                             std::to_string(text.size())};
  }
  // 26 digits * 5 bits = 130 bits; the first digit carries only 3 (so it is 0-7).
  std::array<int, kLength> digits{};
  for (std::size_t i = 0; i < kLength; ++i) {
    int v = digit_value(text[i]);
    if (v < 0) {
      return Error{Errc::invalid_argument,
                   "an id has only the characters 0-9 and A-Z without I, L, O, U; position " +
                       std::to_string(i + 1) + " is not one of them"};
    }
    digits[i] = v;
  }
  if (digits[0] > 7) {
    return Error{Errc::invalid_argument, "an id starts with a character from 0 to 7"};
  }
  Bytes bytes{};
  // Shift the 130-bit big-endian number into 16 bytes, most significant first.
  unsigned acc = 0;
  int bits = -2;  // the two leading zero bits of the first digit are dropped
  std::size_t out = 0;
  for (std::size_t i = 0; i < kLength; ++i) {
    acc = (acc << 5) | static_cast<unsigned>(digits[i]);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes[out++] = static_cast<std::uint8_t>((acc >> bits) & 0xff);
    }
  }
  return Ulid(bytes);
}

std::string Ulid::str() const {
  std::string out(kLength, '0');
  // Read 5 bits at a time from the 130-bit value whose top two bits are zero.
  for (std::size_t i = 0; i < kLength; ++i) {
    int bit = static_cast<int>(i) * 5 - 2;  // index of the digit's first bit in the 128 bits
    unsigned v = 0;
    for (int b = 0; b < 5; ++b, ++bit) {
      v <<= 1;
      if (bit >= 0) v |= (bytes_[bit / 8] >> (7 - bit % 8)) & 1u;
    }
    out[i] = kAlphabet[v];
  }
  return out;
}

std::uint64_t Ulid::unix_ms() const {
  std::uint64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = (ms << 8) | bytes_[i];
  return ms;
}

Ulid UlidGenerator::next() {
  std::uint64_t ms = static_cast<std::uint64_t>(clock_.unix_ms());
  std::lock_guard lock(mu_);
  if (ms <= last_ms_ && last_ms_ != 0) {
    // Same (or an earlier, after a clock step) millisecond: increment the previous id so
    // ids from this generator keep increasing.
    for (int i = 15; i >= 0; --i) {
      if (++last_[i] != 0) break;
    }
    return Ulid(last_);
  }
  last_ms_ = ms;
  for (int i = 5; i >= 0; --i) {
    last_[i] = static_cast<std::uint8_t>(ms & 0xff);
    ms >>= 8;
  }
  fill_random(last_.data() + 6, 10);
  return Ulid(last_);
}

Ulid new_ulid() {
  static UlidGenerator gen;
  return gen.next();
}

}  // namespace sandboxd
