// Byte-level HTTP/1.1 syntax helpers shared by the edge's parsers and head builders.
// Pure functions over ASCII; nothing here allocates.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::edge::detail {

constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}

inline constexpr std::array<bool, 256> kTchar = make_tchar_table();

// RFC 9110 tchar: the characters of a token (method, field name, coding, ...).
inline bool is_tchar(unsigned char c) { return kTchar[c]; }

inline char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// ASCII case-insensitive equality.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// `text` starts with `prefix`, ASCII case-insensitively.
bool istarts_with(std::string_view text, std::string_view prefix);

// Strips optional whitespace (SP, HTAB) on both sides.
std::string_view trim_ows(std::string_view text);

// Calls fn(element) for each non-empty element of a comma-separated list (RFC 9110 5.6.1),
// OWS trimmed. fn returns false to stop early.
template <class Fn>
void for_each_list_element(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty() && !fn(element)) return;
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

// Whether `name` is listed in any Connection field of a request or response head (its
// `headers` are fields with `name` and `value`).
template <class Head>
bool named_in_connection(const Head& head, std::string_view name) {
  bool named = false;
  for (const auto& f : head.headers) {
    if (!iequals(f.name, "connection")) continue;
    for_each_list_element(f.value, [&](std::string_view option) {
      named = iequals(option, name);
      return !named;
    });
    if (named) return true;
  }
  return false;
}

// Appends "name: value\r\n".
inline void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

// 1*DIGIT with a value in 1..65535 (leading zeros allowed, as in a Host port).
std::optional<std::uint16_t> parse_port(std::string_view digits);

// What is wrong with a Host value or an absolute-form authority (SPEC §3.3).
enum class AuthorityProblem : std::uint8_t { none, bad_character, bad_port, bad_syntax };

// Checks `host [":" port]` where host is a reg-name / IPv4 made of `A-Z a-z 0-9 - .`, or an
// IP literal in brackets; the port, when present, is 1..65535. An empty value is accepted
// (it names no host); an empty host before a port is not.
AuthorityProblem check_authority(std::string_view authority);

// The host part of a checked authority, without the port and the brackets' content intact
// ("[::1]:80" gives "[::1]", "a.b:80" gives "a.b").
std::string_view authority_host(std::string_view authority);

}  // namespace sandboxd::edge::detail
