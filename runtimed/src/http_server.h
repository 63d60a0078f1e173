// runtimed's HTTP/1.1 server on its unix socket (SPEC §6.3): keep-alive, a 16 KiB header
// block, request bodies up to 1 MiB (413 beyond, from Content-Length before any body byte is
// read), answers either whole or streamed with chunked coding, each piece flushed at once.
// The handler decides everything else; Beast stays inside http_server.cc. Loop thread only.
#pragma once

#include "async.h"
#include "base/result.h"
#include "task_manager.h"

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sandboxd::runtimed {

inline constexpr std::size_t kMaxRequestBody = 1024 * 1024;

struct HttpRequest {
  std::string method;
  std::string target;
  std::string path;
  std::string query;  // raw, after '?'
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;
  // Set for a streamed (chunked) body.
  std::function<asio::awaitable<void>(EventSink&)> stream;
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Sees the head before any body byte is read; an answer here is final (auth, 404, 405).
  virtual std::optional<HttpResponse> check_head(const HttpRequest& head) = 0;
  virtual asio::awaitable<HttpResponse> handle(const HttpRequest& request) = 0;
};

class HttpServer {
 public:
  HttpServer(asio::any_io_executor ex, HttpHandler& handler);
  ~HttpServer();

  // Binds `socket_path` (removing a stale one first), chmods it 0600 and starts accepting.
  Status listen(const std::string& socket_path);
  // Stops accepting and closes every connection.
  void close();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sandboxd::runtimed
