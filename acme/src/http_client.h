// A small blocking HTTP/1.1 client for the ACME CA and the HTTP DNS providers.
//
// `send` makes one exchange on a new connection (http:// or https://) and blocks the calling
// thread until the answer is read or the deadline passes; inside, it runs its own private
// io_context (Beast + OpenSSL), so nothing here touches another thread's event loop. HTTPS
// verifies the peer's chain against the system store and/or `ca_file`, and its name (DNS
// name or IP address). `abort` may be called from any thread: the exchange in flight, and
// every later one, fails with `Errc::cancelled`.
//
// Errors: invalid_argument (bad URL), unavailable (resolve, connect, TLS, I/O), timeout,
// cancelled. HTTP statuses are not errors.
#pragma once

#include "base/result.h"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandboxd::acme {

struct HttpClientOptions {
  std::string ca_file;          // extra trust anchors (PEM); "" = none
  bool system_cas = true;       // also trust the system store
  std::string user_agent = "sandboxd";
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
  std::size_t max_body = 4 * 1024 * 1024;
};

struct HttpHeader {
  std::string name;
  std::string value;
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, POST, DELETE, PUT
  std::string url;
  std::vector<HttpHeader> headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::vector<HttpHeader> headers;
  std::string body;

  // The first header of that name (case-insensitive), or "".
  std::string header(std::string_view name) const;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<HttpResponse> send(const HttpRequest& request);
  void abort();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandboxd::acme
