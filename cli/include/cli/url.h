// The control API's address (`--server`, SANDBOXD_URL) and request targets.
//
// A server URL is `http://` or `https://`, a host name, IPv4 address or bracketed IPv6
// address, an optional port (default 80/443) and an optional path prefix (for a control API
// published under a path by a proxy); no user-info, query or fragment. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandboxd::cli {

struct ServerUrl {
  bool tls = false;
  std::string host;  // without brackets
  std::uint16_t port = 0;
  std::string prefix;  // "" or "/base" (no trailing slash)

  // The Host header value: host, bracketed when IPv6, with the port unless it is the default.
  std::string host_header() const;
  // "http://host:port" + prefix, for messages.
  std::string str() const;
};

// Returns the URL or a message saying what is wrong with it.
struct ParsedServer {
  std::optional<ServerUrl> url;
  std::string problem;
};
ParsedServer parse_server_url(std::string_view text);

// RFC 3986 unreserved characters stay, everything else is %XX.
std::string percent_encode(std::string_view s);

// "?a=1&b=x%20y" from the pairs in order; "" when there are none.
std::string query_string(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace sandboxd::cli
