#include "websocket_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sandboxd::testing {

namespace {

std::string base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::string websocket_accept_for(const std::string& key) {
  std::string text = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return base64(digest, sizeof digest);
}

WebSocketClient::WebSocketClient(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    throw std::runtime_error(std::string("connect failed: ") + std::strerror(errno));
  }
}

WebSocketClient::~WebSocketClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool WebSocketClient::fill(std::chrono::steady_clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char buf[16384];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) return false;
  buffer_.append(buf, static_cast<std::size_t>(n));
  return true;
}

bool WebSocketClient::handshake(const std::string& host, const std::string& path,
                                std::chrono::milliseconds deadline) {
  unsigned char nonce[16];
  RAND_bytes(nonce, sizeof nonce);
  std::string key = base64(nonce, sizeof nonce);
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host +
                        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: " +
                        key + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    problem_ = "send failed";
    return false;
  }
  auto until = std::chrono::steady_clock::now() + deadline;
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(until)) {
      problem_ = "no answer head: " + buffer_;
      return false;
    }
  }
  std::string head = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);  // what follows is already WebSocket frames
  if (!head.starts_with("HTTP/1.1 101")) {
    problem_ = "not 101: " + head + "\r\n\r\n" + buffer_;
    return false;
  }
  std::string want = "sec-websocket-accept: " + lower(websocket_accept_for(key));
  if (lower(head).find(want) == std::string::npos) {
    problem_ = "wrong or no Sec-WebSocket-Accept: " + head;
    return false;
  }
  return true;
}

bool WebSocketClient::send(std::uint8_t opcode, const std::string& payload, bool fin) {
  std::string frame;
  frame.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  std::size_t n = payload.size();
  if (n < 126) {
    frame.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>(n >> 8));
    frame.push_back(static_cast<char>(n & 0xFF));
  } else {
    frame.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) frame.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  }
  unsigned char mask[4];
  RAND_bytes(mask, sizeof mask);
  frame.append(reinterpret_cast<const char*>(mask), 4);
  for (std::size_t i = 0; i < n; ++i) frame.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  std::size_t off = 0;
  while (off < frame.size()) {
    ssize_t sent = ::send(fd_, frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    off += static_cast<std::size_t>(sent);
  }
  return true;
}

std::optional<WebSocketFrame> WebSocketClient::read_frame(std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  auto need = [&](std::size_t n) {
    while (buffer_.size() < n) {
      if (!fill(until)) return false;
    }
    return true;
  };
  if (!need(2)) return std::nullopt;
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(buffer_[i]); };
  if (byte(1) & 0x80) return std::nullopt;  // a server must not mask
  std::size_t header = 2;
  std::uint64_t length = byte(1) & 0x7F;
  if (length >= 126) {
    std::size_t bytes = length == 126 ? 2 : 8;
    if (!need(2 + bytes)) return std::nullopt;
    length = 0;
    for (std::size_t i = 0; i < bytes; ++i) length = (length << 8) | byte(2 + i);
    header += bytes;
  }
  if (!need(header + length)) return std::nullopt;
  WebSocketFrame f;
  f.fin = (byte(0) & 0x80) != 0;
  f.opcode = byte(0) & 0x0F;
  f.payload = buffer_.substr(header, length);
  buffer_.erase(0, header + length);
  return f;
}

bool WebSocketClient::wait_closed(std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

}  // namespace sandboxd::testing
