// One access-log record (SPEC §3.11) and its JSON line. Pure; the I/O layer fills a record
// per request and appends the line to its worker's shard of `EdgeOptions::access_log`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::edge::detail {

struct AccessRecord {
  std::int64_t ts_ms = 0;  // head complete, unix ms
  std::string request_id;
  std::string_view client_ip;
  std::uint16_t client_port = 0;
  bool https = false;
  std::string_view tls;  // "TLSv1.3", "TLSv1.2", or "" on plain HTTP
  std::string_view method, host, target, proto;
  int status = 0;  // 101 for tunnels, 0 when closed before a status
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::int64_t duration_ms = 0;
  std::optional<std::int64_t> upstream_ms;  // request sent → first response byte
  std::optional<std::string> sandbox_id;
  std::uint16_t port = 0;
  std::string_view route;  // proxy, tunnel, health, edge_error
  std::string_view error;  // a §3.13 code, or "" for null
  std::string wake;        // X-Sandbox-Wake value, or "" for null
  std::int64_t held_ms = 0;
  bool retried = false;
  std::string_view user_agent, referer;
};

void format_access_line(const AccessRecord& r, std::string& out);

}  // namespace sandboxd::edge::detail
