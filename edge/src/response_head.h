// The upstream's response head (SPEC §3.7 "Response to the client"): an incremental, strict
// parser, and the builder of the head the client gets.
//
// `ResponseHeadParser` collects one head (up to max_header_bytes, at most 128 fields) and
// stops after its blank line, like `HeadParser` for requests: bytes after it (the body, or
// tunnel bytes after a 101) stay with the caller. Rejected, as `error` (the caller answers
// 502 upstream_protocol_error): a bad status line, a version other than 1.0/1.1, bare LF,
// obs-fold, whitespace before ':', bad field bytes, both Content-Length and
// Transfer-Encoding, several Content-Length fields, a Content-Length that is not 1*DIGIT.
// Views in `ResponseHead` point into the parser and live until `reset()`.
// Pure and single-threaded; buffers are kept across `reset()`.
#pragma once

#include "edge/request_head.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::edge::detail {

enum class BodyFraming : std::uint8_t {
  none,            // HEAD, 1xx, 204, 304
  content_length,  // exactly content_length bytes
  chunked,
  until_close,     // no Content-Length and no chunked: the body ends at EOF
};

struct ResponseHead {
  HttpVersion version = HttpVersion::http11;
  int status = 0;
  std::string_view reason;
  std::vector<HeaderField> headers;  // in arrival order
  std::optional<std::uint64_t> content_length;
  bool chunked = false;     // Transfer-Encoding with chunked last
  bool keep_alive = true;   // the upstream connection may be reused after this response
  std::size_t head_bytes = 0;

  // How the body is framed, for a response to a request with `method`.
  BodyFraming framing(bool head_request) const;
};

class ResponseHeadParser {
 public:
  explicit ResponseHeadParser(std::size_t max_header_bytes = 64 * 1024,
                              std::size_t max_fields = 128)
      : max_bytes_(max_header_bytes), max_fields_(max_fields) {}

  ParseStatus feed(std::string_view bytes, std::size_t* consumed);
  ParseStatus status() const { return status_; }
  const ResponseHead& head() const { return head_; }
  std::string_view error() const { return error_; }
  void reset();

 private:
  bool parse();
  ParseStatus fail(std::string_view why);
  bool reject(std::string_view why);

  std::size_t max_bytes_;
  std::size_t max_fields_;
  std::string store_;
  ResponseHead head_;
  ParseStatus status_ = ParseStatus::need_more;
  std::string_view error_;
};

// What the edge adds to or changes in the head it relays to the client.
struct ClientResponseContext {
  BodyFraming framing = BodyFraming::none;  // as the CLIENT gets it
  bool tunnel = false;                      // relaying a 101: keep Upgrade
  bool close = false;                       // "Connection: close"
  bool http10_keep_alive = false;           // "Connection: keep-alive" for an HTTP/1.0 client
  std::string_view wake;                    // X-Sandbox-Wake value, or ""
  std::string_view hsts;                    // Strict-Transport-Security value, or ""
  std::string_view set_cookie;              // the edge's preview cookie (§3.14), or ""
};

// `HTTP/1.1 <status> <reason>`, the upstream's fields minus hop-by-hop ones (and minus
// Content-Length unless the client gets content_length or no body), then the edge's own.
void build_client_response_head(const ResponseHead& head, const ClientResponseContext& ctx,
                                std::string& out);

}  // namespace sandboxd::edge::detail
