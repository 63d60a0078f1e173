// The settings of the edge's data plane (SPEC §3, §9.2 `edge.*`, `wake.*`), as a plain value.
//
// The app fills it from `sandboxd.yaml`; the edge never reads configuration itself. Defaults
// are SPEC's. Values are assumed validated (config/ does that); `EdgeServer::start` rejects
// only what it cannot serve with (an unparsable listen host, an empty preview suffix).
#pragma once

#include "edge/access_log_writer.h"
#include "edge/ip_address.h"
#include "edge/preview_auth.h"
#include "edge/route_table.h"
#include "edge/tls.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::edge {

// An address range in CIDR notation ("10.0.0.0/8", "2001:db8::/32"); a bare address is a
// /32 or /128. Host bits need not be zero.
struct IpNetwork {
  IpAddress address;
  std::uint8_t prefix_length = 0;

  static std::optional<IpNetwork> parse(std::string_view text);
  bool contains(const IpAddress& ip) const;
};

struct EdgeOptions {
  using ms = std::chrono::milliseconds;

  // Listener (§3.1). "" means every interface, v4 and v6; "localhost" means 127.0.0.1;
  // anything else must be an IP literal. Port 0 binds a free port (see EdgeServer::port()).
  std::string listen_host;
  std::uint16_t listen_port = 80;

  // The https listener (§3.1, §3.15), active when `tls` is true (tls.mode is not off); its
  // host is spelled like listen_host. `certificates` is the first set it serves (required
  // then); later sets come through EdgeServer::set_certificates.
  bool tls = false;
  std::string https_listen_host;
  std::uint16_t https_listen_port = 443;
  bool redirect_http = true;  // edge.redirect_http
  bool tls13_only = false;    // tls.min_version "1.3"
  TlsCertificates certificates;
  std::size_t workers = 0;  // edge.workers; 0 = the number of cores

  std::string preview_suffix = "preview.localhost";  // preview.suffix, resolved
  PortPolicy ports;                                  // preview.allowed_ports / undeclared
  std::vector<IpNetwork> trusted_proxies;            // edge.trusted_proxies
  bool forwarded_header = false;                     // edge.forwarded_header
  std::chrono::seconds hsts_max_age{0};              // edge.hsts_max_age (https only)

  // edge.limits.* (§3.10)
  std::size_t max_connections = 20000;
  std::size_t max_connections_per_client = 256;
  std::size_t max_header_bytes = 64 * 1024;
  std::uint64_t max_request_body = 0;  // 0 = none
  std::size_t max_connections_per_sandbox = 1024;
  std::size_t max_held_requests_per_sandbox = 256;
  std::size_t max_held_requests_total = 4096;

  // edge.timeouts.* (§3.10); upstream_response_header 0 = none
  ms header_read{15'000};
  ms keepalive_idle{75'000};
  ms body_idle{60'000};
  ms upstream_connect{5'000};
  ms upstream_response_header{0};
  ms websocket_idle{3'600'000};

  // edge.upstream.* (§3.8)
  ms upstream_idle_timeout{4'000};
  std::size_t max_idle_per_backend = 16;

  // wake.* (§3.6)
  ms wake_timeout{60'000};
  ms probe_interval{25};

  // §3.14: the first preview-auth settings (EdgeServer::set_preview_auth replaces them).
  PreviewAuthSettings preview_auth;

  // §3.11: where each request's JSON line goes, through a buffer per worker; null: no
  // access log. The caller may keep a reference to reopen it (SIGHUP).
  std::shared_ptr<AccessLogWriter> access_log;
};

}  // namespace sandboxd::edge
