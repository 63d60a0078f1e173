// SHA-256 of migration texts, and migration naming.
#include <openssl/evp.h>

#include <array>
#include <cstdio>
#include <cstdlib>

#include "store/migration.h"

namespace sandboxd::store {

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1) {
    // Only an allocation failure inside OpenSSL gets here: "cannot happen" aborts loudly.
    std::fputs("sandboxd: EVP_Digest(sha256) failed\n", stderr);
    std::abort();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0x0f];
  }
  return out;
}

std::string migration_label(const Migration& m) {
  char number[16];
  std::snprintf(number, sizeof number, "%04d", m.version);
  return std::string(number) + "_" + m.name;
}

}  // namespace sandboxd::store
