#include "http_server.h"

#include "base/log.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <list>

namespace sandboxd::runtimed {

namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using Stream = beast::basic_stream<local, asio::any_io_executor, beast::unlimited_rate_policy>;

namespace {

constexpr log::Logger kLog{"runtimed"};
constexpr std::size_t kMaxHeaderBlock = 16 * 1024;
constexpr std::size_t kMaxConnections = 256;
constexpr auto kFirstRequest = std::chrono::seconds(10);
constexpr auto kKeepAliveIdle = std::chrono::seconds(120);
constexpr auto kBodyRead = std::chrono::seconds(30);
constexpr auto kWrite = std::chrono::seconds(30);

class ChunkSink final : public EventSink {
 public:
  explicit ChunkSink(Stream& stream) : stream_(stream) {}
  asio::awaitable<bool> write(std::string_view bytes) override {
    if (failed_ || bytes.empty()) co_return !failed_;
    stream_.expires_after(kWrite);
    auto chunk = http::make_chunk(asio::buffer(bytes.data(), bytes.size()));
    auto [ec, n] = co_await asio::async_write(stream_, chunk, nothrow);
    stream_.expires_never();
    if (ec) failed_ = true;
    co_return !failed_;
  }
  bool failed() const { return failed_; }

 private:
  Stream& stream_;
  bool failed_ = false;
};

std::string error_body(std::string_view code, std::string_view message) {
  std::string body = R"({"error":{"code":")";
  body += code;
  body += R"(","message":")";
  body += message;  // fixed text
  body += "\"}}";
  return body;
}

}  // namespace

