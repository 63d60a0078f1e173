#include "http_syntax.h"

namespace sandboxd::edge::detail {

namespace {

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.';
}

bool is_ip_literal_char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
         c == '.';
}

}  // namespace

bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::optional<std::uint16_t> parse_port(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  std::uint32_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
    if (value > 65535) return std::nullopt;
  }
  if (value == 0) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

AuthorityProblem check_authority(std::string_view authority) {
  for (char c : authority) {
    if (!is_host_char(c) && c != ':' && c != '[' && c != ']')
      return AuthorityProblem::bad_character;
  }
  if (authority.empty()) return AuthorityProblem::none;
  std::string_view rest;
  if (authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos || close < 2) return AuthorityProblem::bad_syntax;
    for (char c : authority.substr(1, close - 1)) {
      if (!is_ip_literal_char(c)) return AuthorityProblem::bad_syntax;
    }
    rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return AuthorityProblem::bad_syntax;
  } else {
    std::size_t colon = authority.find(':');
    std::string_view name = authority.substr(0, colon);
    if (name.empty()) return AuthorityProblem::bad_syntax;
    for (char c : name) {
      if (!is_host_char(c)) return AuthorityProblem::bad_syntax;  // a stray bracket
    }
    if (colon == std::string_view::npos) return AuthorityProblem::none;
    rest = authority.substr(colon);
  }
  if (rest.empty()) return AuthorityProblem::none;
  if (!parse_port(rest.substr(1))) return AuthorityProblem::bad_port;
  return AuthorityProblem::none;
}

std::string_view authority_host(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  return authority.substr(0, authority.find(':'));
}

}  // namespace sandboxd::edge::detail
