// The control API as sandboxctl calls it: the global options applied to every request
// (server, token, CA file, --timeout, --verbose) and HTTP errors turned into CliErrors.
//
// `call` is for JSON calls bounded by the deadline (--timeout from the first call, unless
// `set_deadline` moved it); `open` is for streams: the deadline bounds the connection and
// the answer's head, never the body. Verbose lines go to stderr and never contain the
// token. Not thread-safe.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>

#include "cli/args.h"
#include "cli/errors.h"
#include "http_client.h"

namespace sandboxd::cli {

struct ApiRequest {
  std::string method = "GET";
  std::string path;                 // "/v1/sandboxes?status=running"
  std::optional<std::string> json;  // a JSON body
  std::string accept = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  int body_fd = -1;  // a raw body streamed from this descriptor
  std::optional<std::uint64_t> body_length;
  bool unbounded_upload = false;  // only the connection is bounded (large uploads)
};

struct ApiReply {
  int status = 0;
  std::string body;
  boost::json::value json;  // null when the body is not JSON
};

class ApiClient {
 public:
  explicit ApiClient(const GlobalOptions& options);

  // One bounded call; an HTTP status of 400 or more is an error.
  CliResult<ApiReply> call(const ApiRequest& r);
  // A stream: the answer once its head has arrived (and its status is below 400).
  CliResult<HttpResponse> open(const ApiRequest& r);

  // Moves the deadline of the following calls (create --wait spans two calls).
  void set_deadline(Clock::time_point at) { deadline_ = at; }
  Clock::time_point deadline() const;
  const GlobalOptions& options() const { return options_; }

 private:
  HttpRequest to_http(const ApiRequest& r) const;
  CliResult<HttpResponse> exchange(const ApiRequest& r, Deadline connect, Deadline head);
  CliError error_from(HttpResponse& res, const ApiRequest& r, Deadline deadline);

  GlobalOptions options_;
  std::optional<Clock::time_point> deadline_;
};

}  // namespace sandboxd::cli
