#include "runtimed_client.h"

#include <array>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <memory>

#include "async_util.h"

namespace sandboxd::control {

namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

namespace {

constexpr std::size_t kHeaderLimit = 16 * 1024;
constexpr std::size_t kReadChunk = 64 * 1024;

// One connection and its watchdog: when the deadline passes, the socket is closed, which
// ends whatever operation is pending on it (Beast's composed reads need no cancellation
// support for that). Re-arming bumps the generation, so a wait that already completed for
// an older deadline does nothing.
struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(asio::any_io_executor ex) : socket(ex), watchdog(ex) {}

  void arm(std::chrono::milliseconds limit) {
    ++generation;
    watchdog.expires_after(limit);
    watchdog.async_wait([weak = weak_from_this(), gen = generation](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->generation != gen) return;
      self->timed_out = true;
      boost::system::error_code ignored;
      self->socket.close(ignored);
    });
  }
  void disarm() {
    ++generation;
    watchdog.cancel();
  }

  local::socket socket;
  asio::steady_timer watchdog;
  std::uint64_t generation = 0;
  bool timed_out = false;
};

Error connect_error(const boost::system::error_code& ec) {
  return Error{Errc::unavailable, "cannot connect to runtimed: " + ec.message()};
}

Error exchange_error(const Conn& conn, const boost::system::error_code& ec, std::string_view what) {
  if (conn.timed_out) return Error{Errc::timeout, "runtimed did not answer in time"};
  if (ec == http::error::body_limit || ec == http::error::header_limit) {
    return Error{Errc::corrupt, "runtimed's answer is over its size cap"};
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe || ec == asio::error::bad_descriptor ||
      ec == asio::error::operation_aborted) {
    return Error{Errc::unavailable, "runtimed closed the connection while " + std::string(what)};
  }
  if (ec.category() == make_error_code(http::error::bad_target).category()) {  // parser errors
    return Error{Errc::corrupt, "runtimed's answer is not valid HTTP: " + ec.message()};
  }
  return Error{Errc::unavailable,
               "runtimed connection failed while " + std::string(what) + ": " + ec.message()};
}

// Connects through the pinned socket and writes the request; the watchdog must be armed.
asio::awaitable<Status> open_and_send(const RuntimedLink& link, Conn& conn,
                                      const RuntimedTarget& target, http::verb method,
                                      const std::string& path, std::string body) {
  auto pinned = link.open_socket(target.sandbox_id);
  if (!pinned) co_return pinned.error();
  local::endpoint endpoint(pinned->path());
  auto [cec] = co_await conn.socket.async_connect(endpoint, nothrow);
  if (cec) {
    if (conn.timed_out) co_return Error{Errc::timeout, "runtimed did not accept in time"};
    co_return connect_error(cec);
  }
  http::request<http::string_body> req{method, path, 11};
  req.set(http::field::host, "runtimed");
  req.set(http::field::authorization, "Bearer " + target.secret);
  req.keep_alive(false);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  auto [wec, wn] = co_await http::async_write(conn.socket, req, nothrow);
  if (wec) co_return exchange_error(conn, wec, "sending a request");
  co_return ok();
}

}  // namespace

asio::awaitable<Result<RuntimedReply>> RuntimedClient::call(
    const RuntimedTarget& target, std::string_view method_view, std::string_view path_view,
    std::string_view body_view, std::chrono::milliseconds timeout, std::size_t max_body) {
  const http::verb method = http::string_to_verb(method_view);
  std::string path(path_view);
  std::string body(body_view);
  auto ex = co_await asio::this_coro::executor;
  auto conn = std::make_shared<Conn>(ex);
  conn->arm(timeout);
  Status sent = co_await open_and_send(link_, *conn, target, method, path, std::move(body));
  if (!sent) {
    conn->disarm();
    co_return sent.error();
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(max_body);
  auto [rec, rn] = co_await http::async_read(conn->socket, buffer, parser, nothrow);
  conn->disarm();
  if (rec) co_return exchange_error(*conn, rec, "reading an answer");
  const auto& res = parser.get();
  if (res.version() != 11) co_return Error{Errc::corrupt, "runtimed answered with HTTP/1.0"};
  RuntimedReply reply;
  reply.status = static_cast<int>(res.result_int());
  reply.content_type = std::string(res[http::field::content_type]);
  reply.body = std::move(parser.release().body());
  co_return reply;
}

asio::awaitable<Result<RuntimedReply>> RuntimedClient::stream_lines(
    const RuntimedTarget& target, std::string_view path_view, LineFn on_line,
    std::chrono::milliseconds silence) {
  std::string path(path_view);
  std::string no_body;
  auto ex = co_await asio::this_coro::executor;
  auto conn = std::make_shared<Conn>(ex);
  conn->arm(kRuntimedCallTimeout);
  Status sent =
      co_await open_and_send(link_, *conn, target, http::verb::get, path, std::move(no_body));
  if (!sent) {
    conn->disarm();
    co_return sent.error();
  }
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  auto [hec, hn] = co_await http::async_read_header(conn->socket, buffer, parser, nothrow);
  if (hec) {
    conn->disarm();
    co_return exchange_error(*conn, hec, "reading an answer");
  }
  RuntimedReply reply;
  reply.status = static_cast<int>(parser.get().result_int());
  reply.content_type = std::string(parser.get()[http::field::content_type]);
  if (parser.get().version() != 11) {
    conn->disarm();
    co_return Error{Errc::corrupt, "runtimed answered with HTTP/1.0"};
  }
  const bool lines = reply.status == 200;
  std::string pending;  // bytes of a line not complete yet
  std::array<char, kReadChunk> chunk{};
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    conn->arm(lines ? silence : kRuntimedCallTimeout);
    auto [ec, n] = co_await http::async_read_some(conn->socket, buffer, parser, nothrow);
    if (ec == http::error::need_buffer) ec = {};
    std::size_t got = chunk.size() - parser.get().body().size;
    if (!lines) {
      if (reply.body.size() + got > kRuntimedJsonCap) {
        conn->disarm();
        co_return Error{Errc::corrupt, "runtimed's answer is over its size cap"};
      }
      reply.body.append(chunk.data(), got);
    } else {
      pending.append(chunk.data(), got);
      std::size_t start = 0;
      for (;;) {
        std::size_t nl = pending.find('\n', start);
        if (nl == std::string::npos) break;
        std::string_view line(pending.data() + start, nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        start = nl + 1;
        if (!line.empty() && !on_line(line)) {
          conn->disarm();
          co_return reply;
        }
      }
      pending.erase(0, start);
      if (pending.size() > kRuntimedLineCap) {
        conn->disarm();
        co_return Error{Errc::corrupt, "runtimed sent an event line over 256 KiB"};
      }
    }
    if (ec) {
      conn->disarm();
      co_return exchange_error(*conn, ec, "streaming");
    }
  }
  conn->disarm();
  if (lines && !pending.empty() && !on_line(pending)) co_return reply;
  co_return reply;
}

}  // namespace sandboxd::control
