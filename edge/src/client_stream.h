// A client connection's byte stream: the TCP socket itself, or TLS over it (SPEC §3.15).
//
// It is an Asio AsyncReadStream and AsyncWriteStream, so the connection code reads and
// writes it the same way on either listener; the choice is made once per connection, at run
// time. `socket()` is always the TCP socket: cancel, close, shutdown and waits go there.
//
// TLS writes of several buffers are gathered into one record of up to 16 KiB first (Asio's
// TLS stream would write one record per buffer). Not movable once TLS has started: the TLS
// stream refers to the socket member.
#pragma once

#include "io.h"

#include <boost/asio/ssl/stream.hpp>

#include <openssl/ssl.h>

#include <optional>
#include <vector>

namespace sandboxd::edge::detail {

class ClientStream {
 public:
  using executor_type = tcp::socket::executor_type;
  using Tls = asio::ssl::stream<tcp::socket&>;

  explicit ClientStream(tcp::socket socket) : socket_(std::move(socket)) {}
  ClientStream(const ClientStream&) = delete;
  ClientStream& operator=(const ClientStream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  tcp::socket& socket() { return socket_; }
  bool is_tls() const { return tls_.has_value(); }
  // The TLS stream; only when is_tls().
  Tls& tls() { return *tls_; }

  // The TLS session, or null on plain TCP.
  SSL* native_ssl() { return tls_ ? tls_->native_handle() : nullptr; }

  // Wraps the socket in TLS with `ssl` (owned from here on); the handshake is the caller's.
  void start_tls(SSL* ssl) { tls_.emplace(socket_, ssl); }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (tls_) {
            tls_->async_read_some(b, std::move(handler));
          } else {
            socket_.async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (!tls_) {
            socket_.async_write_some(b, std::move(handler));
            return;
          }
          // One record for as much of the sequence as fits: the bytes are a prefix of it, so
          // what the TLS stream reports written is what this call consumed.
          auto first = asio::buffer_sequence_begin(b);
          auto last = asio::buffer_sequence_end(b);
          if (first == last || std::next(first) == last ||
              asio::const_buffer(*first).size() >= kRecord) {
            tls_->async_write_some(b, std::move(handler));
            return;
          }
          gather_.clear();
          for (auto it = first; it != last && gather_.size() < kRecord; ++it) {
            const asio::const_buffer piece(*it);
            const std::size_t take = std::min(piece.size(), kRecord - gather_.size());
            const auto* p = static_cast<const char*>(piece.data());
            gather_.insert(gather_.end(), p, p + take);
          }
          tls_->async_write_some(asio::buffer(gather_), std::move(handler));
        },
        token, buffers);
  }

 private:
  static constexpr std::size_t kRecord = 16 * 1024;
  tcp::socket socket_;
  std::optional<Tls> tls_;
  std::vector<char> gather_;
};

}  // namespace sandboxd::edge::detail
