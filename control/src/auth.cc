#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace sandboxd::control {

namespace {

constexpr std::size_t kMaxTokenLength = 512;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// "Bearer <token>": scheme case-insensitive, one or more spaces, 1-512 visible ASCII.
std::optional<std::string_view> bearer_token(std::string_view header) {
  std::size_t space = header.find(' ');
  if (space == std::string_view::npos || !iequals(header.substr(0, space), "bearer")) {
    return std::nullopt;
  }
  std::string_view token = header.substr(space);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty() || token.size() > kMaxTokenLength) return std::nullopt;
  for (char c : token) {
    if (c < 0x21 || c > 0x7E) return std::nullopt;
  }
  return token;
}

}  // namespace

std::array<std::uint8_t, 32> sha256(std::string_view data) {
  std::array<std::uint8_t, 32> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string AuthResult::actor() const {
  return outcome == AuthOutcome::ok ? "token:" + token_name : "anonymous";
}

Authenticator::Authenticator(const std::vector<config::ApiToken>& tokens, bool required)
    : required_(required) {
  for (const auto& t : tokens) entries_.push_back({t.name, sha256(t.secret.reveal()), t.read_only, t.user_id});
}

AuthResult Authenticator::check(std::optional<std::string_view> authorization) const {
  AuthResult result;
  if (!authorization) {
    result.outcome = required_ ? AuthOutcome::missing : AuthOutcome::anonymous;
    return result;
  }
  auto token = bearer_token(*authorization);
  if (!token) {
    result.outcome = AuthOutcome::malformed;
    return result;
  }
  auto presented = sha256(*token);
  const Entry* match = nullptr;
  for (const Entry& e : entries_) {
    // No early exit: every secret is compared whatever the outcome of the others.
    bool equal = CRYPTO_memcmp(presented.data(), e.hash.data(), presented.size()) == 0;
    if (equal) match = &e;
  }
  if (!match) {
    result.outcome = AuthOutcome::unknown;
    return result;
  }
  result.outcome = AuthOutcome::ok;
  result.token_name = match->name;
  result.read_only = match->read_only;
  result.user_id = match->user_id;
  return result;
}

}  // namespace sandboxd::control
