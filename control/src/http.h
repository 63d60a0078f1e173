// The control API's view of HTTP: plain request and response values, plus a sink for
// streamed bodies. api_server.cc does the I/O with Beast; everything else sees only these.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandboxd::control {

struct Route;
class OneShot;

struct Request {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // origin-form, e.g. "/v1/sandboxes?limit=5"
  std::string path;    // target without the query, not decoded
  std::vector<std::pair<std::string, std::string>> query;  // decoded once, in order
  std::map<std::string, std::string> headers;  // names lower-cased; repeated → joined with ", "
  std::string body;
  std::string peer_ip;
  std::string request_id;
  std::chrono::steady_clock::time_point received{};  // head complete; unset outside a server
  std::vector<std::string> params;  // path parameters, percent-decoded once
  std::string actor = "anonymous";  // "token:<name>" once authenticated
  // Set when the token acts for one external user (a tenant's token): the API shows and
  // changes only that user's sandboxes.
  std::optional<std::string> tenant;
  const Route* route = nullptr;     // set by the API's head check
  // Fires when the client hangs up before its answer is complete (set by the HTTP server;
  // null where no server runs). Only exec listens: a disconnect cancels a non-detached exec,
  // while create, start, stop and purge finish anyway (SPEC §2.1).
  std::shared_ptr<OneShot> client_gone;

  std::optional<std::string_view> header(std::string_view lower_name) const;
  // The value of a query parameter; a repeated parameter is an error (SPEC §2.1), reported
  // by the caller as 400 when `repeated` is set.
  std::optional<std::string> query_param(std::string_view name, bool* repeated = nullptr) const;
};

// Writes a streamed (chunked) body. `write` returns false once the client is gone; the
// producer should then stop and clean up (a disconnect cancels the work, SPEC §2.1).
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual boost::asio::awaitable<bool> write(std::string_view chunk) = 0;
  // Ends the response without its last (zero-length) chunk and closes the connection, so
  // the client sees that the body is truncated (an export that cannot be completed, §7).
  virtual void abort() = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond the common ones
  bool close = false;  // close the connection after this answer
  // When set, the body is produced by this coroutine as chunks instead of `body`.
  std::function<boost::asio::awaitable<void>(BodySink&)> stream;
};

// Percent-decodes once; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s);

// Splits and decodes a query string ("a=1&b=2"); malformed escapes make the pair's value "".
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

// Parses a query boolean: true|false|1|0.
std::optional<bool> parse_query_bool(std::string_view v);

}  // namespace sandboxd::control
