// Answers the edge writes itself (SPEC §3.3, §3.10, §3.12, §3.13): rejections of bad
// requests, `/healthz`, and the content-negotiated error answers (a self-contained HTML page
// for browser navigations, the v1 JSON envelope otherwise). Pure functions that build the
// whole response, head and body, into a caller's buffer.
#pragma once

#include "base/ulid.h"
#include "edge/request_head.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::edge::detail {

struct ErrorInfo {
  std::string_view code;
  int status = 0;
  bool retryable = false;
  int retry_after = 0;  // seconds; 0 = no Retry-After
  std::string_view heading;
  std::string_view sentence;
};

// §3.13's table; nullptr for an unknown code.
const ErrorInfo* find_error(std::string_view code);

// §3.12: GET or HEAD, not a tunnel, and Sec-Fetch-Mode: navigate, or no Sec-Fetch-Mode and
// an Accept that contains text/html.
bool is_navigation(const RequestHead& head);

std::string_view reason_phrase(int status);

struct ErrorAnswer {
  std::string_view code;         // a §3.13 code
  bool html = false;             // a browser navigation
  bool head_only = false;        // HEAD: the head alone
  bool close = false;            // Connection: close
  bool http10_keep_alive = false;
  std::optional<Ulid> sandbox;   // set when the host parsed as a preview host
  std::uint16_t port = 0;
  std::string_view message;      // overrides the default JSON message
  int retry_after = -1;          // overrides the table's Retry-After (>= 0)
  std::string_view wake;         // X-Sandbox-Wake, or ""
};

// The default JSON message of a code; `wake_s` and `port` fill the wake messages.
std::string default_message(std::string_view code, std::uint16_t port, std::int64_t wake_s);

void build_error_answer(const ErrorAnswer& answer, std::string_view message, std::string& out);

// "200 ok\n" for /healthz on a non-preview host.
void build_health_answer(bool head_only, bool close, bool http10_keep_alive, std::string& out);

// §3.1 and §3.14: a redirect (301, 302 or 308) with an empty body, and the preview cookie
// when `set_cookie` is not empty.
void build_redirect(int status, std::string_view location, bool close, bool http10_keep_alive,
                    std::string& out, std::string_view set_cookie = {});

// §3.15: a plain 421 for a host the handshake's certificate does not cover.
void build_misdirected(bool head_only, bool close, bool http10_keep_alive, std::string& out);

// §3.3: `text/plain` "<status> <reason>\n" with Connection: close, no negotiation.
void build_rejection(int status, std::string& out);

// §3.10 max_connections_per_client: the fixed 429.
std::string_view too_many_connections_answer();

}  // namespace sandboxd::edge::detail
