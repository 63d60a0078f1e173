#include "control/api_server.h"

#include "base/log.h"
#include "base/ulid.h"
#include "router.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <thread>

namespace sandboxd::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr log::Logger kLog{"control"};
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// SPEC §13: target over 8 KiB → 414, header block over 16 KiB → 431.
constexpr std::size_t kMaxTarget = 8 * 1024;
constexpr std::size_t kMaxHeaderBlock = 16 * 1024;

http::response<http::string_body> to_beast(Response r, bool head, unsigned version) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "sandboxd");
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Request-Id", new_ulid().str());
  for (auto& [name, value] : r.headers) res.set(name, value);
  res.body() = std::move(r.body);
  res.prepare_payload();
  if (head) res.body().clear();  // Content-Length stays that of the GET answer
  if (r.close) res.keep_alive(false);
  return res;
}

class ServerImpl final : public ApiServer {
 public:
  ServerImpl(const ApiServerOptions& options, ReadinessSource& readiness)
      : options_(options), readiness_(readiness), acceptor_(ioc_) {}

  ~ServerImpl() override { stop(); }

  Status listen() {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options_.host == "localhost" ? "127.0.0.1"
                                                                       : options_.host, ec);
    if (options_.host.empty()) address = asio::ip::address_v6::any();
    else if (ec) return Error{Errc::invalid_argument, "control.listen: not an IP address: " + options_.host};
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
    asio::co_spawn(ioc_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
    return ok();
  }

  std::uint16_t port() const override { return port_; }

  void stop() override {
    if (!thread_.joinable()) return;
    ioc_.stop();
    thread_.join();
    // The I/O thread is gone, so the acceptor can be closed from here. Open connections
    // end when their coroutine frames are destroyed with the io_context.
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec) continue;  // e.g. EMFILE: keep serving the connections we have
      asio::co_spawn(ioc_, session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxHeaderBlock);
      parser.body_limit(options_.max_body_bytes);
      // The first request must arrive within header_read; later ones within keepalive_idle.
      stream.expires_after(first ? options_.header_read : options_.keepalive_idle);
      first = false;
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, nothrow);
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
        break;
      }
      Response answer;
      bool head = false;
      unsigned version = 11;
      if (ec == http::error::header_limit) {
        answer = error_response("/", 431, "invalid_request", "request header block too large");
        answer.close = true;
      } else if (ec == http::error::body_limit) {
        answer = error_response("/", 413, "payload_too_large", "request body too large");
        answer.close = true;
      } else if (ec) {
        answer = error_response("/", 400, "invalid_request", "malformed request");
        answer.close = true;
      } else {
        auto& req = parser.get();
        version = req.version();
        head = req.method() == http::verb::head;
        if (req.target().size() > kMaxTarget) {
          answer = error_response("/", 414, "invalid_request", "request target too long");
          answer.close = true;
        } else {
          Request request{std::string(req.method_string()), std::string(req.target())};
          answer = route(request, readiness_);
          if (!req.keep_alive()) answer.close = true;
        }
      }
      auto res = to_beast(std::move(answer), head, version);
      stream.expires_after(options_.header_read);
      auto [wec, written] = co_await http::async_write(stream, res, nothrow);
      if (wec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  ApiServerOptions options_;
  ReadinessSource& readiness_;
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

}  // namespace

Result<std::unique_ptr<ApiServer>> ApiServer::start(const ApiServerOptions& options,
                                                    ReadinessSource& readiness) {
  auto server = std::make_unique<ServerImpl>(options, readiness);
  if (auto st = server->listen(); !st) return st.error();
  kLog.info("control listening", {{"address", options.host}, {"port", server->port()}});
  return std::unique_ptr<ApiServer>(std::move(server));
}

}  // namespace sandboxd::control
