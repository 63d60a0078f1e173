#include "http_server.h"

#include "async_util.h"
#include "base/log.h"
#include "base/ulid.h"
#include "router.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <list>

namespace sandboxd::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr log::Logger kLog{"control"};
constexpr std::size_t kMaxTarget = 8 * 1024;
constexpr std::size_t kMaxHeaderBlock = 16 * 1024;
// Routes without a JSON body still accept (and discard) a small one.
constexpr std::uint64_t kDefaultBodyLimit = 64 * 1024;
constexpr std::chrono::seconds kBodyTimeout{60};

void set_common(http::response_header<>& h, const Response& r, const std::string& request_id) {
  h.set(http::field::server, "sandboxd");
  if (r.status != 204) h.set(http::field::content_type, r.content_type);
  h.set(http::field::cache_control, "no-store");
  h.set("X-Request-Id", request_id);
  for (const auto& [name, value] : r.headers) h.set(name, value);
}

// Watches a connection while its request is handled and its answer written: the client
// hanging up (EOF or reset) fires `gone`. A pipelined next request (readable bytes) ends the
// watch without firing. `active` is cleared before the socket can go away, and the socket is
// never touched after a wait that finds it cleared.
asio::awaitable<void> watch_hangup(tcp::socket& socket, std::shared_ptr<OneShot> gone,
                                   std::shared_ptr<bool> active) {
  auto [ec] = co_await socket.async_wait(tcp::socket::wait_read, nothrow);
  if (!*active) co_return;
  if (ec) {
    if (ec != asio::error::operation_aborted) gone->fire();
    co_return;
  }
  char byte = 0;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) gone->fire();
}

class ChunkSink final : public BodySink {
 public:
  explicit ChunkSink(beast::tcp_stream& stream) : stream_(stream) {}
  asio::awaitable<bool> write(std::string_view chunk) override {
    if (failed_ || chunk.empty()) co_return !failed_;
    stream_.expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await asio::async_write(stream_, http::make_chunk(asio::buffer(chunk)), nothrow);
    if (ec) failed_ = true;
    // The deadline bounds one write, not the quiet time before the next (a followed log).
    if (!failed_) stream_.expires_never();
    co_return !failed_;
  }
  void abort() override { failed_ = true; }
  bool failed() const { return failed_; }

 private:
  beast::tcp_stream& stream_;
  bool failed_ = false;
};

}  // namespace

