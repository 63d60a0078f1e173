#include "raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sandboxd::testing {

RawConnection::RawConnection(std::uint16_t port) : RawConnection("127.0.0.1", port) {}

RawConnection::RawConnection(const std::string& ipv4, std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, ipv4.c_str(), &addr.sin_addr) != 1) {
    throw std::runtime_error("not an IPv4 address: " + ipv4);
  }
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    throw std::runtime_error(std::string("connect failed: ") + std::strerror(errno));
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void RawConnection::send(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // the server may close early on purpose (e.g. 431); reading tells the rest
    }
    off += static_cast<std::size_t>(n);
  }
}

bool RawConnection::fill(std::chrono::steady_clock::time_point until) {
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

std::optional<RawResponse> RawConnection::read_response(bool head,
                                                        std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(until)) return std::nullopt;
  }
  RawResponse res;
  std::string head_text = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  std::size_t line_end = head_text.find("\r\n");
  std::string status_line = head_text.substr(0, line_end);
  if (status_line.size() < 12) return std::nullopt;
  res.status = std::stoi(status_line.substr(9, 3));
  std::size_t pos = line_end == std::string::npos ? head_text.size() : line_end + 2;
  while (pos < head_text.size()) {
    std::size_t eol = head_text.find("\r\n", pos);
    if (eol == std::string::npos) eol = head_text.size();
    std::string line = head_text.substr(pos, eol - pos);
    std::size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      res.headers[name] = value;
    }
    pos = eol + 2;
  }
  if (auto it = res.headers.find("transfer-encoding");
      it != res.headers.end() && it->second.find("chunked") != std::string::npos && !head) {
    if (!read_chunked(res.body, until)) return std::nullopt;
    return res;
  }
  std::size_t length = 0;
  if (auto it = res.headers.find("content-length"); it != res.headers.end() && !head) {
    length = std::stoul(it->second);
  }
  while (buffer_.size() < length) {
    if (!fill(until)) return std::nullopt;
  }
  res.body = buffer_.substr(0, length);
  buffer_.erase(0, length);
  return res;
}

bool RawConnection::read_chunked(std::string& body, std::chrono::steady_clock::time_point until) {
  for (;;) {
    std::size_t eol;
    while ((eol = buffer_.find("\r\n")) == std::string::npos) {
      if (!fill(until)) return false;
    }
    std::size_t size = std::stoul(buffer_.substr(0, eol), nullptr, 16);  // extensions ignored
    buffer_.erase(0, eol + 2);
    if (size == 0) {
      // No trailers are expected: the last chunk is followed by an empty line.
      while (buffer_.size() < 2) {
        if (!fill(until)) return false;
      }
      buffer_.erase(0, 2);
      return true;
    }
    while (buffer_.size() < size + 2) {
      if (!fill(until)) return false;
    }
    body.append(buffer_, 0, size);
    buffer_.erase(0, size + 2);
  }
}

bool RawConnection::read_until(const std::string& needle, std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (buffer_.find(needle) == std::string::npos) {
    if (!fill(until)) return false;
  }
  return true;
}

bool RawConnection::wait_closed(std::chrono::milliseconds deadline) {
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

std::optional<RawResponse> http_get(std::uint16_t port, const std::string& target,
                                    const std::string& method) {
  RawConnection conn(port);
  conn.send(method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  return conn.read_response(method == "HEAD");
}

std::optional<RawResponse> http_request(std::uint16_t port, const std::string& method,
                                        const std::string& target, const std::string& body,
                                        const std::vector<std::string>& headers,
                                        std::chrono::milliseconds deadline) {
  RawConnection conn(port);
  std::string head = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) head += h + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  conn.send(head + "\r\n" + body);
  return conn.read_response(method == "HEAD", deadline);
}

}  // namespace sandboxd::testing
