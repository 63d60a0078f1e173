// The incremental HTTP/1.x request-head parser of the edge (SPEC §3.3).
//
// A `HeadParser` belongs to one client connection and parses one request head at a time:
// feed it bytes as they arrive; it stops after the blank line that ends the head and says
// how many of the bytes it took, so body bytes and pipelined requests stay with the caller.
// Every 400/405/414/417/431/501/505 rule of §3.3 that can be decided from the head is
// enforced here; body framing (chunk syntax) is `ChunkedDecoder`'s (edge/chunked.h), the
// body size of a chunked request is the caller's. After `head_complete` or `error`, call
// `reset()` before the next head: it keeps every buffer, so a keep-alive connection parses
// request after request without allocating once its buffers have grown to its largest head.
//
// The `RequestHead` returned by `head()` views the parser's own storage: its string_views are
// valid until the next `reset()` or the parser's destruction. Copy what must outlive that.
// A parser is not thread-safe; it is used by the one worker that owns the connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace sandboxd::edge {

// Limits that apply to one request head. Defaults are those of SPEC §3.10.
struct HeadLimits {
  // edge.limits.max_header_bytes: the whole head, request line included → 431.
  std::size_t max_header_bytes = 64 * 1024;
  // The request line alone → 414. SPEC §3.3 bounds it by max_header_bytes; a smaller value
  // may be configured.
  std::size_t max_request_line_bytes = 64 * 1024;
  // Fixed limit of §3.10: more fields → 431.
  std::size_t max_header_fields = 128;
  // edge.limits.max_request_body (0 = none): a larger Content-Length → 413 at once.
  std::uint64_t max_request_body = 0;
};

enum class HttpVersion : std::uint8_t { http10, http11 };

struct HeaderField {
  std::string_view name;   // as sent
  std::string_view value;  // surrounding whitespace removed, otherwise as sent
};

struct RequestHead {
  std::string_view method;         // as sent, e.g. "GET"
  std::string_view target;         // as sent (origin-form, absolute-form or "*")
  std::string_view origin_target;  // what the upstream gets: `target`, or for absolute-form
                                   // its path and query ("/" when the path is empty)
  HttpVersion version = HttpVersion::http11;
  bool absolute_form = false;
  std::string_view authority;    // absolute-form: the target's authority, else empty
  std::string_view host_header;  // the Host field's value (empty when absent)
  bool has_host_header = false;
  // The host for routing (§3.4): `authority` for absolute-form, else `host_header`. Empty
  // when there is neither (HTTP/1.0 without Host: a non-preview host).
  std::string_view host;
  std::vector<HeaderField> headers;  // in arrival order, repeats included
  std::optional<std::uint64_t> content_length;
  bool chunked = false;  // Transfer-Encoding: chunked (the only coding accepted)
  bool keep_alive = true;
  // A tunnel request (§3.9): an Upgrade field and "upgrade" in Connection, HTTP/1.1, and
  // not h2c. `upgrade_protocol` is the first Upgrade field's value whenever one was sent.
  bool upgrade = false;
  bool h2c_upgrade = false;  // "Upgrade: h2c" with "upgrade" in Connection: strip, proxy
  std::string_view upgrade_protocol;
  bool expect_continue = false;  // HTTP/1.1 "Expect: 100-continue"
  std::size_t head_bytes = 0;    // bytes of the head, leading empty lines included

  bool has_body() const { return chunked || content_length.value_or(0) > 0; }
  // The value of the first field named `name` (ASCII case-insensitive).
  std::optional<std::string_view> field(std::string_view name) const;
};

enum class ParseStatus : std::uint8_t { need_more, head_complete, error };

// Why a head was rejected. `status` is the HTTP status to answer with (400, 405, 413, 414,
// 417, 431, 501, 505), or 0 for the HTTP/2 prior-knowledge preface, which gets a silent
// close. `reason` is a static, human-readable phrase (no allocation), stable for tests.
struct HeadError {
  int status = 400;
  std::string_view reason;
};

class HeadParser {
 public:
  explicit HeadParser(const HeadLimits& limits = {});
  ~HeadParser();
  HeadParser(HeadParser&&) noexcept;
  HeadParser& operator=(HeadParser&&) noexcept;
  HeadParser(const HeadParser&) = delete;
  HeadParser& operator=(const HeadParser&) = delete;

  // Parses the next bytes of the head. `*consumed` is set to the number of bytes that
  // belong to the head (need_more: all of them; head_complete: up to and including the
  // blank line, so the body or the next request starts at `bytes.data() + *consumed`;
  // error: those examined, the offending byte included). Once the status is head_complete
  // or error, further calls return it again and consume nothing, until `reset()`.
  ParseStatus feed(std::string_view bytes, std::size_t* consumed);

  ParseStatus status() const;
  const RequestHead& head() const;  // meaningful after head_complete
  const HeadError& error() const;   // meaningful after error
  // Some byte of the current head has arrived (header_read: 408 rather than silent close).
  bool started() const;

  // Prepares for the next head, keeping the buffers. The limits stay.
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;  // llhttp stays out of this header
};

}  // namespace sandboxd::edge
