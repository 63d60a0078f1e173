// The control listener's HTTP/1.1 I/O (Beast coroutines), separate from what the API
// answers. Per connection: read a head (limits of SPEC §13: 431 over 16 KiB, 414 for a
// target over 8 KiB, 400 for malformed requests and both Content-Length and
// Transfer-Encoding, each closing the connection), ask the handler whether to answer at
// once (auth, routing, size, type — no `100 Continue` then), else read the body within the
// handler's limit (413 and close when it is exceeded) and answer, possibly streamed
// (chunked). Keep-alive until `keepalive_idle`.
//
// Runs on the executor it is given (single-threaded). `close()` stops accepting and ends
// open connections; call it on that executor's thread or after it stopped.
#pragma once

#include "base/result.h"
#include "http.h"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace sandboxd::control {

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual std::optional<Response> check_head(Request& request,
                                             std::optional<std::uint64_t> content_length) = 0;
  virtual std::uint64_t body_limit(const Request& request) const = 0;
  virtual boost::asio::awaitable<Response> handle(Request& request) = 0;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9090;  // 0: ephemeral
  std::chrono::milliseconds header_read{15000};
  std::chrono::milliseconds keepalive_idle{75000};
};

class HttpServer {
 public:
  HttpServer(boost::asio::any_io_executor executor, HttpServerOptions options,
             HttpHandler& handler);
  ~HttpServer();

  // Binds and starts accepting.
  Status listen();
  std::uint16_t port() const;
  void close();
  // SIGHUP (edge.timeouts.header_read / keepalive_idle are live keys, SPEC §9.2): every
  // deadline set from now on uses these, on open connections too. On the server's executor.
  void set_timeouts(std::chrono::milliseconds header_read, std::chrono::milliseconds keepalive_idle);

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sandboxd::control
