#include "transport.h"

#include "docker/error.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <sys/un.h>

#include <vector>

namespace sandboxd::docker::detail {

namespace beast = boost::beast;
namespace http = beast::http;
using namespace asio::experimental::awaitable_operators;
using Socket = asio::local::stream_protocol::socket;
using boost::system::error_code;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kMaxErrorBody = 64 * 1024;

using Message = http::request<http::string_body>;
using StreamParser = http::response_parser<http::buffer_body>;

struct Connection {
  explicit Connection(const asio::any_io_executor& ex) : socket(ex) {}
  Socket socket;
  beast::flat_buffer buffer;
};
using ConnectionPtr = std::unique_ptr<Connection>;

// A finished exchange on a connection.
struct Exchanged {
  HttpReply reply;
  bool keep_alive = false;
};

http::verb verb_of(Method m) {
  switch (m) {
    case Method::get: return http::verb::get;
    case Method::post: return http::verb::post;
    case Method::del: return http::verb::delete_;
  }
  return http::verb::get;
}

Message make_message(const HttpRequest& r) {
  Message m{verb_of(r.method), r.target, 11};
  m.set(http::field::host, "docker");
  m.set(http::field::user_agent, "sandboxd");
  if (!r.body.empty()) {
    m.set(http::field::content_type, "application/json");
    m.body() = r.body;
  }
  m.prepare_payload();
  m.keep_alive(true);
  return m;
}

Error transport_error(std::string_view what, const error_code& ec) {
  if (ec == asio::error::operation_aborted) return Error{Errc::cancelled, "docker call cancelled"};
  if (ec == http::error::body_limit) {
    return docker_error(DockerErrorKind::protocol, "answer larger than the body limit");
  }
  const bool dropped = ec == http::error::end_of_stream || ec == http::error::partial_message ||
                       ec.category() != make_error_code(http::error::end_of_stream).category();
  if (!dropped) {
    return docker_error(DockerErrorKind::protocol, "malformed HTTP answer: " + ec.message());
  }
  return docker_error(DockerErrorKind::unreachable, std::string(what) + ": " + ec.message());
}

void close(ConnectionPtr& conn) {
  if (!conn) return;
  error_code ignored;
  conn->socket.close(ignored);
  conn.reset();
}

std::int64_t ms_between(std::chrono::steady_clock::time_point a, Deadline b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

}  // namespace

class Transport::Impl {
 public:
  Impl(asio::any_io_executor executor, std::string socket_path, std::size_t max_idle,
       std::size_t max_body)
      : executor_(std::move(executor)),
        socket_path_(std::move(socket_path)),
        max_idle_(max_idle),
        max_body_(max_body) {}

  ~Impl() {
    for (auto& conn : idle_) close(conn);
  }

  asio::awaitable<Result<HttpReply>> request(const HttpRequest& request, Deadline deadline) {
    const auto started = std::chrono::steady_clock::now();
    const Message message = make_message(request);
    for (int attempt = 0;; ++attempt) {
      ConnectionPtr conn;
      bool reused = false;
      bool answered = false;
      asio::steady_timer timer(executor_, deadline);
      auto outcome =
          co_await (exchange(message, conn, reused, answered) || timer.async_wait(nothrow));
      if (outcome.index() == 1) {
        close(conn);
        co_return docker_error(DockerErrorKind::timeout,
                               "no answer within " + std::to_string(ms_between(started, deadline)) +
                                   " ms");
      }
      auto result = std::get<0>(std::move(outcome));
      if (!result) {
        close(conn);
        // The engine closes idle keep-alive connections; such a request never reached it.
        if (reused && !answered && attempt == 0 &&
            docker_error_kind(result.error()) == DockerErrorKind::unreachable) {
          continue;
        }
        co_return result.error();
      }
      if (result->keep_alive) {
        release(std::move(conn));
      } else {
        close(conn);
      }
      co_return std::move(result->reply);
    }
  }

  asio::awaitable<Result<HttpReply>> stream(const HttpRequest& request, Deadline head_deadline,
                                            HeadFn on_head, DataFn on_data) {
    const auto started = std::chrono::steady_clock::now();
    const Message message = make_message(request);
    // Streams get their own connection: they are long, and it is closed at the end.
    ConnectionPtr conn;
    StreamParser parser;
    parser.body_limit(boost::none);
    asio::steady_timer timer(executor_, head_deadline);
    auto outcome = co_await (open_stream(message, conn, parser) || timer.async_wait(nothrow));
    if (outcome.index() == 1) {
      close(conn);
      co_return docker_error(DockerErrorKind::timeout,
                             "no answer within " +
                                 std::to_string(ms_between(started, head_deadline)) + " ms");
    }
    auto head = std::get<0>(std::move(outcome));
    if (!head || head->status < 200 || head->status > 299) {
      close(conn);
      co_return head;
    }
    if (on_head) on_head(head->status);

    std::vector<char> chunk(kChunk);
    while (!parser.is_done()) {
      auto& body = parser.get().body();
      body.data = chunk.data();
      body.size = chunk.size();
      body.more = true;
      auto [ec, n] = co_await http::async_read_some(conn->socket, conn->buffer, parser, nothrow);
      if (ec == http::error::need_buffer) ec = {};
      const std::size_t got = chunk.size() - parser.get().body().size;
      if (got > 0 && !on_data(std::string_view(chunk.data(), got))) break;
      if (ec) {
        close(conn);
        co_return transport_error("stream from the Docker Engine dropped", ec);
      }
    }
    close(conn);
    co_return std::move(*head);
  }

