#include "edge/preview_auth.h"

#include "base/base64.h"
#include "base/json.h"
#include "base/json_escape.h"

#include <boost/json/object.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace sandboxd::edge {

namespace {

constexpr std::string_view kTokenAudience = "sandbox-preview";
constexpr std::string_view kCookieAudience = "sandbox-preview-cookie";

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n);
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::optional<std::int64_t> integer(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->get_uint64());
  }
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return std::nullopt;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

bool has_audience(const boost::json::object& claims, std::string_view want) {
  const auto* aud = claims.if_contains("aud");
  if (aud == nullptr) return false;
  if (aud->is_string()) return aud->get_string() == want;
  if (aud->is_array()) {
    for (const auto& a : aud->get_array()) {
      if (a.is_string() && a.get_string() == want) return true;
    }
  }
  return false;
}

// The signature and the claims common to tokens and cookies; `claims` is filled when the
// signature holds.
TokenCheck verify(std::string_view token, const std::vector<PreviewKey>& keys,
                  std::string_view audience, const Ulid& id, std::int64_t now,
                  boost::json::object* claims) {
  if (token.empty() || token.size() > kMaxTokenBytes) return TokenCheck::malformed;
  const std::size_t a = token.find('.');
  const std::size_t b = a == std::string_view::npos ? a : token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos) {
    return TokenCheck::malformed;
  }
  const auto header_text = base64url_decode(token.substr(0, a));
  const auto payload_text = base64url_decode(token.substr(a + 1, b - a - 1));
  const auto signature = base64url_decode(token.substr(b + 1));
  if (!header_text || !payload_text || !signature) return TokenCheck::malformed;
  auto header = parse_json_object(*header_text);
  if (!header) return TokenCheck::malformed;
  const auto* alg = header->if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256") return TokenCheck::bad_alg;
  const auto* kid = header->if_contains("kid");
  if (kid == nullptr || !kid->is_string()) return TokenCheck::unknown_kid;
  const PreviewKey* key = nullptr;
  for (const PreviewKey& k : keys) {
    if (k.kid == kid->get_string()) key = &k;
  }
  if (key == nullptr) return TokenCheck::unknown_kid;
  const std::string expected = hmac_sha256(key->secret, token.substr(0, b));
  if (signature->size() != expected.size() ||
      CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
    return TokenCheck::bad_signature;
  }
  auto parsed = parse_json_object(*payload_text);
  if (!parsed) return TokenCheck::malformed;
  *claims = std::move(*parsed);
  if (!has_audience(*claims, audience)) return TokenCheck::bad_audience;
  const auto exp = integer(*claims, "exp");
  if (!exp) return TokenCheck::malformed;
  if (now > *exp + kClockSkewSeconds) return TokenCheck::expired;
  if (const auto nbf = integer(*claims, "nbf"); nbf && *nbf > now + kClockSkewSeconds) {
    return TokenCheck::not_yet_valid;
  }
  if (const auto iat = integer(*claims, "iat"); iat && *iat > now + kClockSkewSeconds) {
    return TokenCheck::not_yet_valid;
  }
  const auto* sub = claims->if_contains("sub");
  if (sub == nullptr || !sub->is_string() || upper(sub->get_string()) != id.str()) {
    return TokenCheck::wrong_sandbox;
  }
  return TokenCheck::ok;
}

std::string sign(const PreviewKey& key, const std::string& claims) {
  std::string header = R"({"alg":"HS256","kid":)";
  append_json_string(header, key.kid);
  header += R"(,"typ":"JWT"})";
  std::string out = base64url_encode(header) + "." + base64url_encode(claims);
  const std::string mac = hmac_sha256(key.secret, out);
  out += "." + base64url_encode(mac);
  return out;
}

}  // namespace

TokenCheck check_preview_token(std::string_view token, const std::vector<PreviewKey>& keys,
                               const Ulid& id, std::uint16_t port, std::int64_t now) {
  boost::json::object claims;
  const TokenCheck c = verify(token, keys, kTokenAudience, id, now, &claims);
  if (c != TokenCheck::ok) return c;
  if (claims.contains("port")) {
    const auto p = integer(claims, "port");
    if (!p || *p != port) return TokenCheck::wrong_port;
  }
  return TokenCheck::ok;
}

TokenCheck check_preview_cookie(std::string_view token, const std::vector<PreviewKey>& keys,
                                const Ulid& id, std::string_view host, std::int64_t now) {
  boost::json::object claims;
  const TokenCheck c = verify(token, keys, kCookieAudience, id, now, &claims);
  if (c != TokenCheck::ok) return c;
  const auto* h = claims.if_contains("host");
  if (h == nullptr || !h->is_string() || h->get_string() != host) return TokenCheck::wrong_sandbox;
  return TokenCheck::ok;
}

std::string make_preview_cookie(const PreviewKey& key, const Ulid& id, std::string_view host,
                                std::int64_t exp) {
  std::string claims = R"({"aud":"sandbox-preview-cookie","sub":")" + id.str() + R"(","host":)";
  append_json_string(claims, host);
  claims += R"(,"exp":)" + std::to_string(exp) + "}";
  return sign(key, claims);
}

std::string make_preview_token(const PreviewKey& key, const Ulid& id,
                               std::optional<std::uint16_t> port, std::int64_t iat,
                               std::int64_t exp) {
  std::string claims = R"({"aud":"sandbox-preview","sub":")" + id.str() + R"(","iat":)" +
                       std::to_string(iat) + R"(,"exp":)" + std::to_string(exp);
  if (port) claims += R"(,"port":)" + std::to_string(*port);
  claims += "}";
  return sign(key, claims);
}

}  // namespace sandboxd::edge
