// Asio spellings shared by the edge's I/O sources (never included by a public header).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>

namespace sandboxd::edge::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;

inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// TCP_NODELAY and SO_KEEPALIVE with 60 s idle (SPEC §3.2), best effort.
void tune_socket(tcp::socket& socket);

enum class ConnectResult : std::uint8_t { ok, refused, timeout, failed };

// Connects `socket` (opened here) to `to` within `limit`; a timed-out socket is closed.
asio::awaitable<ConnectResult> connect_within(tcp::socket& socket, tcp::endpoint to,
                                              std::chrono::milliseconds limit);

}  // namespace sandboxd::edge::detail