  std::uint64_t connections_opened() const { return opened_; }
  std::size_t idle() const { return idle_.size(); }

 private:
  asio::awaitable<Status> connect(ConnectionPtr& conn) {
    if (socket_path_.size() >= sizeof(sockaddr_un::sun_path)) {
      co_return docker_error(DockerErrorKind::unreachable, "Docker socket path too long");
    }
    conn = std::make_unique<Connection>(executor_);
    auto [ec] = co_await conn->socket.async_connect(
        asio::local::stream_protocol::endpoint(socket_path_), nothrow);
    if (ec) co_return transport_error("cannot connect to the Docker Engine socket", ec);
    ++opened_;
    co_return ok();
  }

  asio::awaitable<Result<Exchanged>> exchange(const Message& message, ConnectionPtr& conn,
                                              bool& reused, bool& answered) {
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
      reused = true;
    } else if (auto st = co_await connect(conn); !st) {
      co_return st.error();
    }
    auto [wec, written] = co_await http::async_write(conn->socket, message, nothrow);
    if (wec) co_return transport_error("cannot send to the Docker Engine", wec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_body_);
    auto [rec, read] = co_await http::async_read(conn->socket, conn->buffer, parser, nothrow);
    answered = parser.got_some();
    if (rec) co_return transport_error("connection to the Docker Engine lost", rec);
    auto& res = parser.get();
    co_return Exchanged{HttpReply{static_cast<int>(res.result_int()), std::move(res.body())},
                        res.keep_alive()};
  }

  // Connects, sends, reads the head; an answer outside 2xx is read whole (it is small).
  asio::awaitable<Result<HttpReply>> open_stream(const Message& message, ConnectionPtr& conn,
                                                 StreamParser& parser) {
    if (auto st = co_await connect(conn); !st) co_return st.error();
    auto [wec, written] = co_await http::async_write(conn->socket, message, nothrow);
    if (wec) co_return transport_error("cannot send to the Docker Engine", wec);
    auto [hec, head] = co_await http::async_read_header(conn->socket, conn->buffer, parser, nothrow);
    if (hec) co_return transport_error("connection to the Docker Engine lost", hec);
    HttpReply reply{static_cast<int>(parser.get().result_int()), {}};
    if (reply.status >= 200 && reply.status <= 299) co_return reply;
    std::vector<char> chunk(kChunk);
    while (!parser.is_done() && reply.body.size() < kMaxErrorBody) {
      auto& body = parser.get().body();
      body.data = chunk.data();
      body.size = chunk.size();
      body.more = true;
      auto [ec, n] = co_await http::async_read(conn->socket, conn->buffer, parser, nothrow);
      if (ec == http::error::need_buffer) ec = {};
      reply.body.append(chunk.data(), chunk.size() - parser.get().body().size);
      if (ec) break;  // the status is what matters; keep what arrived of the message
    }
    co_return reply;
  }

  void release(ConnectionPtr conn) {
    if (idle_.size() < max_idle_ && conn->buffer.size() == 0) {
      idle_.push_back(std::move(conn));
    } else {
      close(conn);
    }
  }

  asio::any_io_executor executor_;
  std::string socket_path_;
  std::size_t max_idle_;
  std::size_t max_body_;
  std::vector<ConnectionPtr> idle_;
  std::uint64_t opened_ = 0;
};

Transport::Transport(asio::any_io_executor executor, std::string socket_path,
                     std::size_t max_idle, std::size_t max_body)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(socket_path), max_idle,
                                   max_body)) {}

Transport::~Transport() = default;

asio::awaitable<Result<HttpReply>> Transport::request(const HttpRequest& request,
                                                      Deadline deadline) {
  return impl_->request(request, deadline);
}

asio::awaitable<Result<HttpReply>> Transport::stream(const HttpRequest& request,
                                                     Deadline head_deadline, HeadFn on_head,
                                                     DataFn on_data) {
  return impl_->stream(request, head_deadline, std::move(on_head), std::move(on_data));
}

std::uint64_t Transport::connections_opened() const { return impl_->connections_opened(); }
std::size_t Transport::idle() const { return impl_->idle(); }

}  // namespace sandboxd::docker::detail
