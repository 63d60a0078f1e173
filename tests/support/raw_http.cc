#include "raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

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
  if (ssl_ != nullptr) {
    SSL_CTX* ctx = SSL_get_SSL_CTX(ssl_);
    SSL_free(ssl_);
    SSL_CTX_free(ctx);
  }
  if (fd_ >= 0) ::close(fd_);
}

namespace {

std::string ssl_error_text() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? std::string("handshake failed") : out;
}

}  // namespace

std::optional<std::string> RawConnection::start_tls(const TlsClientOptions& o,
                                                    std::chrono::milliseconds deadline) {
  timeval tv{};
  tv.tv_sec = deadline.count() / 1000;
  tv.tv_usec = (deadline.count() % 1000) * 1000;
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return ssl_error_text();
  if (o.min_version != 0) SSL_CTX_set_min_proto_version(ctx, o.min_version);
  if (o.max_version != 0) SSL_CTX_set_max_proto_version(ctx, o.max_version);
  if (!o.tls12_ciphers.empty()) SSL_CTX_set_cipher_list(ctx, o.tls12_ciphers.c_str());
  if (!o.trust_pem.empty()) {
    BIO* bio = BIO_new_mem_buf(o.trust_pem.data(), static_cast<int>(o.trust_pem.size()));
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, x);
      X509_free(x);
    }
    BIO_free(bio);
    ERR_clear_error();
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  ssl_ = SSL_new(ctx);
  if (ssl_ == nullptr) {
    SSL_CTX_free(ctx);
    return ssl_error_text();
  }
  if (!o.sni.empty()) {
    // SSL_set_tlsext_host_name, without the macro's C-style cast.
    SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(o.sni.c_str()));
  }
  if (!o.verify_host.empty()) SSL_set1_host(ssl_, o.verify_host.c_str());
  if (!o.alpn.empty()) {
    std::string wire;
    for (const std::string& p : o.alpn) {
      wire.push_back(static_cast<char>(p.size()));
      wire += p;
    }
    SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                        static_cast<unsigned int>(wire.size()));
  }
  if (o.session != nullptr) SSL_set_session(ssl_, o.session);
  SSL_set_fd(ssl_, fd_);
  if (SSL_connect(ssl_) != 1) {
    std::string why = ssl_error_text();
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) why += std::string(" (verify: ") + X509_verify_cert_error_string(verify) + ")";
    return why;
  }
  return std::nullopt;
}

std::string RawConnection::tls_version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

std::string RawConnection::alpn() const {
  if (ssl_ == nullptr) return {};
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return std::string(reinterpret_cast<const char*>(p), n);
}

std::vector<std::string> RawConnection::peer_names() const {
  std::vector<std::string> out;
  if (ssl_ == nullptr) return out;
  X509* peer = SSL_get0_peer_certificate(ssl_);
  if (peer == nullptr) return out;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(peer, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    if (n->type != GEN_DNS) continue;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                     static_cast<std::size_t>(ASN1_STRING_length(n->d.dNSName)));
  }
  GENERAL_NAMES_free(sans);
  return out;
}

std::string RawConnection::peer_serial() const {
  if (ssl_ == nullptr) return {};
  X509* peer = SSL_get0_peer_certificate(ssl_);
  if (peer == nullptr) return {};
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(peer), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out(hex);
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

bool RawConnection::session_reused() const { return ssl_ != nullptr && SSL_session_reused(ssl_) == 1; }

ssl_session_st* RawConnection::session() const { return ssl_ ? SSL_get1_session(ssl_) : nullptr; }

void RawConnection::send(const std::string& bytes) {
  if (ssl_ != nullptr) {
    if (!bytes.empty()) SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
    return;
  }
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
  char buf[16384];
  if (ssl_ != nullptr && SSL_pending(ssl_) == 0) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  }
  if (ssl_ != nullptr) {
    // TLS 1.3 tickets arrive as records without application data: read again.
    for (;;) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        buffer_.append(buf, static_cast<std::size_t>(n));
        return true;
      }
      if (SSL_get_error(ssl_, n) != SSL_ERROR_WANT_READ) return false;
      pollfd p{fd_, POLLIN, 0};
      left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    }
  }
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
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
    if (ssl_ != nullptr) {
      if (!fill(until)) return std::chrono::steady_clock::now() < until;  // EOF, reset or close_notify
      continue;
    }
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
