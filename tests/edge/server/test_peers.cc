#include "test_peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace sandboxd::edge::testing {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kPiece = 64 * 1024;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int remaining_ms(Clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<long>(left, 1000));
}

// Reads more bytes into `buf` before `until`; false on EOF, error or deadline.
bool fill_from(int fd, std::string& buf, Clock::time_point until, const std::atomic<bool>* stop) {
  char tmp[kPiece];
  while (Clock::now() < until) {
    if (stop != nullptr && stop->load()) return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, remaining_ms(until));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) continue;
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
  return false;
}

bool send_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool send_all(int fd, const std::string& s) { return send_all(fd, s.data(), s.size()); }

std::string chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

struct Request {
  std::string method, target, path, query, head;
  std::map<std::string, std::string> headers;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A streamed request body: counted, checked against the pattern, the first 64 KiB kept.
struct Body {
  std::uint64_t bytes = 0;
  std::uint64_t sum = kFnvBasis;
  bool pattern = true;
  std::string kept;
  void take(const char* p, std::size_t n) {
    sum = fnv1a(sum, p, n);
    for (std::size_t i = 0; i < n && pattern; ++i) pattern = p[i] == pattern_byte(bytes + i);
    if (kept.size() < kPiece) kept.append(p, std::min(n, kPiece - kept.size()));
    bytes += n;
  }
};

}  // namespace

std::uint64_t fnv1a(std::uint64_t h, const char* data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(data[i])) * 1099511628211ull;
  return h;
}

void reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

std::uint64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // kB
  }
  return 0;
}

TestUpstream::TestUpstream(std::uint16_t port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 128) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("test upstream: cannot listen");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TestUpstream::~TestUpstream() {
  stop_ = true;
  release();
  acceptor_.join();
  {
    std::lock_guard lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : threads_) t.join();
  for (int fd : fds_) ::close(fd);
  ::close(listen_fd_);
}

void TestUpstream::release() {
  std::lock_guard lock(mu_);
  released_ = true;
  cv_.notify_all();
}

bool TestUpstream::wait_released(std::chrono::milliseconds limit) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, limit, [&] { return released_; });
}

void TestUpstream::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ++accepts_;
    std::lock_guard lock(mu_);
    fds_.push_back(fd);
    threads_.emplace_back([this, fd] { serve(fd); });
  }
}

