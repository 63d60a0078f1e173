#include "cli/url.h"

#include <cctype>

#include "cli/args.h"

namespace sandboxd::cli {

std::string ServerUrl::host_header() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

std::string ServerUrl::str() const {
  std::string s = tls ? "https://" : "http://";
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return s + h + ":" + std::to_string(port) + prefix;
}

namespace {

bool host_char_ok(char c) {
  auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '-' || c == '.' || c == '_';
}

}  // namespace

ParsedServer parse_server_url(std::string_view text) {
  ParsedServer out;
  ServerUrl url;
  std::string_view rest;
  if (text.starts_with("http://")) {
    rest = text.substr(7);
  } else if (text.starts_with("https://")) {
    url.tls = true;
    rest = text.substr(8);
  } else {
    out.problem = "the scheme must be http:// or https://";
    return out;
  }
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    out.problem = "user information is not allowed; use --token";
    return out;
  }
  if (path.find_first_of("?#") != std::string_view::npos ||
      authority.find_first_of("?#") != std::string_view::npos) {
    out.problem = "a query or fragment is not allowed";
    return out;
  }
  std::string_view port_text;
  if (authority.starts_with("[")) {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      out.problem = "unterminated [IPv6 address]";
      return out;
    }
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        out.problem = "unexpected text after the IPv6 address";
        return out;
      }
      port_text = after.substr(1);
      if (port_text.empty()) {
        out.problem = "empty port";
        return out;
      }
    }
    for (char c : url.host) {
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) {
        out.problem = "invalid IPv6 address";
        return out;
      }
    }
  } else {
    std::size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) {
        out.problem = "empty port";
        return out;
      }
    }
    for (char c : url.host) {
      if (!host_char_ok(c)) {
        out.problem = "invalid host name";
        return out;
      }
    }
  }
  if (url.host.empty()) {
    out.problem = "no host";
    return out;
  }
  url.port = url.tls ? 443 : 80;
  if (!port_text.empty()) {
    auto p = parse_int(port_text, 1, 65535);
    if (!p) {
      out.problem = "the port must be a number from 1 to 65535";
      return out;
    }
    url.port = static_cast<std::uint16_t>(*p);
  }
  std::string prefix(path);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  for (char c : prefix) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      out.problem = "the path may hold only visible ASCII characters";
      return out;
    }
  }
  url.prefix = prefix;
  out.url = url;
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string query_string(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    out += out.empty() ? '?' : '&';
    out += percent_encode(k);
    out += '=';
    out += percent_encode(v);
  }
  return out;
}

}  // namespace sandboxd::cli
