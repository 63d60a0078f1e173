// testapp: the app inside the sandboxd test image (image/build-test-image.sh).
//
// A small HTTP/1.1 server with no dependencies beyond POSIX sockets and threads, built as a
// static executable so it runs in the busybox image. It gives the integration and browser
// tests a real app behind the preview edge: keep-alive, request bodies framed by
// Content-Length or chunked coding, large streamed bodies both ways, Server-Sent Events and
// WebSockets (RFC 6455).
//
//   testapp [--ready-file PATH]
//
// It listens on 0.0.0.0:$PORT (default 3000). With --ready-file, once it listens it writes
// its hostname to PATH (through a temporary file and a rename, so the file appears whole):
// the tests use that as its ready marker.
//
// SIGTERM and SIGINT end it with status 0 after TESTAPP_STOP_DELAY seconds (default 0),
// while it goes on serving: the tests use the delay to send requests while a sandbox is
// `stopping`. The signals are taken by a thread of their own (sigwait), since runtimed sends
// SIGTERM to the dev server's whole process group.
//
// Routes:
//   GET  /                 HTML page naming the hostname; its script echoes "ping" over /ws
//   GET  /hostname         the hostname and a newline, as text
//   POST|PUT /echo         the request body back, with X-Method: <method>
//   GET  /bytes?n=N        N bytes, byte i = i % 251, streamed with Content-Length
//   POST /upload           consumes the body streaming; {"bytes":N,"sum":S}, S = byte sum mod 2^32
//   GET  /sse?n=N&interval_ms=M   N events "data: k" (k = 1..N), M ms apart, each flushed
//   GET  /ws  (Upgrade)    WebSocket echo of text and binary frames; ping → pong; close → close
//   anything else          404
//
// One thread per connection: the tests open at most a few dozen at a time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t kMaxHead = 64 * 1024;
constexpr std::size_t kMaxEchoBody = 64 * 1024 * 1024;
constexpr std::uint64_t kMaxWebSocketPayload = 16 * 1024 * 1024;
constexpr std::size_t kIoChunk = 64 * 1024;

// ---------------------------------------------------------------------------- SHA-1, base64

// SHA-1 (FIPS 180-4), needed only for Sec-WebSocket-Accept.
std::array<std::uint8_t, 20> sha1(std::string_view input) {
  std::uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  auto rotl = [](std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };

  // The message, padded with 0x80, zeros, and its bit length (big-endian) to 64-byte blocks.
  std::string msg(input);
  std::uint64_t bit_length = input.size() * 8;
  msg.push_back(static_cast<char>(0x80));
  while (msg.size() % 64 != 56) msg.push_back('\0');
  for (int i = 7; i >= 0; --i) msg.push_back(static_cast<char>((bit_length >> (i * 8)) & 0xFF));

  for (std::size_t block = 0; block < msg.size(); block += 64) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(msg.data() + block + i * 4);
      w[i] = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
             (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
    }
    for (int i = 16; i < 80; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDC;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6;
      }
      std::uint32_t t = rotl(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  std::array<std::uint8_t, 20> out{};
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 4; ++j) out[i * 4 + j] = static_cast<std::uint8_t>(h[i] >> (24 - 8 * j));
  }
  return out;
}

std::string base64(const std::uint8_t* data, std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < n; i += 3) {
    std::uint32_t v = std::uint32_t{data[i]} << 16;
    if (i + 1 < n) v |= std::uint32_t{data[i + 1]} << 8;
    if (i + 2 < n) v |= data[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? kAlphabet[v & 63] : '=');
  }
  return out;
}

// Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2).
std::string websocket_accept(std::string_view key) {
  std::string text(key);
  text += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  auto digest = sha1(text);
  return base64(digest.data(), digest.size());
}

// ---------------------------------------------------------------------------- text helpers