void TestUpstream::serve(int fd) {
  std::string buf;
  auto fill = [&] { return fill_from(fd, buf, Clock::now() + 30s, &stop_); };
  for (int served = 0; served < 100000 && !stop_; ++served) {
    std::size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (buf.size() > 1024 * 1024 || !fill()) {
        ::shutdown(fd, SHUT_RDWR);
        return;
      }
    }
    Request r;
    r.head = buf.substr(0, end + 4);
    buf.erase(0, end + 4);
    {
      std::size_t eol = r.head.find("\r\n");
      std::string line = r.head.substr(0, eol);
      std::size_t sp1 = line.find(' ');
      std::size_t sp2 = line.find(' ', sp1 + 1);
      r.method = line.substr(0, sp1);
      r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      std::size_t q = r.target.find('?');
      r.path = r.target.substr(0, q);
      r.query = q == std::string::npos ? "" : r.target.substr(q + 1);
      std::size_t pos = eol + 2;
      while (pos < end) {
        std::size_t e = r.head.find("\r\n", pos);
        std::string field = r.head.substr(pos, e - pos);
        pos = e + 2;
        std::size_t colon = field.find(':');
        if (colon == std::string::npos) continue;
        std::string value = field.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        auto& slot = r.headers[lower(field.substr(0, colon))];
        slot = slot.empty() ? value : slot + ", " + value;
      }
    }
    if (lower(r.header("expect")) == "100-continue") {
      if (!send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n")) return;
    }

    Body body;
    if (lower(r.header("transfer-encoding")) == "chunked") {
      for (;;) {
        std::size_t eol;
        while ((eol = buf.find("\r\n")) == std::string::npos) {
          if (!fill()) return;
        }
        std::uint64_t size = std::stoull(buf.substr(0, eol), nullptr, 16);
        buf.erase(0, eol + 2);
        if (size == 0) {
          while ((eol = buf.find("\r\n")) == std::string::npos) {
            if (!fill()) return;
          }
          buf.erase(0, eol + 2);  // no trailers are sent by the edge
          break;
        }
        while (size > 0) {
          if (buf.empty() && !fill()) return;
          std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, buf.size()));
          body.take(buf.data(), n);
          buf.erase(0, n);
          size -= n;
        }
        while (buf.size() < 2) {
          if (!fill()) return;
        }
        buf.erase(0, 2);
      }
    } else if (!r.header("content-length").empty()) {
      std::uint64_t left = std::stoull(r.header("content-length"));
      while (left > 0) {
        if (buf.empty() && !fill()) return;
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
        body.take(buf.data(), n);
        buf.erase(0, n);
        left -= n;
      }
    }

    bool close = lower(r.header("connection")).find("close") != std::string::npos;
    std::string answer;
    if (r.path == "/ws" && !r.header("upgrade").empty()) {
      if (!send_all(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + r.header("upgrade") +
                            "\r\nConnection: Upgrade\r\n\r\nhello\n")) {
        return;
      }
      if (!buf.empty() && !send_all(fd, buf)) return;
      buf.clear();
      while (fill_from(fd, buf, Clock::now() + 30s, &stop_)) {
        if (!send_all(fd, buf)) break;
        if (buf.find("quit") != std::string::npos) break;  // the app ends the tunnel
        buf.clear();
      }
      ::shutdown(fd, SHUT_RDWR);
      return;
    } else if (r.path == "/ws-frames" && !r.header("upgrade").empty()) {
      // Real WebSocket frames: "one" whole, then a 10-byte text frame cut after 4 bytes;
      // once released, the other 6 bytes and a frame "three". Then it reads until EOF.
      const std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\n\r\n";
      if (!send_all(fd, head + "\x82\x03one" + "\x81\x0a" + "0123")) return;
      wait_released(10s);
      if (!send_all(fd, std::string("456789") + "\x81\x05three")) return;
      while (fill_from(fd, buf, Clock::now() + 30s, &stop_)) buf.clear();
      ::shutdown(fd, SHUT_RDWR);
      return;
    } else if (r.path == "/echo") {
      std::string text = r.head + "--body--\n" + body.kept;
      answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Upstream: 1\r\n"
               "Connection: keep-alive, X-Secret\r\nX-Secret: hop\r\nKeep-Alive: timeout=5\r\n"
               "Content-Length: " + std::to_string(text.size()) + "\r\n\r\n" + text;
    } else if (r.path == "/upload") {
      std::string text = "bytes=" + std::to_string(body.bytes) + " sum=" + std::to_string(body.sum) +
                         " pattern=" + (body.pattern ? "1" : "0");
      answer = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(text.size()) + "\r\n\r\n" + text;
    } else if (r.path == "/download") {
      std::uint64_t n = std::stoull(r.query.substr(2));  // n=<bytes>
      std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         "Content-Length: " + std::to_string(n) + "\r\n\r\n";
      if (!send_all(fd, head)) return;
      if (r.method == "HEAD") continue;
      std::string block(kPiece, '\0');
      for (std::uint64_t off = 0; off < n;) {
        std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(kPiece, n - off));
        for (std::size_t i = 0; i < k; ++i) block[i] = pattern_byte(off + i);
        if (!send_all(fd, block.data(), k)) return;
        off += k;
      }
    } else if (r.path == "/chunked") {
      answer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
               "5;ext=1\r\npart1\r\n" + chunk("part2") + chunk("part3") + "0\r\nX-T: 1\r\n\r\n";
    } else if (r.path == "/sse") {
      if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n" + chunk("data: first\n\n"))) {
        return;
      }
      wait_released(10s);
      answer = chunk("data: second\n\n") + "0\r\n\r\n";
    } else if (r.path == "/sse-close") {
      if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        "Connection: close\r\n\r\ndata: first\n\n")) {
        return;
      }
      wait_released(10s);
      answer = "data: second\n\n";
      close = true;
    } else if (r.path == "/bad") {
      answer = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
      close = true;
    } else if (r.path.rfind("/status/", 0) == 0) {
      answer = "HTTP/1.1 " + r.path.substr(8) + " Whatever\r\n\r\n";
    } else {
      answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    }
    if (!answer.empty() && !send_all(fd, answer)) return;
    if (close) {
      ::shutdown(fd, SHUT_RDWR);
      return;
    }
  }
}

