// A small blocking HTTP/1.1 client over POSIX sockets, with OpenSSL for https:// servers.
//
// One request per connection (`Connection: close`): sandboxctl makes one or two calls per
// run, so keep-alive would buy nothing. Every wait is a poll(2) bounded by a `Deadline`
// (none = wait for ever, for streams). Bodies are read as they arrive: Content-Length,
// chunked, or up to the close. Request bodies come from memory or are streamed from a file
// descriptor (with Content-Length when the size is known, else chunked). Failures before
// any answer are `unreachable` errors worded as SPEC §12 wants; a passed deadline is a
// `deadline` error; anything unreadable is a `protocol` error. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/errors.h"
#include "cli/http_parse.h"
#include "cli/url.h"

namespace sandboxd::cli {

using Clock = std::chrono::steady_clock;
using Deadline = std::optional<Clock::time_point>;

struct TlsOptions {
  std::string cacert;  // extra trust anchors (PEM file); the system store is always used
};

class Connection;

struct HttpRequest {
  std::string method;
  std::string target;  // path and query, the server's prefix included
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> body;
  int body_fd = -1;                          // stream the body from this descriptor
  std::optional<std::uint64_t> body_length;  // its size when known (else chunked)
};

class HttpResponse {
 public:
  HttpResponse(std::unique_ptr<Connection> conn, ResponseHead head, std::string leftover,
               bool no_body, std::string what);
  ~HttpResponse();
  HttpResponse(HttpResponse&&) noexcept;
  HttpResponse& operator=(HttpResponse&&) noexcept;

  const ResponseHead& head() const { return head_; }
  int status() const { return head_.status; }

  // Appends the next piece of the body to `out`; false once the body has ended.
  CliResult<bool> read(std::string& out, Deadline deadline);
  // The rest of the body, at most `limit` bytes (more is an error).
  CliResult<std::string> read_all(std::size_t limit, Deadline deadline);

 private:
  enum class Mode { none, length, chunked, close };

  std::unique_ptr<Connection> conn_;
  ResponseHead head_;
  std::string pending_;  // bytes read past the head, not yet decoded
  Mode mode_ = Mode::none;
  std::uint64_t remaining_ = 0;
  ChunkedDecoder chunked_;
  bool ended_ = false;
  std::string what_;  // "sandboxd at <server>" for messages
};

// Connects, sends `request` and reads the answer's head. `connect_deadline` bounds the
// connection and TLS handshake; `head_deadline` the upload and the wait for the answer's
// head, and later body reads given the same deadline. `server_text` is the server as the
// user gave it and `deadline_text` the limit as the user set it ("30s"), for messages.
CliResult<HttpResponse> http_exchange(const ServerUrl& server, const std::string& server_text,
                                      const TlsOptions& tls, const HttpRequest& request,
                                      Deadline connect_deadline, Deadline head_deadline,
                                      const std::string& deadline_text);

// "within 30s" style text of a duration for deadline messages.
std::string describe_duration(std::chrono::milliseconds d);

}  // namespace sandboxd::cli
