#include "http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sandboxd::cli {

namespace {

constexpr std::size_t kMaxHead = 64 * 1024;

int remaining_ms(Deadline d) {
  if (!d) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*d - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left);
}

// Waits until `fd` is ready for `events`; false when the deadline passed.
bool wait_fd(int fd, short events, Deadline d) {
  for (;;) {
    int ms = remaining_ms(d);
    if (d && ms == 0) return false;
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, ms);
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return true;  // let the following call report the error
  }
}

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  std::string out;
  while (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    // Keep the reason part: "error:0A000086:SSL routines::certificate verify failed".
    std::string s = buf;
    std::size_t colon = s.rfind(':');
    out = colon == std::string::npos ? s : s.substr(colon + 1);
    e = ERR_get_error();
  }
  return out.empty() ? "handshake failed" : out;
}

bool is_ip_literal(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

}  // namespace

std::string describe_duration(std::chrono::milliseconds d) {
  long long ms = d.count();
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  long long s = ms / 1000;
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

class Connection {
 public:
  Connection(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  ~Connection() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  static CliResult<std::unique_ptr<Connection>> open(const ServerUrl& url,
                                                     const std::string& server_text,
                                                     const TlsOptions& tls, Deadline deadline);

  CliStatus write_all(std::string_view data, Deadline d) {
    while (!data.empty()) {
      std::size_t n = 0;
      if (ssl_) {
        ERR_clear_error();
        if (SSL_write_ex(ssl_, data.data(), data.size(), &n) != 1) {
          int err = SSL_get_error(ssl_, 0);
          if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            if (!wait_fd(fd_, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, d)) return timed_out();
            continue;
          }
          return write_failed(errno);
        }
      } else {
        ssize_t w = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (w < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_fd(fd_, POLLOUT, d)) return timed_out();
            continue;
          }
          return write_failed(errno);
        }
        n = static_cast<std::size_t>(w);
      }
      data.remove_prefix(n);
    }
    return {};
  }

  // 0 at the end of the stream.
  CliResult<std::size_t> read_some(char* buf, std::size_t cap, Deadline d) {
    for (;;) {
      if (ssl_) {
        std::size_t n = 0;
        ERR_clear_error();
        if (SSL_read_ex(ssl_, buf, cap, &n) == 1) return n;
        int err = SSL_get_error(ssl_, 0);
        if (err == SSL_ERROR_ZERO_RETURN) return std::size_t{0};
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
          if (!wait_fd(fd_, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, d)) return timed_out();
          continue;
        }
        // A peer that closes without close_notify ends the stream as plain TCP would.
        if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL) {
          if (ERR_peek_error() == 0 && (errno == 0 || errno == ECONNRESET)) return std::size_t{0};
          std::string reason = openssl_error();
          return CliError::protocol("reading from " + what_ + " failed: " + reason);
        }
        return CliError::protocol("reading from " + what_ + " failed");
      }
      ssize_t r = ::recv(fd_, buf, cap, 0);
      if (r >= 0) return static_cast<std::size_t>(r);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait_fd(fd_, POLLIN, d)) return timed_out();
        continue;
      }
      if (errno == ECONNRESET) return std::size_t{0};
      return CliError::protocol("reading from " + what_ + " failed: " + errno_text(errno));
    }
  }

  void set_deadline_text(std::string t) { deadline_text_ = std::move(t); }

 private:
  CliError timed_out() const {
    return CliError::deadline("no answer from " + what_ +
                              (deadline_text_.empty() ? "" : " within " + deadline_text_));
  }
  CliError write_failed(int err) const {
    return CliError::protocol("sending to " + what_ + " failed: " + errno_text(err));
  }

  int fd_;
  std::string what_;
  std::string deadline_text_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