char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower_ascii);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when the comma-separated header value holds `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    std::string_view item = trim(value.substr(0, comma));
    if (lower(item) == lower(token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

template <typename T>
std::optional<T> parse_number(std::string_view s, int base = 10) {
  T v{};
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

// ---------------------------------------------------------------------------- connection I/O

// A socket with an input buffer. Reads block; a false or 0 return means EOF or an error,
// after which the connection is closed.
class Stream {
 public:
  explicit Stream(int fd) : fd_(fd), in_(kIoChunk) {}

  std::size_t available() const { return end_ - begin_; }
  const char* data() const { return in_.data() + begin_; }
  void consume(std::size_t n) { begin_ += n; }

  // Reads at least one more byte into the buffer.
  bool fill() {
    if (begin_ == end_) begin_ = end_ = 0;
    if (end_ == in_.size()) {
      if (begin_ > 0) {
        std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      } else {
        in_.resize(in_.size() * 2);
      }
    }
    for (;;) {
      ssize_t n = ::recv(fd_, in_.data() + end_, in_.size() - end_, 0);
      if (n > 0) {
        end_ += static_cast<std::size_t>(n);
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
  }

  // Copies exactly n bytes to dst.
  bool read_exact(char* dst, std::size_t n) {
    while (n > 0) {
      if (available() == 0 && !fill()) return false;
      std::size_t take = std::min(n, available());
      std::memcpy(dst, data(), take);
      consume(take);
      dst += take;
      n -= take;
    }
    return true;
  }

  // One line ending in CRLF (returned without it), at most `max` bytes long.
  bool read_line(std::string& line, std::size_t max) {
    for (;;) {
      std::string_view have(data(), available());
      std::size_t eol = have.find("\r\n");
      if (eol != std::string_view::npos) {
        line.assign(have.substr(0, eol));
        consume(eol + 2);
        return true;
      }
      if (have.size() > max || !fill()) return false;
    }
  }

  bool write(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

 private:
  int fd_;
  std::vector<char> in_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// ---------------------------------------------------------------------------- requests

struct Request {
  std::string method;
  std::string path;
  std::string query;
  bool http11 = true;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased

  const std::string* header(std::string_view lower_name) const {
    for (const auto& [name, value] : headers) {
      if (name == lower_name) return &value;
    }
    return nullptr;
  }
  std::string header_or_empty(std::string_view lower_name) const {
    const std::string* v = header(lower_name);
    return v ? *v : std::string();
  }
  // Value of one query parameter (no percent-decoding: the tests send plain numbers).
  std::optional<std::string> param(std::string_view name) const {
    std::string_view q = query;
    while (!q.empty()) {
      std::size_t amp = q.find('&');
      std::string_view item = q.substr(0, amp);
      std::size_t eq = item.find('=');
      if (item.substr(0, eq) == name) {
        return std::string(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1));
      }
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
    return std::nullopt;
  }
};

enum class HeadResult { ok, closed, bad, too_large };

HeadResult read_head(Stream& s, Request& req) {
  std::size_t end;
  for (;;) {
    std::string_view have(s.data(), s.available());
    end = have.find("\r\n\r\n");
    if (end != std::string_view::npos) break;
    if (have.size() > kMaxHead) return HeadResult::too_large;
    if (!s.fill()) return HeadResult::closed;
  }
  std::string head(s.data(), end);
  s.consume(end + 4);

  std::size_t eol = head.find("\r\n");
  std::string_view line = std::string_view(head).substr(0, eol);
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return HeadResult::bad;
  req.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version == "HTTP/1.1") {
    req.http11 = true;
  } else if (version == "HTTP/1.0") {
    req.http11 = false;
  } else {
    return HeadResult::bad;
  }
  std::size_t qmark = target.find('?');
  req.path = std::string(target.substr(0, qmark));
  req.query = qmark == std::string_view::npos ? "" : std::string(target.substr(qmark + 1));

  std::string_view rest =
      eol == std::string::npos ? std::string_view() : std::string_view(head).substr(eol + 2);
  while (!rest.empty()) {
    std::size_t next = rest.find("\r\n");
    std::string_view field = rest.substr(0, next);
    std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return HeadResult::bad;
    req.headers.emplace_back(lower(field.substr(0, colon)),
                             std::string(trim(field.substr(colon + 1))));
    if (next == std::string_view::npos) break;
    rest.remove_prefix(next + 2);
  }
  return HeadResult::ok;
}

// A request body framed by Content-Length or chunked transfer coding, read in pieces.
class Body {
 public:
  // False when the framing headers are invalid.
  bool init(const Request& req) {
    const std::string* te = req.header("transfer-encoding");
    const std::string* cl = req.header("content-length");
    if (te) {
      if (cl || lower(trim(*te)) != "chunked") return false;
      chunked_ = true;
      return true;
    }
    if (cl) {
      auto n = parse_number<std::uint64_t>(trim(*cl));
      if (!n) return false;
      remaining_ = *n;
    }
    done_ = remaining_ == 0;
    return true;
  }

  // Reads up to n body bytes into dst: the count, 0 at the end of the body, -1 on a
  // framing error or a closed connection.
  long read(Stream& s, char* dst, std::size_t n) {
    if (done_) return 0;
    if (chunked_ && remaining_ == 0) {
      if (!next_chunk(s)) return -1;
      if (done_) return 0;
    }
    if (s.available() == 0 && !s.fill()) return -1;
    std::size_t take = std::min<std::uint64_t>({remaining_, n, s.available()});
    std::memcpy(dst, s.data(), take);
    s.consume(take);
    remaining_ -= take;
    if (remaining_ == 0) {
      if (chunked_) {
        char crlf[2];
        if (!s.read_exact(crlf, 2) || crlf[0] != '\r' || crlf[1] != '\n') return -1;
      } else {
        done_ = true;
      }
    }
    return static_cast<long>(take);
  }

  // Reads and discards the rest of the body.
  bool drain(Stream& s) {
    char buf[16384];
    for (;;) {
      long n = read(s, buf, sizeof buf);
      if (n < 0) return false;
      if (n == 0) return true;
    }
  }

 private:
  // Reads a chunk-size line (extensions ignored); at the last chunk, also the trailers.
  bool next_chunk(Stream& s) {
    std::string line;
    if (!s.read_line(line, 4096)) return false;
    std::string_view size_text = trim(std::string_view(line).substr(0, line.find(';')));
    auto size = parse_number<std::uint64_t>(size_text, 16);
    if (!size) return false;
    if (*size > 0) {
      remaining_ = *size;
      return true;
    }
    for (;;) {  // trailer fields up to the empty line
      if (!s.read_line(line, 4096)) return false;
      if (line.empty()) break;
    }
    done_ = true;
    return true;
  }

  bool chunked_ = false;
  bool done_ = false;
  std::uint64_t remaining_ = 0;
};

// ---------------------------------------------------------------------------- responses

const char* reason(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Unknown";
  }
}

std::string status_line(int status) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
}

std::string connection_header(const Request& req, bool keep_alive) {
  if (!keep_alive) return "Connection: close\r\n";
  return req.http11 ? "" : "Connection: keep-alive\r\n";
}

bool respond(Stream& s, const Request& req, bool keep_alive, int status,
             std::string_view content_type, std::string_view body,
             std::string_view extra_headers = "") {
  std::string head = status_line(status);
  head += "Content-Type: ";
  head += content_type;
  head += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  head += "Cache-Control: no-store\r\n";
  head += extra_headers;
  head += connection_header(req, keep_alive);
  head += "\r\n";
  if (req.method == "HEAD") return s.write(head);
  return s.write(head + std::string(body));
}

std::string index_page() {
  std::string host = hostname();
  // The script talks to /ws on the page's own host, so the test sees the echo only when the
  // edge tunnels WebSockets.
  return "<!doctype html>\n"
         "<html><head><meta charset=\"utf-8\"><title>sandboxd testapp</title></head>\n"
         "<body>\n"
         "<h1>sandboxd testapp</h1>\n"
         "<div id=\"host\">" +
         host +
         "</div>\n"
         "<div id=\"ws\">connecting</div>\n"
         "<script>\n"
         "const out = document.getElementById('ws');\n"
         "const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';\n"
         "const ws = new WebSocket(scheme + location.host + '/ws');\n"
         "ws.onopen = () => ws.send('ping');\n"
         "ws.onmessage = (event) => { out.textContent = event.data; };\n"
         "ws.onerror = () => { out.textContent = 'error'; };\n"
         "</script>\n"
         "</body></html>\n";
}

// GET /bytes?n=N: byte i is i % 251, written from one block whose length is a multiple of
// 251, so every block starts the pattern afresh.
bool serve_bytes(Stream& s, const Request& req, bool keep_alive, std::uint64_t n) {
  std::string head = status_line(200) + "Content-Type: application/octet-stream\r\n" +
                     "Content-Length: " + std::to_string(n) + "\r\n" +
                     connection_header(req, keep_alive) + "\r\n";
  if (!s.write(head)) return false;
  static const std::string block = [] {
    std::string b(251 * 256, '\0');
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>(i % 251);
    return b;
  }();
  while (n > 0) {
    std::size_t take = std::min<std::uint64_t>(n, block.size());
    if (!s.write(std::string_view(block).substr(0, take))) return false;
    n -= take;
  }
  return true;
}

// GET /sse: one chunk per event so each reaches the client when written (TCP_NODELAY).
bool serve_sse(Stream& s, const Request& req, std::uint64_t n, std::uint64_t interval_ms) {
  std::string head = status_line(200) + "Content-Type: text/event-stream\r\n" +
                     "Cache-Control: no-cache\r\n" + "Transfer-Encoding: chunked\r\n" +
                     connection_header(req, true) + "\r\n";
  if (!s.write(head)) return false;
  for (std::uint64_t k = 1; k <= n; ++k) {
    std::string event = "data: " + std::to_string(k) + "\n\n";
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", event.size());
    if (!s.write(size + event + "\r\n")) return false;
    if (k < n) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
  return s.write("0\r\n\r\n");
}

// ---------------------------------------------------------------------------- WebSocket

enum Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

bool send_frame(Stream& s, bool fin, std::uint8_t opcode, std::string_view payload) {
  std::string frame;
  frame.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  std::uint64_t n = payload.size();
  if (n < 126) {
    frame.push_back(static_cast<char>(n));
  } else if (n <= 0xFFFF) {
    frame.push_back(126);
    frame.push_back(static_cast<char>(n >> 8));
    frame.push_back(static_cast<char>(n & 0xFF));
  } else {
    frame.push_back(127);
    for (int i = 7; i >= 0; --i) frame.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  }
  frame.append(payload);
  return s.write(frame);
}

void send_close(Stream& s, std::uint16_t code) {
  char payload[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  send_frame(s, true, kClose, std::string_view(payload, 2));
}

// Echoes frames until the client closes (RFC 6455 §5). Client frames must be masked;
// server frames are not. Fragments are echoed one by one, keeping their FIN and opcode.
void websocket_echo(Stream& s) {
  for (;;) {
    unsigned char h[2];
    if (!s.read_exact(reinterpret_cast<char*>(h), 2)) return;
    bool fin = (h[0] & 0x80) != 0;
    std::uint8_t opcode = h[0] & 0x0F;
    bool masked = (h[1] & 0x80) != 0;
    std::uint64_t length = h[1] & 0x7F;
    if ((h[0] & 0x70) != 0 || !masked) return send_close(s, 1002);  // no extensions here
    if (length >= 126) {
      unsigned char ext[8];
      int bytes = length == 126 ? 2 : 8;
      if (!s.read_exact(reinterpret_cast<char*>(ext), static_cast<std::size_t>(bytes))) return;
      length = 0;
      for (int i = 0; i < bytes; ++i) length = (length << 8) | ext[i];
    }
    bool control = (opcode & 0x8) != 0;
    if (control && (length > 125 || !fin)) return send_close(s, 1002);
    if (length > kMaxWebSocketPayload) return send_close(s, 1009);
    unsigned char mask[4];
    if (!s.read_exact(reinterpret_cast<char*>(mask), 4)) return;
    std::string payload(length, '\0');
    if (!s.read_exact(payload.data(), payload.size())) return;
    for (std::size_t i = 0; i < payload.size(); ++i)
      payload[i] = static_cast<char>(payload[i] ^ mask[i % 4]);

    switch (opcode) {
      case kContinuation:
      case kText:
      case kBinary:
        if (!send_frame(s, fin, opcode, payload)) return;
        break;
      case kPing:
        if (!send_frame(s, true, kPong, payload)) return;
        break;
      case kPong:
        break;
      case kClose:
        // Echo the status code (if any) and end the connection.
        send_frame(s, true, kClose,
                   std::string_view(payload).substr(0, std::min<std::size_t>(2, payload.size())));
        return;
      default:
        return send_close(s, 1002);
    }
  }
}

// ---------------------------------------------------------------------------- dispatch

// A body that broke its framing (or a connection that ended inside it): a 400 if the peer
// still listens, then close.
bool bad_body(Stream& s, const Request& req) {
  respond(s, req, false, 400, "text/plain", "bad request body\n");
  return false;
}

// Handles one request; false when the connection must close afterwards.
bool handle(Stream& s, const Request& req) {
  bool keep_alive = req.http11 ? !has_token(req.header_or_empty("connection"), "close")
                               : has_token(req.header_or_empty("connection"), "keep-alive");
  Body body;
  if (!body.init(req)) {
    return bad_body(s, req);
  }
  const std::string& m = req.method;
  const std::string& p = req.path;

  if (p == "/ws" && m == "GET" && has_token(req.header_or_empty("upgrade"), "websocket") &&
      has_token(req.header_or_empty("connection"), "upgrade")) {
    const std::string* key = req.header("sec-websocket-key");
    if (!key || req.header_or_empty("sec-websocket-version") != "13") {
      respond(s, req, false, 400, "text/plain", "bad websocket handshake\n");
      return false;
    }
    std::string head = status_line(101) + "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
                       "Sec-WebSocket-Accept: " + websocket_accept(*key) + "\r\n\r\n";
    if (s.write(head)) websocket_echo(s);
    return false;
  }

  if ((m == "POST" || m == "PUT") && p == "/echo") {
    std::string data;
    char buf[kIoChunk];
    for (;;) {
      long n = body.read(s, buf, sizeof buf);
      if (n < 0) return bad_body(s, req);
      if (n == 0) break;
      data.append(buf, static_cast<std::size_t>(n));
      if (data.size() > kMaxEchoBody) return false;
    }
    return respond(s, req, keep_alive, 200, "application/octet-stream", data,
                   "X-Method: " + m + "\r\n") &&
           keep_alive;
  }

  if (m == "POST" && p == "/upload") {
    std::uint64_t bytes = 0;
    std::uint32_t sum = 0;  // wraps: the sum modulo 2^32
    char buf[kIoChunk];
    for (;;) {
      long n = body.read(s, buf, sizeof buf);
      if (n < 0) return bad_body(s, req);
      if (n == 0) break;
      for (long i = 0; i < n; ++i) sum += static_cast<unsigned char>(buf[i]);
      bytes += static_cast<std::uint64_t>(n);
    }
    std::string json =
        "{\"bytes\":" + std::to_string(bytes) + ",\"sum\":" + std::to_string(sum) + "}";
    return respond(s, req, keep_alive, 200, "application/json", json) && keep_alive;
  }

  // The remaining routes take no body: drop whatever came.
  if (!body.drain(s)) return false;

  if ((m == "GET" || m == "HEAD") && p == "/") {
    return respond(s, req, keep_alive, 200, "text/html; charset=utf-8", index_page()) && keep_alive;
  }
  if ((m == "GET" || m == "HEAD") && p == "/hostname") {
    return respond(s, req, keep_alive, 200, "text/plain", hostname() + "\n") && keep_alive;
  }
  if (m == "GET" && p == "/bytes") {
    auto n = parse_number<std::uint64_t>(req.param("n").value_or(""));
    if (!n)
      return respond(s, req, keep_alive, 400, "text/plain", "n must be a number\n") && keep_alive;
    return serve_bytes(s, req, keep_alive, *n) && keep_alive;
  }
  if (m == "GET" && p == "/sse") {
    auto n = parse_number<std::uint64_t>(req.param("n").value_or("5"));
    auto interval = parse_number<std::uint64_t>(req.param("interval_ms").value_or("1000"));
    if (!n || !interval) {
      return respond(s, req, keep_alive, 400, "text/plain", "bad n or interval_ms\n") && keep_alive;
    }
    // An event stream over HTTP/1.0 has no chunked coding: the tests use 1.1 only.
    return serve_sse(s, req, *n, *interval) && keep_alive && req.http11;
  }
  if (m == "GET" && p == "/ws") {
    return respond(s, req, keep_alive, 426, "text/plain", "websocket upgrade expected\n",
                   "Upgrade: websocket\r\n") &&
           keep_alive;
  }
  return respond(s, req, keep_alive, 404, "text/plain", "not found\n") && keep_alive;
}

void serve_connection(int fd) {
  Stream s(fd);
  for (;;) {
    Request req;
    HeadResult head = read_head(s, req);
    if (head == HeadResult::closed) break;
    if (head != HeadResult::ok) {
      req.method = "GET";
      int status = head == HeadResult::too_large ? 431 : 400;
      respond(s, req, false, status, "text/plain", std::to_string(status) + "\n");
      break;
    }
    if (!handle(s, req)) break;
  }
  ::close(fd);
}

}  // namespace

// Blocks SIGTERM and SIGINT in every thread (call before starting any) and waits for them on
// one thread: it exits after TESTAPP_STOP_DELAY seconds.
static void handle_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    const char* delay = std::getenv("TESTAPP_STOP_DELAY");
    auto seconds = parse_number<unsigned>(delay && *delay ? delay : "0");
    if (seconds && *seconds > 0) std::this_thread::sleep_for(std::chrono::seconds(*seconds));
    std::_Exit(0);
  }).detach();
}

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  handle_stop_signals();
  std::string ready_file;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--ready-file" && i + 1 < argc) {
      ready_file = argv[++i];
    } else {
      std::fprintf(stderr, "usage: testapp [--ready-file PATH]\n");
      return 2;
    }
  }
  const char* port_text = std::getenv("PORT");
  auto port = parse_number<std::uint16_t>(port_text && *port_text ? port_text : "3000");
  if (!port || *port == 0) {
    std::fprintf(stderr, "testapp: PORT must be 1-65535\n");
    return 2;
  }

  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(*port);
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 512) != 0) {
    std::fprintf(stderr, "testapp: cannot listen on port %u: %s\n", *port, std::strerror(errno));
    return 1;
  }
  std::fprintf(stderr, "testapp: listening on 0.0.0.0:%u\n", *port);
  if (!ready_file.empty()) {
    std::string tmp = ready_file + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    bool written = f && std::fprintf(f, "%s\n", hostname().c_str()) > 0;
    if (f && std::fclose(f) != 0) written = false;
    if (!written || std::rename(tmp.c_str(), ready_file.c_str()) != 0) {
      std::fprintf(stderr, "testapp: cannot write %s: %s\n", ready_file.c_str(),
                   std::strerror(errno));
    }
  }

  for (;;) {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {  // wait for a connection to end
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      std::fprintf(stderr, "testapp: accept: %s\n", std::strerror(errno));
      return 1;
    }
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    std::thread(serve_connection, fd).detach();
  }
}
