// A blocking WebSocket client (RFC 6455) over a plain TCP socket, for tests that talk to the
// test image's /ws echo through the preview edge: the opening handshake with a fresh key,
// masked client frames, and unmasked server frames read with a deadline. It never throws on
// network conditions (a failure is a false or nullopt result) except when the TCP connect
// itself fails, like RawConnection.
//
// Not thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace sandboxd::testing {

struct WebSocketFrame {
  bool fin = true;
  std::uint8_t opcode = 0;  // 1 text, 2 binary, 8 close, 9 ping, 10 pong
  std::string payload;

  // A close frame's status code (RFC 6455 §5.5.1); -1 when the payload has none.
  int close_code() const {
    if (payload.size() < 2) return -1;
    return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
  }
};

class WebSocketClient {
 public:
  // Connects to 127.0.0.1:port; throws std::runtime_error when the connect fails.
  explicit WebSocketClient(std::uint16_t port);
  ~WebSocketClient();
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  // Sends the upgrade request for `path` on `host` and reads the answer's head. True when it
  // is `101` with the Sec-WebSocket-Accept that matches the key; otherwise `problem()` says
  // what came instead.
  bool handshake(const std::string& host, const std::string& path = "/ws",
                 std::chrono::milliseconds deadline = std::chrono::seconds(30));

  // Sends one masked frame; false when the socket failed.
  bool send(std::uint8_t opcode, const std::string& payload, bool fin = true);
  bool send_text(const std::string& text) { return send(1, text); }

  // Reads the next frame (server frames are unmasked); nullopt on EOF, an invalid frame or
  // the deadline.
  std::optional<WebSocketFrame> read_frame(
      std::chrono::milliseconds deadline = std::chrono::seconds(10));

  // True when the peer closes the TCP connection before the deadline (frames are skipped).
  bool wait_closed(std::chrono::milliseconds deadline = std::chrono::seconds(10));

  const std::string& problem() const { return problem_; }

 private:
  bool fill(std::chrono::steady_clock::time_point until);
  int fd_ = -1;
  std::string buffer_;  // received bytes not consumed yet
  std::string problem_;
};

// Sec-WebSocket-Accept for a key (base64 of SHA-1 of key + the RFC 6455 GUID).
std::string websocket_accept_for(const std::string& key);

}  // namespace sandboxd::testing
