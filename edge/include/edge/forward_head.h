// The request head the edge sends upstream (SPEC §3.7 and §3.9), built from a parsed
// `RequestHead` into a caller-owned buffer.
//
// `build_forward_head` writes `<method> <target> HTTP/1.1`, then every field of the client's
// head in order, repeats included, except: the hop-by-hop fields (Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade unless tunnelling,
// Proxy-Authorization, Proxy-Authenticate, HTTP2-Settings unless tunnelling, and every field
// Connection names, Host and Content-Length excepted); X-Forwarded-*, Forwarded and
// X-Request-Id from untrusted clients; the edge's preview cookie inside Cookie (an emptied
// Cookie is dropped); Authorization when it carried a valid preview token; Expect from an
// HTTP/1.0 client (the upstream always gets HTTP/1.1). Host keeps the client's bytes (the
// authority for an absolute-form target, which becomes origin-form). It then appends
// X-Forwarded-For (appended to a trusted client's list), -Proto, -Host, -Port, optionally
// Forwarded, X-Request-Id, `Transfer-Encoding: chunked` for a chunked body (which is
// re-chunked), and `Connection: Upgrade` for a tunnel.
// Pure: no I/O, no allocation once `out` has grown to the largest head (it is cleared, and
// its capacity reused, on every call). Safe from any thread for distinct buffers.
#pragma once

#include "edge/request_head.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace sandboxd::edge {

struct ForwardContext {
  std::string_view client_ip;       // the peer address ("192.0.2.7", "2001:db8::1")
  std::uint16_t listener_port = 0;  // X-Forwarded-Port
  bool https = false;               // X-Forwarded-Proto: https, else http
  bool trusted = false;             // the peer is in edge.trusted_proxies
  bool tunnel = false;              // forwarding a tunnel request (§3.9)
  bool forwarded_header = false;    // edge.forwarded_header: append a Forwarded element
  std::string_view request_id;      // the edge's ULID for this request (X-Request-Id)
  // Replaces `head.origin_target` when not empty: the target with a consumed
  // `sandbox_token` parameter removed (§3.14).
  std::string_view target;
  bool drop_authorization = false;  // Authorization carried a valid preview token
  std::string_view preview_cookie;  // name of the edge's session cookie, or "" for none
};

void build_forward_head(const RequestHead& head, const ForwardContext& ctx, std::string& out);

}  // namespace sandboxd::edge