CliResult<std::unique_ptr<Connection>> Connection::open(const ServerUrl& url,
                                                        const std::string& server_text,
                                                        const TlsOptions& tls, Deadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(url.port);
  int gai = getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res);
  if (gai != 0) {
    std::string reason = gai == EAI_SYSTEM ? errno_text(errno) : gai_strerror(gai);
    if (!reason.empty())
      reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
    return unreachable(server_text, "cannot resolve " + url.host + ": " + reason);
  }
  int last_err = ECONNREFUSED;
  bool timed_out = false;
  int fd = -1;
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    int s =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (s < 0) {
      last_err = errno;
      continue;
    }
    int rc = ::connect(s, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      if (!wait_fd(s, POLLOUT, deadline)) {
        timed_out = true;
        ::close(s);
        break;
      }
      int soerr = 0;
      socklen_t len = sizeof soerr;
      getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len);
      rc = soerr == 0 ? 0 : -1;
      errno = soerr;
    }
    if (rc != 0) {
      last_err = errno;
      ::close(s);
      continue;
    }
    fd = s;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    if (timed_out) return unreachable(server_text, "connecting timed out");
    return unreachable(server_text, errno_text(last_err));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto conn = std::make_unique<Connection>(fd, "sandboxd at " + server_text);
  if (!url.tls) return conn;

  conn->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!conn->ctx_) return unreachable(server_text, "TLS: " + openssl_error());
  SSL_CTX_set_min_proto_version(conn->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_default_verify_paths(conn->ctx_);
  if (!tls.cacert.empty() &&
      SSL_CTX_load_verify_locations(conn->ctx_, tls.cacert.c_str(), nullptr) != 1) {
    ERR_clear_error();
    return CliError::local("cannot load the CA certificates in " + tls.cacert,
                           "--cacert takes a PEM file of one or more certificates");
  }
  SSL_CTX_set_verify(conn->ctx_, SSL_VERIFY_PEER, nullptr);
  conn->ssl_ = SSL_new(conn->ctx_);
  if (!conn->ssl_) return unreachable(server_text, "TLS: " + openssl_error());
  SSL_set_fd(conn->ssl_, fd);
  X509_VERIFY_PARAM* param = SSL_get0_param(conn->ssl_);
  if (is_ip_literal(url.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str());
  } else {
    // SSL_set_tlsext_host_name() is a macro with a C cast; this is the call it makes.
    SSL_ctrl(conn->ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(url.host.c_str()));
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
  }
  for (;;) {
    ERR_clear_error();
    int rc = SSL_connect(conn->ssl_);
    if (rc == 1) break;
    int err = SSL_get_error(conn->ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (!wait_fd(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        return unreachable(server_text, "the TLS handshake timed out");
      }
      continue;
    }
    long verify = SSL_get_verify_result(conn->ssl_);
    if (verify != X509_V_OK) {
      CliError e =
          unreachable(server_text, std::string("TLS: the server's certificate is not trusted: ") +
                                       X509_verify_cert_error_string(verify));
      e.hint = "pass the server's CA certificate with --cacert FILE";
      return e;
    }
    std::string reason = err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0
                             ? "the connection closed during the handshake"
                             : openssl_error();
    return unreachable(server_text, "TLS: " + reason);
  }
  return conn;
}

HttpResponse::HttpResponse(std::unique_ptr<Connection> conn, ResponseHead head,
                           std::string leftover, bool no_body, std::string what)
    : conn_(std::move(conn)), head_(std::move(head)), what_(std::move(what)) {
  bool bad = false;
  std::optional<std::uint64_t> length = head_.content_length(&bad);
  if (no_body) {
    mode_ = Mode::none;
    ended_ = true;
  } else if (head_.chunked()) {
    mode_ = Mode::chunked;
  } else if (length) {
    mode_ = Mode::length;
    remaining_ = *length;
    ended_ = *length == 0;
  } else {
    mode_ = Mode::close;
  }
  pending_ = std::move(leftover);
}

HttpResponse::~HttpResponse() = default;
HttpResponse::HttpResponse(HttpResponse&&) noexcept = default;
HttpResponse& HttpResponse::operator=(HttpResponse&&) noexcept = default;

CliResult<bool> HttpResponse::read(std::string& out, Deadline deadline) {
  while (!ended_) {
    if (pending_.empty()) {
      char buf[64 * 1024];
      auto n = conn_->read_some(buf, sizeof buf, deadline);
      if (!n) return n.error();
      if (*n == 0) {
        if (mode_ == Mode::close) {
          ended_ = true;
          return false;
        }
        return CliError::protocol("the connection to " + what_ +
                                  " closed before the answer was complete");
      }
      pending_.assign(buf, *n);
    }
    std::string chunk = std::move(pending_);
    pending_.clear();
    std::size_t before = out.size();
    switch (mode_) {
      case Mode::none:
        ended_ = true;
        break;
      case Mode::close:
        out += chunk;
        break;
      case Mode::length: {
        std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, chunk.size()));
        out.append(chunk, 0, take);
        remaining_ -= take;
        if (remaining_ == 0) ended_ = true;
        break;
      }
      case Mode::chunked:
        if (auto st = chunked_.feed(chunk, out); !st) return st.error();
        if (chunked_.done()) ended_ = true;
        break;
    }
    if (out.size() > before) return true;
  }
  return false;
}

