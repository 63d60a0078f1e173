#include "http_client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>

#include <openssl/ssl.h>

#include <mutex>
#include <optional>
#include <strings.h>

namespace sandboxd::acme {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
using Deadline = std::chrono::steady_clock::time_point;

struct Target {
  bool tls = false;
  std::string host;       // no brackets
  std::string port;
  std::string host_header;
  std::string path;       // path and query
};

Result<Target> parse_target(std::string_view text) {
  auto url = boost::urls::parse_uri(text);
  if (!url) return Error{Errc::invalid_argument, "invalid URL"};
  Target t;
  if (url->scheme_id() == boost::urls::scheme::https) {
    t.tls = true;
  } else if (url->scheme_id() != boost::urls::scheme::http) {
    return Error{Errc::invalid_argument, "URL scheme must be http or https"};
  }
  t.host = url->host_address();
  if (t.host.empty()) return Error{Errc::invalid_argument, "URL has no host"};
  t.port = url->has_port() ? std::string(url->port()) : (t.tls ? "443" : "80");
  t.host_header = url->encoded_host_and_port();
  t.path = url->encoded_target();
  if (t.path.empty()) t.path = "/";
  return t;
}

Error io_error(std::string_view what, const error_code& ec) {
  if (ec == beast::error::timeout) return Error{Errc::timeout, std::string(what) + ": timed out"};
  if (ec == asio::error::operation_aborted) return Error{Errc::cancelled, "request cancelled"};
  return Error{Errc::unavailable, std::string(what) + ": " + ec.message()};
}

template <class Stream>
asio::awaitable<Result<HttpResponse>> exchange_on(Stream& stream, const Target& t,
                                                  const HttpRequest& req,
                                                  const HttpClientOptions& opts) {
  const http::verb verb = http::string_to_verb(req.method);
  if (verb == http::verb::unknown) co_return Error{Errc::invalid_argument, "bad HTTP method"};
  http::request<http::string_body> m{verb, t.path, 11};
  m.set(http::field::host, t.host_header);
  m.set(http::field::user_agent, opts.user_agent);
  for (const auto& h : req.headers) m.set(h.name, h.value);
  m.keep_alive(false);
  if (!req.body.empty() || verb == http::verb::post || verb == http::verb::put) {
    m.body() = req.body;
    m.prepare_payload();
  }
  if (auto [ec, n] = co_await http::async_write(stream, m, nothrow); ec) {
    co_return io_error("sending the request", ec);
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(opts.max_body);
  if (verb == http::verb::head) parser.skip(true);
  if (auto [ec, n] = co_await http::async_read(stream, buffer, parser, nothrow); ec) {
    if (ec == http::error::body_limit) co_return Error{Errc::unavailable, "answer too large"};
    co_return io_error("reading the answer", ec);
  }
  auto& res = parser.get();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    out.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  }
  out.body = std::move(res.body());
  co_return out;
}

asio::awaitable<Result<HttpResponse>> exchange(Target t, const HttpRequest& req,
                                               ssl::context* ctx, Deadline deadline,
                                               const HttpClientOptions& opts) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, endpoints] = co_await resolver.async_resolve(t.host, t.port, nothrow);
  if (rec) co_return io_error("resolving " + t.host, rec);
  beast::tcp_stream tcp_stream(ex);
  tcp_stream.expires_at(deadline);
  if (auto [ec, ep] = co_await tcp_stream.async_connect(endpoints, nothrow); ec) {
    co_return io_error("connecting to " + t.host_header, ec);
  }
  if (!t.tls) co_return co_await exchange_on(tcp_stream, t, req, opts);

  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *ctx);
  error_code not_ip;
  asio::ip::make_address(t.host, not_ip);
  // SSL_set_tlsext_host_name is a macro with a C cast; this is the call it expands to.
  if (not_ip && SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME,
                         TLSEXT_NAMETYPE_host_name, t.host.data()) != 1) {
    co_return Error{Errc::internal, "cannot set SNI"};
  }
  stream.set_verify_mode(ssl::verify_peer);
  stream.set_verify_callback(ssl::host_name_verification(t.host));
  if (auto [ec] = co_await stream.async_handshake(ssl::stream_base::client, nothrow); ec) {
    co_return io_error("TLS handshake with " + t.host_header, ec);
  }
  co_return co_await exchange_on(stream, t, req, opts);
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name.size() == name.size() &&
        ::strncasecmp(h.name.data(), name.data(), name.size()) == 0) {
      return h.value;
    }
  }
  return {};
}

class HttpClient::Impl {
 public:
  explicit Impl(HttpClientOptions o) : opts(std::move(o)), ctx(ssl::context::tls_client) {
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    error_code ec;
    if (opts.system_cas) ctx.set_default_verify_paths(ec);
    if (!opts.ca_file.empty()) {
      ctx.load_verify_file(opts.ca_file, ec);
      if (ec) ca_error = "cannot load the CA file " + opts.ca_file + ": " + ec.message();
    }
  }

  HttpClientOptions opts;
  ssl::context ctx;
  std::string ca_error;
  std::mutex mu;
  asio::io_context* running = nullptr;
  bool aborted = false;
};

HttpClient::HttpClient(HttpClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::send(const HttpRequest& request) {
  auto target = parse_target(request.url);
  if (!target) return target.error();
  if (target->tls && !impl_->ca_error.empty()) return Error{Errc::invalid_argument, impl_->ca_error};
  asio::io_context ioc;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->aborted) return Error{Errc::cancelled, "request cancelled"};
    impl_->running = &ioc;
  }
  std::optional<Result<HttpResponse>> out;
  const Deadline deadline = std::chrono::steady_clock::now() + impl_->opts.timeout;
  asio::co_spawn(ioc, exchange(std::move(*target), request, &impl_->ctx, deadline, impl_->opts),
                 [&out](std::exception_ptr ep, Result<HttpResponse> r) {
                   if (ep) {
                     out.emplace(Error{Errc::internal, "HTTP client failed unexpectedly"});
                   } else {
                     out.emplace(std::move(r));
                   }
                 });
  ioc.run();
  {
    std::lock_guard lock(impl_->mu);
    impl_->running = nullptr;
  }
  if (!out) return Error{Errc::cancelled, "request cancelled"};
  return std::move(*out);
}

void HttpClient::abort() {
  std::lock_guard lock(impl_->mu);
  impl_->aborted = true;
  if (impl_->running != nullptr) impl_->running->stop();
}

}  // namespace sandboxd::acme
