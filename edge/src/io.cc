#include "io.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace sandboxd::edge::detail {

void tune_socket(tcp::socket& socket) {
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
  int idle = 60;
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
}

asio::awaitable<ConnectResult> connect_within(tcp::socket& socket, tcp::endpoint to,
                                              std::chrono::milliseconds limit) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer deadline(ex, limit);
  auto first = co_await (socket.async_connect(to, nothrow) || deadline.async_wait(nothrow));
  if (first.index() == 1) {
    error_code ignored;
    socket.close(ignored);
    co_return ConnectResult::timeout;
  }
  auto [ec] = std::get<0>(first);
  if (!ec) {
    tune_socket(socket);
    co_return ConnectResult::ok;
  }
  error_code ignored;
  socket.close(ignored);
  co_return ec == asio::error::connection_refused ? ConnectResult::refused : ConnectResult::failed;
}

}  // namespace sandboxd::edge::detail
