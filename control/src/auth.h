// Bearer-token authentication of the control API (SPEC §2.3).
//
// The SHA-256 of a presented token is compared in constant time with the SHA-256 of every
// configured secret, with no early exit, so neither the position of a match nor the
// length of a secret leaks through timing. Immutable after construction; safe to share.
#pragma once

#include "config/config.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::control {

enum class AuthOutcome {
  anonymous,  // no Authorization header, and auth is not required
  missing,    // no header, auth required → 401
  malformed,  // not "Bearer <1-512 visible ASCII>" → 401 invalid_token
  unknown,    // well-formed, matches no secret → 401 invalid_token
  ok,
};

struct AuthResult {
  AuthOutcome outcome = AuthOutcome::anonymous;
  std::string token_name;  // when ok
  bool read_only = false;  // when ok
  std::string user_id;     // when ok: the one external user the token acts for; empty: all

  // The actor written into audit rows: "token:<name>" or "anonymous".
  std::string actor() const;
};

class Authenticator {
 public:
  Authenticator(const std::vector<config::ApiToken>& tokens, bool required);

  // `authorization` is the raw header value, if the header was present.
  AuthResult check(std::optional<std::string_view> authorization) const;

  bool required() const { return required_; }

 private:
  struct Entry {
    std::string name;
    std::array<std::uint8_t, 32> hash;
    bool read_only;
    std::string user_id;
  };
  std::vector<Entry> entries_;
  bool required_;
};

std::array<std::uint8_t, 32> sha256(std::string_view data);

}  // namespace sandboxd::control
