// The YAML spelling of every enum key, in the order §9.2 lists them. The reader matches
// against these tables and the printer writes from them, so a spelling lives in one place.
#pragma once

#include <span>
#include <string_view>
#include <utility>

#include "config/config.h"

namespace sandboxd::config::detail {

template <class E>
using EnumTable = std::span<const std::pair<std::string_view, E>>;

inline constexpr std::pair<std::string_view, log::Level> kLogLevels[] = {
    {"debug", log::Level::debug},
    {"info", log::Level::info},
    {"warn", log::Level::warn},
    {"error", log::Level::error}};
inline constexpr std::pair<std::string_view, log::Format> kLogFormats[] = {
    {"text", log::Format::text}, {"json", log::Format::json}};
inline constexpr std::pair<std::string_view, AuthRequired> kAuthRequired[] = {
    {"auto", AuthRequired::automatic}, {"true", AuthRequired::yes}, {"false", AuthRequired::no}};
inline constexpr std::pair<std::string_view, UndeclaredPorts> kUndeclaredPorts[] = {
    {"deny", UndeclaredPorts::deny}, {"allow", UndeclaredPorts::allow}};
inline constexpr std::pair<std::string_view, TlsMode> kTlsModes[] = {
    {"off", TlsMode::off}, {"files", TlsMode::files}, {"acme", TlsMode::acme}};
inline constexpr std::pair<std::string_view, TlsVersion> kTlsVersions[] = {
    {"1.2", TlsVersion::v1_2}, {"1.3", TlsVersion::v1_3}};
inline constexpr std::pair<std::string_view, AcmeKeyType> kKeyTypes[] = {
    {"ec256", AcmeKeyType::ec256},
    {"ec384", AcmeKeyType::ec384},
    {"rsa2048", AcmeKeyType::rsa2048},
    {"rsa4096", AcmeKeyType::rsa4096}};
// "" (none) is accepted by the reader but not offered in suggestions.
inline constexpr std::pair<std::string_view, DnsProvider> kDnsProviders[] = {
    {"", DnsProvider::none},
    {"rfc2136", DnsProvider::rfc2136},
    {"cloudflare", DnsProvider::cloudflare},
    {"exec", DnsProvider::exec},
    {"httpreq", DnsProvider::httpreq}};
inline constexpr std::pair<std::string_view, PropagationCheck> kPropagationChecks[] = {
    {"authoritative", PropagationCheck::authoritative}, {"off", PropagationCheck::off}};
inline constexpr std::pair<std::string_view, TsigAlgorithm> kTsigAlgorithms[] = {
    {"hmac-sha1", TsigAlgorithm::hmac_sha1},
    {"hmac-sha224", TsigAlgorithm::hmac_sha224},
    {"hmac-sha256", TsigAlgorithm::hmac_sha256},
    {"hmac-sha384", TsigAlgorithm::hmac_sha384},
    {"hmac-sha512", TsigAlgorithm::hmac_sha512}};
inline constexpr std::pair<std::string_view, Agent> kAgents[] = {
    {"opencode", Agent::opencode},
    {"claude-code", Agent::claude_code},
    {"command", Agent::command}};

template <class E, std::size_t N>
constexpr std::string_view enum_name(const std::pair<std::string_view, E> (&table)[N], E v) {
  for (const auto& [name, value] : table) {
    if (value == v) return name;
  }
  return "?";
}

}  // namespace sandboxd::config::detail