class HttpServer::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor ex, HttpServerOptions options, HttpHandler& handler)
      : executor_(ex), options_(std::move(options)), handler_(handler), acceptor_(ex) {}

  Status listen() {
    boost::system::error_code ec;
    asio::ip::address address;
    if (options_.host.empty()) {
      address = asio::ip::address_v6::any();
    } else {
      address = asio::ip::make_address(options_.host == "localhost" ? "127.0.0.1" : options_.host, ec);
      if (ec) return Error{Errc::invalid_argument, "control.listen: not an IP address: " + options_.host};
    }
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error{Errc::unavailable, "cannot listen on " + options_.host + ":" +
                                          std::to_string(options_.port) + ": " + ec.message()};
    }
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(executor_, [self = shared_from_this()] { return self->accept_loop(); },
                   asio::detached);
    return ok();
  }

  std::uint16_t port() const { return port_; }

  void set_timeouts(std::chrono::milliseconds header_read, std::chrono::milliseconds keepalive_idle) {
    options_.header_read = header_read;
    options_.keepalive_idle = keepalive_idle;
  }

  void close() {
    closed_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto* s : open_) s->socket().close(ignored);
  }

 private:
  asio::awaitable<void> accept_loop() {
    while (!closed_) {
      auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
      if (closed_ || ec == asio::error::operation_aborted) co_return;
      if (ec) continue;  // e.g. EMFILE: keep serving the connections we have
      asio::co_spawn(executor_,
                     [self = shared_from_this(), s = std::move(socket)]() mutable {
                       return self->session(std::move(s));
                     },
                     asio::detached);
    }
  }

  static Request make_request(const http::request_parser<http::string_body>& parser,
                              const std::string& peer) {
    const auto& h = parser.get();
    Request r;
    r.method = std::string(h.method_string());
    r.target = std::string(h.target());
    std::size_t q = r.target.find('?');
    r.path = r.target.substr(0, q);
    if (q != std::string::npos) r.query = parse_query(std::string_view(r.target).substr(q + 1));
    for (const auto& field : h) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      // A repeated field is combined as RFC 9110 §5.3 lists do, so a second Authorization
      // makes the value malformed (401) instead of one of the two silently winning.
      auto [it, fresh] = r.headers.try_emplace(name, field.value());
      if (!fresh) it->second.append(", ").append(field.value());
    }
    r.peer_ip = peer;
    r.request_id = new_ulid().str();
    r.received = std::chrono::steady_clock::now();
    return r;
  }

  asio::awaitable<bool> write_plain(beast::tcp_stream& stream, Response r, bool head,
                                    unsigned version, const std::string& request_id) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    set_common(res.base(), r, request_id);
    res.body() = std::move(r.body);
    res.prepare_payload();
    if (head) res.body().clear();  // Content-Length stays that of the GET answer
    if (r.close) res.keep_alive(false);
    stream.expires_after(options_.header_read);
    auto [ec, n] = co_await http::async_write(stream, res, nothrow);
    co_return !ec && res.keep_alive();
  }

  asio::awaitable<bool> write_streamed(beast::tcp_stream& stream, Response r, unsigned version,
                                       bool keep_alive, const std::string& request_id) {
    http::response<http::empty_body> res{static_cast<http::status>(r.status), version};
    set_common(res.base(), r, request_id);
    res.chunked(true);
    res.keep_alive(keep_alive && !r.close);
    http::response_serializer<http::empty_body> sr(res);
    stream.expires_after(options_.header_read);
    auto [ec, n] = co_await http::async_write_header(stream, sr, nothrow);
    if (ec) co_return false;
    ChunkSink sink(stream);
    co_await r.stream(sink);
    if (sink.failed()) co_return false;
    stream.expires_after(options_.header_read);
    auto [ec2, n2] = co_await asio::async_write(stream, http::make_chunk_last(), nothrow);
    co_return !ec2 && res.keep_alive();
  }

  asio::awaitable<void> session(tcp::socket socket) {
    boost::system::error_code ec0;
    auto remote = socket.remote_endpoint(ec0);
    std::string peer = ec0 ? std::string() : remote.address().to_string();
    beast::tcp_stream stream(std::move(socket));
    auto tracked = open_.insert(open_.end(), &stream);
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxHeaderBlock);
      // The first request must arrive within header_read; later ones within keepalive_idle.
      stream.expires_after(first ? options_.header_read : options_.keepalive_idle);
      first = false;
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, nothrow);
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
          ec == asio::error::bad_descriptor) {
        break;
      }
      std::string request_id = new_ulid().str();
      if (ec) {
        Response r = ec == http::error::header_limit
                         ? error_response("/", 431, "invalid_request", "request header block too large")
                         : error_response("/", 400, "invalid_request", "malformed request");
        r.close = true;
        co_await write_plain(stream, std::move(r), false, 11, request_id);
        break;
      }
      Request request = make_request(parser, peer);
      request_id = request.request_id;
      unsigned version = parser.get().version();
      bool head = parser.get().method() == http::verb::head;
      bool keep_alive = parser.get().keep_alive();
      if (request.target.size() > kMaxTarget) {
        Response r = error_response("/", 414, "invalid_request", "request target too long");
        r.close = true;
        co_await write_plain(stream, std::move(r), head, version, request_id);
        break;
      }
      std::optional<std::uint64_t> content_length;
      if (auto declared = parser.content_length()) content_length = *declared;
      if (auto early = handler_.check_head(request, content_length)) {
        // The body was not read: the connection cannot be reused unless there was none.
        if (!parser.is_done()) early->close = true;
        if (!keep_alive) early->close = true;
        if (!co_await write_plain(stream, std::move(*early), head, version, request_id)) break;
        continue;
      }
      if (!parser.is_done()) {
        if (auto expect = request.header("expect"); expect && beast::iequals(*expect, "100-continue")) {
          http::response<http::empty_body> cont{http::status::continue_, version};
          stream.expires_after(options_.header_read);
          auto [cec, cn] = co_await http::async_write(stream, cont, nothrow);
          if (cec) break;
        }
        std::uint64_t limit = handler_.body_limit(request);
        parser.body_limit(limit == 0 ? kDefaultBodyLimit : limit);
        stream.expires_after(kBodyTimeout);
        auto [bec, bn] = co_await http::async_read(stream, buffer, parser, nothrow);
        if (bec) {
          if (bec == beast::error::timeout || bec == asio::error::operation_aborted) break;
          Response r = bec == http::error::body_limit
                           ? error_response(request.path, 413, "payload_too_large", "request body too large")
                           : error_response(request.path, 400, "invalid_request", "malformed request body");
          r.close = true;
          co_await write_plain(stream, std::move(r), head, version, request_id);
          break;
        }
      }
      request.body = parser.release().body();
      stream.expires_never();
      // Until the answer is out, a hang-up is noticed even while nothing is written.
      auto watching = std::make_shared<bool>(buffer.size() == 0);
      request.client_gone = std::make_shared<OneShot>(executor_);
      if (*watching) {
        asio::co_spawn(executor_, watch_hangup(stream.socket(), request.client_gone, watching),
                       asio::detached);
      }
      Response response;
      try {
        response = co_await handler_.handle(request);
      } catch (const std::exception& e) {
        kLog.error("handler failed", {{"path", request.path}, {"error", e.what()}});
        response = error_response(request.path, 500, "internal", "internal error");
      }
      if (!keep_alive) response.close = true;
      bool again;
      if (response.stream && !head) {
        again = co_await write_streamed(stream, std::move(response), version, keep_alive, request_id);
      } else {
        again = co_await write_plain(stream, std::move(response), head, version, request_id);
      }
      if (*watching) {
        *watching = false;
        boost::system::error_code ignored;
        stream.socket().cancel(ignored);
      }
      if (!again || closed_) break;
    }
    open_.erase(tracked);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::any_io_executor executor_;
  HttpServerOptions options_;
  HttpHandler& handler_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  bool closed_ = false;
  std::list<beast::tcp_stream*> open_;
};

HttpServer::HttpServer(asio::any_io_executor executor, HttpServerOptions options,
                       HttpHandler& handler)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options), handler)) {}

HttpServer::~HttpServer() = default;

Status HttpServer::listen() { return impl_->listen(); }
std::uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::close() { impl_->close(); }
void HttpServer::set_timeouts(std::chrono::milliseconds header_read,
                              std::chrono::milliseconds keepalive_idle) {
  impl_->set_timeouts(header_read, keepalive_idle);
}

}  // namespace sandboxd::control
