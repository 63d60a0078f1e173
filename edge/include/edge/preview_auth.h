// Preview tokens and the host-scoped session cookie of private previews (SPEC §3.14).
//
// A preview token is a compact JWS with header {"alg":"HS256","kid":…} signed with one of
// `auth.preview.secrets`; its claims name the sandbox (`sub`), the audience
// `sandbox-preview`, an `exp`, and optionally `nbf`, `iat` and `port`. The cookie is the
// same kind of token, signed with the FIRST key, with audience `sandbox-preview-cookie` and
// the exact host it was set for. Pure functions: the caller passes the time.
#pragma once

#include "base/ulid.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::edge {

struct PreviewKey {
  std::string kid;
  std::string secret;  // at least 32 bytes (config checks); never logged
};

// What the edge needs to check private previews; swapped whole (SIGHUP).
struct PreviewAuthSettings {
  std::vector<PreviewKey> keys;  // any verifies, the first signs cookies
  std::chrono::seconds cookie_ttl{12 * 3600};
  std::string redirect_url;  // auth.preview.redirect_url template, "" = the 401 page
};

// Why a credential was refused; `ok` when it was not. Names are the metric's `reason`.
enum class TokenCheck : std::uint8_t {
  ok,
  malformed,
  bad_alg,
  unknown_kid,
  bad_signature,
  bad_audience,
  expired,
  not_yet_valid,
  wrong_sandbox,
  wrong_port,
};
inline constexpr std::array<std::string_view, 10> kTokenCheckNames{
    "",        "malformed",     "bad_alg",       "unknown_kid",   "bad_signature",
    "bad_audience", "expired", "not_yet_valid", "wrong_sandbox", "wrong_port"};

inline constexpr std::size_t kMaxTokenBytes = 4096;
inline constexpr std::int64_t kClockSkewSeconds = 60;

// A preview token for sandbox `id` on `port`, at unix time `now`.
TokenCheck check_preview_token(std::string_view token, const std::vector<PreviewKey>& keys,
                               const Ulid& id, std::uint16_t port, std::int64_t now);

// A session cookie for sandbox `id` on `host` (lower-case, no port), at unix time `now`.
TokenCheck check_preview_cookie(std::string_view token, const std::vector<PreviewKey>& keys,
                                const Ulid& id, std::string_view host, std::int64_t now);

// A cookie value signed with `key`, valid until `exp` (unix seconds).
std::string make_preview_cookie(const PreviewKey& key, const Ulid& id, std::string_view host,
                                std::int64_t exp);

// A preview token signed with `key` (POST /v1/sandboxes/{id}/preview-token).
std::string make_preview_token(const PreviewKey& key, const Ulid& id,
                               std::optional<std::uint16_t> port, std::int64_t iat,
                               std::int64_t exp);

}  // namespace sandboxd::edge