CliResult<std::string> HttpResponse::read_all(std::size_t limit, Deadline deadline) {
  std::string body;
  for (;;) {
    auto more = read(body, deadline);
    if (!more) return more.error();
    if (body.size() > limit) {
      return CliError::protocol("the answer of " + what_ + " is larger than " +
                                std::to_string(limit) + " bytes");
    }
    if (!*more) return body;
  }
}

namespace {

std::string request_head(const ServerUrl& server, const HttpRequest& r) {
  std::string h = r.method + " " + r.target + " HTTP/1.1\r\n";
  h += "Host: " + server.host_header() + "\r\n";
  h += "User-Agent: sandboxctl/" SANDBOXCTL_VERSION "\r\n";
  h += "Connection: close\r\n";
  for (const auto& [k, v] : r.headers) h += k + ": " + v + "\r\n";
  if (r.body) {
    h += "Content-Length: " + std::to_string(r.body->size()) + "\r\n";
  } else if (r.body_fd >= 0) {
    h += r.body_length ? "Content-Length: " + std::to_string(*r.body_length) + "\r\n"
                       : std::string("Transfer-Encoding: chunked\r\n");
  } else if (r.method == "POST" || r.method == "PUT" || r.method == "PATCH") {
    h += "Content-Length: 0\r\n";
  }
  return h + "\r\n";
}

// Streams the descriptor's bytes; with a known length exactly that many.
CliStatus send_fd_body(Connection& conn, const HttpRequest& r, Deadline d) {
  char buf[64 * 1024];
  std::uint64_t sent = 0;
  for (;;) {
    ssize_t n = ::read(r.body_fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return CliError::local("reading the upload failed: " + errno_text(errno));
    }
    if (n == 0) break;
    auto len = static_cast<std::size_t>(n);
    if (r.body_length) {
      if (sent + len > *r.body_length)
        return CliError::local("the file grew while it was uploaded");
      if (auto st = conn.write_all(std::string_view(buf, len), d); !st) return st;
    } else {
      char size[32];
      int m = std::snprintf(size, sizeof size, "%zx\r\n", len);
      if (auto st = conn.write_all(std::string_view(size, static_cast<std::size_t>(m)), d); !st)
        return st;
      if (auto st = conn.write_all(std::string_view(buf, len), d); !st) return st;
      if (auto st = conn.write_all("\r\n", d); !st) return st;
    }
    sent += len;
  }
  if (r.body_length && sent != *r.body_length)
    return CliError::local("the file shrank while it was uploaded");
  if (!r.body_length) return conn.write_all("0\r\n\r\n", d);
  return {};
}

}  // namespace

CliResult<HttpResponse> http_exchange(const ServerUrl& server, const std::string& server_text,
                                      const TlsOptions& tls, const HttpRequest& request,
                                      Deadline connect_deadline, Deadline head_deadline,
                                      const std::string& deadline_text) {
  auto conn = Connection::open(server, server_text, tls, connect_deadline);
  if (!conn) return conn.error();
  Connection& c = **conn;
  c.set_deadline_text(deadline_text);
  std::string what = "sandboxd at " + server_text;
  // A server may answer (413, 401) before it has read an upload and close: the answer
  // then matters more than the failed write, so a failed send still tries to read a head.
  CliStatus sent = c.write_all(request_head(server, request), head_deadline);
  if (sent && request.body) sent = c.write_all(*request.body, head_deadline);
  if (sent && request.body_fd >= 0) sent = send_fd_body(c, request, head_deadline);
  if (!sent && sent.error().kind != ErrorKind::protocol) return sent.error();
  std::string buffer;
  for (;;) {
    std::size_t end = find_head_end(buffer);
    while (end == std::string::npos) {
      if (buffer.size() > kMaxHead)
        return CliError::protocol("the answer's head from " + what + " is too large");
      char buf[16 * 1024];
      auto n = c.read_some(buf, sizeof buf, head_deadline);
      if (!n) return sent ? n.error() : sent.error();
      if (*n == 0) {
        if (!sent) return sent.error();
        return CliError::protocol(what + " closed the connection without an answer");
      }
      buffer.append(buf, *n);
      end = find_head_end(buffer);
    }
    auto head = parse_response_head(std::string_view(buffer).substr(0, end));
    if (!head) return head.error();
    buffer.erase(0, end);
    if (head->status >= 100 && head->status < 200) continue;  // 100 Continue and friends
    bool no_body = request.method == "HEAD" || head->status == 204 || head->status == 304;
    return HttpResponse(std::move(*conn), std::move(*head), std::move(buffer), no_body, what);
  }
}

}  // namespace sandboxd::cli