Client::Client(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    throw std::runtime_error("client: cannot connect");
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{30, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Client::~Client() { ::close(fd_); }

bool Client::send(const std::string& bytes, std::chrono::milliseconds) {
  return send_all(fd_, bytes);
}

void Client::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

bool Client::fill(Clock::time_point until) { return fill_from(fd_, buffer_, until, nullptr); }

bool Client::read_until(const std::string& needle, std::chrono::milliseconds limit) {
  const auto until = Clock::now() + limit;
  while (buffer_.find(needle) == std::string::npos) {
    if (!fill(until)) return false;
  }
  return true;
}

bool Client::wait_closed(std::chrono::milliseconds limit) {
  const auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, remaining_ms(until));
    if (r <= 0) continue;
    char tmp[4096];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return true;
    buffer_.append(tmp, static_cast<std::size_t>(n));
  }
  return false;
}

std::optional<Response> Client::read(bool head_request, bool keep_body,
                                     std::chrono::milliseconds limit) {
  const auto until = Clock::now() + limit;
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(until)) return std::nullopt;
  }
  Response r;
  const std::string head = buffer_.substr(0, end + 4);
  buffer_.erase(0, end + 4);
  std::size_t eol = head.find("\r\n");
  const std::string line = head.substr(0, eol);
  if (line.size() < 12) return std::nullopt;
  r.status = std::stoi(line.substr(9, 3));
  r.reason = line.size() > 13 ? line.substr(13) : "";
  for (std::size_t pos = eol + 2; pos < end;) {
    std::size_t e = head.find("\r\n", pos);
    std::string field = head.substr(pos, e - pos);
    pos = e + 2;
    std::size_t colon = field.find(':');
    std::string value = field.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    auto& slot = r.headers[lower(field.substr(0, colon))];
    slot = slot.empty() ? value : slot + ", " + value;
  }
  auto take = [&](std::size_t n) {
    r.body_sum = fnv1a(r.body_sum, buffer_.data(), n);
    if (keep_body) r.body.append(buffer_, 0, n);
    r.body_bytes += n;
    buffer_.erase(0, n);
  };
  r.body_sum = kFnvBasis;
  if (head_request || r.status < 200 || r.status == 204 || r.status == 304) return r;
  if (lower(r.header("transfer-encoding")) == "chunked") {
    r.chunked = true;
    for (;;) {
      while ((eol = buffer_.find("\r\n")) == std::string::npos) {
        if (!fill(until)) return std::nullopt;
      }
      std::uint64_t size = std::stoull(buffer_.substr(0, eol), nullptr, 16);
      buffer_.erase(0, eol + 2);
      if (size == 0) {
        while ((eol = buffer_.find("\r\n")) == std::string::npos) {
          if (!fill(until)) return std::nullopt;
        }
        buffer_.erase(0, eol + 2);
        return r;
      }
      while (size > 0) {
        if (buffer_.empty() && !fill(until)) return std::nullopt;
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, buffer_.size()));
        take(n);
        size -= n;
      }
      while (buffer_.size() < 2) {
        if (!fill(until)) return std::nullopt;
      }
      buffer_.erase(0, 2);
    }
  }
  if (!r.header("content-length").empty()) {
    std::uint64_t left = std::stoull(r.header("content-length"));
    while (left > 0) {
      if (buffer_.empty() && !fill(until)) return std::nullopt;
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer_.size()));
      take(n);
      left -= n;
    }
    return r;
  }
  for (;;) {  // until close
    take(buffer_.size());
    if (!fill(until)) return r;
  }
}

}  // namespace sandboxd::edge::testing
