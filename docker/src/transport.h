// HTTP/1.1 over the engine's unix socket, with a small pool of keep-alive connections.
//
// `request` makes one exchange within an absolute deadline that covers connect, write and
// the whole answer; past it the connection is closed and the result is a `timeout` error.
// A failure before any byte of the answer on a pooled connection (the engine closed it while
// idle) is retried once on a new connection. `stream` is for answers read as they arrive
// (exec output, events): the deadline covers only connect, write and the answer's head; the
// body then flows to on_data until it ends, on_data returns false, the connection drops or
// the calling coroutine is cancelled; streamed connections are never pooled.
//
// Transport errors are docker_error() values of kind unreachable, timeout or protocol. HTTP
// statuses are not errors here: the caller maps them. Not thread-safe; same executor and
// lifetime rules as docker::Client, which owns it.
#pragma once

#include "base/result.h"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace sandboxd::docker::detail {

namespace asio = boost::asio;

enum class Method { get, post, del };

struct HttpRequest {
  Method method = Method::get;
  std::string target;  // path and query, already encoded
  std::string body;    // sent as application/json when non-empty
};

struct HttpReply {
  int status = 0;
  std::string body;  // for stream(): only for answers outside 2xx
};

using Deadline = std::chrono::steady_clock::time_point;

class Transport {
 public:
  Transport(asio::any_io_executor executor, std::string socket_path, std::size_t max_idle,
            std::size_t max_body);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  asio::awaitable<Result<HttpReply>> request(const HttpRequest& request, Deadline deadline);

  using HeadFn = std::function<void(int status)>;
  using DataFn = std::function<bool(std::string_view bytes)>;  // false: stop reading
  asio::awaitable<Result<HttpReply>> stream(const HttpRequest& request, Deadline head_deadline,
                                            HeadFn on_head, DataFn on_data);

  std::uint64_t connections_opened() const;
  std::size_t idle() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandboxd::docker::detail