class HttpServer::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor ex, HttpHandler& handler)
      : ex_(ex), handler_(handler), acceptor_(ex) {}

  Status listen(const std::string& path) {
    if (path.size() >= sizeof(sockaddr_un::sun_path)) {
      return Error{Errc::invalid_argument, "socket path longer than 107 bytes: " + path};
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Error{Errc::io, "cannot remove the stale socket: " + std::string(std::strerror(errno))};
    }
    boost::system::error_code ec;
    local::endpoint ep(path);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec && ::chmod(path.c_str(), 0600) != 0) ec.assign(errno, boost::system::system_category());
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Error{Errc::io, "cannot listen on " + path + ": " + ec.message()};
    asio::co_spawn(ex_, [self = shared_from_this()] { return self->accept_loop(); },
                   asio::detached);
    return ok();
  }

  void close() {
    closed_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (Stream* s : open_) s->socket().close(ignored);
  }

 private:
  asio::awaitable<void> accept_loop() {
    while (!closed_) {
      auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
      if (closed_ || ec == asio::error::operation_aborted) co_return;
      if (ec) continue;
      if (open_.size() >= kMaxConnections) continue;  // the socket closes here
      asio::co_spawn(ex_,
                     [self = shared_from_this(), s = std::move(socket)]() mutable {
                       return self->session(std::move(s));
                     },
                     asio::detached);
    }
  }

  static void fill_head(const http::request_parser<http::string_body>& parser, HttpRequest& r) {
    const auto& h = parser.get();
    r.method = std::string(h.method_string());
    r.target = std::string(h.target());
    std::size_t q = r.target.find('?');
    r.path = r.target.substr(0, q);
    r.query = q == std::string::npos ? std::string() : r.target.substr(q + 1);
    for (const auto& field : h) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      r.headers[name] = std::string(field.value());
    }
  }

  asio::awaitable<bool> write_plain(Stream& stream, HttpResponse& r, unsigned version,
                                    bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    res.set(http::field::server, "runtimed");
    res.set(http::field::content_type, r.content_type);
    res.set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : r.headers) res.set(name, value);
    res.body() = std::move(r.body);
    res.keep_alive(keep_alive && !r.close);
    res.prepare_payload();
    stream.expires_after(kWrite);
    auto [ec, n] = co_await http::async_write(stream, res, nothrow);
    stream.expires_never();
    co_return !ec && res.keep_alive();
  }

  asio::awaitable<bool> write_streamed(Stream& stream, HttpResponse& r, unsigned version,
                                       bool keep_alive) {
    http::response<http::empty_body> res{static_cast<http::status>(r.status), version};
    res.set(http::field::server, "runtimed");
    res.set(http::field::content_type, r.content_type);
    res.set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : r.headers) res.set(name, value);
    res.chunked(true);
    res.keep_alive(keep_alive && !r.close);
    http::response_serializer<http::empty_body> sr(res);
    stream.expires_after(kWrite);
    auto [ec, n] = co_await http::async_write_header(stream, sr, nothrow);
    stream.expires_never();
    if (ec) co_return false;
    ChunkSink sink(stream);
    co_await r.stream(sink);
    if (sink.failed()) co_return false;
    auto last = http::make_chunk_last();
    stream.expires_after(kWrite);
    auto [ec2, n2] = co_await asio::async_write(stream, last, nothrow);
    stream.expires_never();
    co_return !ec2 && res.keep_alive();
  }

  asio::awaitable<void> session(local::socket socket) {
    Stream stream(std::move(socket));
    auto tracked = open_.insert(open_.end(), &stream);
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxHeaderBlock);
      // The size is judged after authentication (below), so an unauthenticated client
      // learns nothing but 401.
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      stream.expires_after(first ? kFirstRequest : kKeepAliveIdle);
      first = false;
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, nothrow);
      stream.expires_never();
      if (ec) {
        if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
            ec != asio::error::operation_aborted && ec != asio::error::eof &&
            ec != asio::error::connection_reset) {
          HttpResponse bad;
          if (ec == http::error::body_limit) {
            // A declared Content-Length over the limit fails here, before any body byte.
            bad.status = 413;
            bad.body = error_body("payload_too_large", "request body over 1 MiB");
          } else {
            bad.status = ec == http::error::header_limit ? 431 : 400;
            bad.body = error_body("invalid_request", "malformed HTTP request");
          }
          co_await write_plain(stream, bad, 11, false);
        }
        break;
      }
      HttpRequest request;
      fill_head(parser, request);
      unsigned version = parser.get().version();
      bool keep_alive = parser.get().keep_alive();
      bool has_body = parser.content_length().value_or(0) > 0 || parser.chunked();

      if (auto early = handler_.check_head(request)) {
        // An unread body cannot be skipped safely: close after the answer.
        bool again = co_await write_plain(stream, *early, version, keep_alive && !has_body);
        if (!again) break;
        continue;
      }
      if (parser.content_length() && *parser.content_length() > kMaxRequestBody) {
        HttpResponse too_big;
        too_big.status = 413;
        too_big.body = error_body("payload_too_large", "request body over 1 MiB");
        co_await write_plain(stream, too_big, version, false);
        break;
      }
      parser.body_limit(kMaxRequestBody);
      if (!parser.is_done()) {
        stream.expires_after(kBodyRead);
        auto [body_ec, body_n] = co_await http::async_read(stream, buffer, parser, nothrow);
        stream.expires_never();
        if (body_ec == http::error::body_limit) {
          HttpResponse too_big;
          too_big.status = 413;
          too_big.body = error_body("payload_too_large", "request body over 1 MiB");
          co_await write_plain(stream, too_big, version, false);
          break;
        }
        if (body_ec) {
          if (body_ec != beast::error::timeout && body_ec != asio::error::eof &&
              body_ec != http::error::partial_message && body_ec != asio::error::connection_reset) {
            HttpResponse bad;
            bad.status = 400;
            bad.body = error_body("invalid_request", "malformed request body framing");
            co_await write_plain(stream, bad, version, false);
          }
          break;
        }
      }
      request.body = std::move(parser.get().body());
      HttpResponse response = co_await handler_.handle(request);
      bool again = false;
      if (response.stream) {
        again = co_await write_streamed(stream, response, version, keep_alive);
      } else {
        again = co_await write_plain(stream, response, version, keep_alive);
      }
      if (!again || closed_) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(local::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    open_.erase(tracked);
  }

  asio::any_io_executor ex_;
  HttpHandler& handler_;
  local::acceptor acceptor_;
  std::list<Stream*> open_;
  bool closed_ = false;
};

HttpServer::HttpServer(asio::any_io_executor ex, HttpHandler& handler)
    : impl_(std::make_shared<Impl>(ex, handler)) {}

HttpServer::~HttpServer() = default;

Status HttpServer::listen(const std::string& socket_path) { return impl_->listen(socket_path); }

void HttpServer::close() { impl_->close(); }

}  // namespace sandboxd::runtimed
