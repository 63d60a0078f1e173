// A client connection's whole life on one worker: read a head, answer it or proxy it (with
// hold and wake, the upstream pool, streaming bodies, and tunnels), then the next head.
//
// Every timeout of the connection goes through one watchdog coroutine that runs beside it:
// an operation sets `deadline_` before it starts, and when the deadline passes the watchdog
// cancels the connection's sockets and sets `expired_`, which the operation then reads.

#include "access_log.h"
#include "client_stream.h"
#include "edge/chunked.h"
#include "edge/forward_head.h"
#include "edge/preview_host.h"
#include "edge/request_head.h"
#include "edge/websocket_frames.h"
#include "edge_answer.h"
#include "http_syntax.h"
#include "response_head.h"
#include "tls_context.h"
#include "worker.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <string>

namespace sandboxd::edge::detail {

namespace {

// Enough for a whole head: the head parser takes any split, so a longer head just takes more
// reads. Kept small because every idle keep-alive connection holds one.
constexpr std::size_t kHeadBuffer = 4 * 1024;
constexpr std::size_t kMaxBuffer = 64 * 1024;      // §3.10: one 64 KiB buffer per direction
constexpr std::size_t kHeldBodyBytes = 16 * 1024;  // §3.6 rule 8
constexpr std::size_t kDrainBytes = 64 * 1024;     // §3.3 linger, §3.7 refused body
constexpr std::chrono::seconds kDrainTime{1};
constexpr std::chrono::seconds kExpectWait{1};  // send the body anyway, as curl does
constexpr std::size_t kMaxSpans = 32;           // chunks relayed per gathered write
constexpr int kMaxInterim = 16;                 // 1xx responses before the final one
constexpr std::chrono::seconds kCloseWait{1};   // §3.9: the WebSocket close handshake
constexpr std::chrono::milliseconds kTlsCloseWait{200};  // the client's close_notify
constexpr std::string_view kSandboxStopping = "sandbox stopping";
constexpr std::string_view kServerShutdown = "server shutting down";
constexpr std::string_view kIdleTimeout = "idle timeout";

asio::ip::address to_asio(const IpAddress& ip) {
  const auto& b = ip.bytes();
  if (ip.family() == IpAddress::Family::v4) {
    asio::ip::address_v4::bytes_type v4{b[0], b[1], b[2], b[3]};
    return asio::ip::address_v4(v4);
  }
  asio::ip::address_v6::bytes_type v6;
  std::memcpy(v6.data(), b.data(), 16);
  return asio::ip::address_v6(v6);
}

// §3.14: finds `name=value` in the target's query. `without` gets the target with that
// parameter removed, the others in their order (and no '?' when none is left).
bool take_query_param(std::string_view target, std::string_view name, std::string_view* value,
                      std::string* without) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return false;
  bool found = false;
  std::string rest;
  for (std::string_view query = target.substr(q + 1); !query.empty();) {
    const std::size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = param.find('=');
    if (!found && param.substr(0, eq) == name) {
      found = true;
      *value = eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
      continue;
    }
    if (!rest.empty()) rest.push_back('&');
    rest.append(param);
  }
  if (!found) return false;
  without->assign(target.substr(0, q));
  if (!rest.empty()) *without += "?" + rest;
  return true;
}

// The value of cookie `name` in the request's Cookie fields.
std::optional<std::string_view> find_cookie(const RequestHead& h, std::string_view name) {
  for (const HeaderField& f : h.headers) {
    if (!iequals(f.name, "cookie")) continue;
    for (std::string_view rest = f.value; !rest.empty();) {
      const std::size_t semi = rest.find(';');
      const std::string_view pair = trim_ows(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      const std::size_t eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

void append_percent_encoded(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '-' ||
        u == '.' || u == '_' || u == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
}

// auth.preview.redirect_url with {sandbox_id} and {return} filled in, percent-encoded.
std::string fill_login_url(std::string_view tmpl, std::string_view id, std::string_view back) {
  std::string out;
  for (std::size_t i = 0; i < tmpl.size();) {
    if (tmpl.substr(i).starts_with("{sandbox_id}")) {
      append_percent_encoded(out, id);
      i += 12;
    } else if (tmpl.substr(i).starts_with("{return}")) {
      append_percent_encoded(out, back);
      i += 8;
    } else {
      out.push_back(tmpl[i++]);
    }
  }
  return out;
}

std::int64_t ms_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// Unread bytes from the client: [begin_, end_) of a buffer that grows to at most 64 KiB.
class InBuffer {
 public:
  std::string_view view() const { return {data_.data() + begin_, end_ - begin_}; }
  bool empty() const { return begin_ == end_; }
  std::size_t size() const { return end_ - begin_; }
  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  void clear() { begin_ = end_ = 0; }
  // Gives back a buffer that grew past `capacity` (for a body) once it is empty.
  void shrink(std::size_t capacity) {
    if (empty() && data_.size() > capacity) std::vector<char>(capacity).swap(data_);
  }
  // Space for the next read, at most `limit` bytes (and within a buffer of `capacity`).
  asio::mutable_buffer room(std::size_t capacity, std::size_t limit = kMaxBuffer) {
    if (data_.size() < capacity) data_.resize(capacity);
    if (begin_ > 0) {
      std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    const std::size_t free = data_.size() - end_;
    return asio::buffer(data_.data() + end_, std::min(free, limit));
  }
  void commit(std::size_t n) { end_ += n; }

 private:
  std::vector<char> data_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// Chunk-size lines for a gathered write of several chunks.
struct SizeLines {
  std::array<std::array<char, 20>, kMaxSpans + 1> lines{};
  asio::const_buffer line(std::size_t i, std::size_t size) {
    char* p = lines[i].data();
    auto [end, ec] = std::to_chars(p, p + 16, size, 16);
    (void)ec;
    end[0] = '\r';
    end[1] = '\n';
    return asio::buffer(p, static_cast<std::size_t>(end + 2 - p));
  }
};

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

struct CountGuard {
  explicit CountGuard(std::atomic<std::int64_t>& c) : counter(c) {
    counter.fetch_add(1, std::memory_order_relaxed);
  }
  ~CountGuard() { counter.fetch_sub(1, std::memory_order_relaxed); }
  CountGuard(const CountGuard&) = delete;
  CountGuard& operator=(const CountGuard&) = delete;
  std::atomic<std::int64_t>& counter;
};

enum class ReadHead : std::uint8_t { ok, closed };
enum class BodyStep : std::uint8_t { data, done, bad, timeout, gone };
enum class ForwardResult : std::uint8_t { keep, close, refused };
enum class HoldResult : std::uint8_t { dispatched, answered, gone };
enum class SendResult : std::uint8_t { ok, upstream_failed, client_bad, client_timeout, client_gone };
enum class HeadResult : std::uint8_t { ok, eof_before_any, reset, bad, timeout };

// The X-Sandbox-Wake kind of an answer to a held request (§3.6 table).
std::string_view wake_kind(std::string_view code) {
  if (code == "wake_timeout" || code == "port_not_open") return "timeout";
  if (code == "wake_refused" || code == "too_many_held") return "refused";
  return "failed";
}

class Connection {
 public:
  Connection(Worker& w, const EdgeOptions& tuning, tcp::socket socket, bool https)
      : w_(w), opt_(tuning), st_(w.state), client_(std::move(socket)), https_(https),
        parser_(head_limits(tuning)), body_chunked_(body_limits(tuning)),
        resp_(tuning.max_header_bytes), resp_chunked_(ChunkedLimits{}),
        timer_(client_.get_executor()) {
    error_code ec;
    auto remote = client_.socket().remote_endpoint(ec);
    if (!ec) {
      peer_ = remote.address();
      if (peer_.is_v6() && peer_.to_v6().is_v4_mapped()) {
        peer_ = asio::ip::make_address_v4(asio::ip::v4_mapped, peer_.to_v6());
      }
      client_ip_ = peer_.to_string();
      client_port_ = remote.port();
      if (auto ip = IpAddress::parse(client_ip_)) {
        for (const IpNetwork& net : opt_.trusted_proxies) trusted_ = trusted_ || net.contains(*ip);
      }
    }
    tune_socket(client_.socket());
    handle_.client = &client_.socket();
    handle_.idle = &idle_;
    handle_.held = &held_;
    handle_.abort = [this] { abort(); };
    handle_.end_tunnel = [this](const Ulid& id, std::shared_ptr<void> token) {
      end_tunnel(id, std::move(token));
    };
    handle_.shutdown_tunnel = [this] { shutdown_tunnel(); };
    reg_ = w_.connections.insert(w_.connections.end(), &handle_);
    bump(w_.counters.connections_open[https_ ? 1 : 0]);
  }

  ~Connection() {
    drop(w_.counters.connections_open[https_ ? 1 : 0]);
    switch_sandbox(nullptr);
    w_.connections.erase(reg_);
    if (counted_client_) st_.clients.remove(peer_);
  }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  asio::awaitable<void> run() {
    auto a = session();
    auto b = watchdog();
    co_await (std::move(a) || std::move(b));
  }

 private:
  static HeadLimits head_limits(const EdgeOptions& o) {
    HeadLimits l;
    l.max_header_bytes = o.max_header_bytes;
    l.max_request_line_bytes = o.max_header_bytes;
    l.max_request_body = o.max_request_body;
    return l;
  }
  static ChunkedLimits body_limits(const EdgeOptions& o) {
    ChunkedLimits l;
    l.max_body_bytes = o.max_request_body;
    return l;
  }

  // ---- deadlines ----

  void set_deadline(steady::duration d) {
    const auto at = steady::now() + d;
    const bool earlier = at < deadline_;
    deadline_ = at;
    if (earlier) timer_.cancel();
  }
  void clear_deadline() { deadline_ = steady::time_point::max(); }
  bool take_expired() { return std::exchange(expired_, false); }

  asio::awaitable<void> watchdog() {
    for (;;) {
      timer_.expires_at(deadline_);
      co_await timer_.async_wait(nothrow);
      if (finished_) co_return;
      if (steady::now() >= deadline_) {
        expired_ = true;
        deadline_ = steady::time_point::max();
        error_code ignored;
        client_.socket().cancel(ignored);
        if (up_sock_ != nullptr) up_sock_->cancel(ignored);
      }
    }
  }

  void abort() {
    error_code ignored;
    client_.socket().close(ignored);
    if (up_sock_ != nullptr) up_sock_->close(ignored);
    tunnel_dead_ = true;
  }

  // ---- the connection ----

  asio::awaitable<void> session() {
    if (https_ && !co_await handshake()) co_return;
    if (!trusted_ && !peer_.is_unspecified() &&
        !st_.clients.try_add(peer_, opt_.max_connections_per_client)) {
      // §3.10: after TLS, a fixed 429 written without reading, then close.
      static const std::size_t k429 = edge_rejection_index(429);
      w_.counters.reject(RejectReason::per_client);
      w_.counters.error(k429);
      set_deadline(opt_.header_read);
      const auto answer = asio::buffer(too_many_connections_answer());
      co_await asio::async_write(client_, answer, nothrow);
      co_return;
    }
    counted_client_ = !trusted_ && !peer_.is_unspecified();
    co_await serve();
  }

  // §3.15: the TLS handshake, within header_read (which also covers the first head).
  asio::awaitable<bool> handshake() {
    tls_set_ = w_.tls_contexts();
    SSL* ssl = tls_set_ ? tls_set_->new_ssl() : nullptr;
    if (ssl == nullptr) {
      handshake_failed();
      co_return false;
    }
    client_.start_tls(ssl);
    set_deadline(opt_.header_read);
    head_deadline_set_ = true;
    auto [ec] = co_await client_.tls().async_handshake(asio::ssl::stream_base::server, nothrow);
    if (ec) {
      take_expired();
      handshake_failed();
      co_return false;
    }
    tls_version_ = tls_version_name(ssl);
    const std::size_t v = tls_version_ == kTlsVersionNames[0]   ? 0
                          : tls_version_ == kTlsVersionNames[1] ? 1
                                                                : 2;
    bump(w_.counters.tls_handshakes_ok[v]);
    co_return true;
  }

  void handshake_failed() {
    w_.counters.reject(RejectReason::tls_handshake);
    bump(w_.counters.tls_handshakes_failed);
  }

  // A TLS connection says close_notify before the TCP close (so that a body delimited by
  // the close is not taken for a truncation). The client's close_notify is not awaited: the
  // shutdown is marked as received, so OpenSSL only writes ours.
  asio::awaitable<void> close_tls() {
    if (!client_.is_tls() || !client_.socket().is_open()) co_return;
    SSL* ssl = client_.native_ssl();
    SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
    set_deadline(kTlsCloseWait);
    co_await client_.tls().async_shutdown(nothrow);
    clear_deadline();
    take_expired();
  }

  // ---- the request loop ----

  asio::awaitable<void> serve() {
    try {
      bool first = true;
      for (;;) {
        parser_.reset();
        const ReadHead r = co_await read_head(first);
        first = false;
        if (r != ReadHead::ok) break;
        const bool keep = co_await handle_request();
        log_access();
        if (!keep || w_.draining || w_.closing) break;
      }
    } catch (const std::exception&) {
      // A bug or an allocation failure: this connection ends, the worker goes on.
    }
    co_await close_tls();
    finished_ = true;
    error_code ignored;
    client_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    client_.socket().close(ignored);
  }

  // No byte waits in the socket: a draining server may close this idle connection.
  bool nothing_unread() {
    error_code ec;
    return client_.socket().available(ec) == 0;
  }

  asio::awaitable<ReadHead> read_head(bool first) {
    idle_ = true;
    in_.shrink(kHeadBuffer);  // an idle connection keeps only a head's worth
    if (!(first && head_deadline_set_)) set_deadline(first ? opt_.header_read : opt_.keepalive_idle);
    for (;;) {
      if (!in_.empty()) {
        if (idle_) {
          idle_ = false;
          if (!first) set_deadline(opt_.header_read);
        }
        std::size_t used = 0;
        const ParseStatus s = parser_.feed(in_.view(), &used);
        in_.consume(used);
        if (s == ParseStatus::head_complete) {
          clear_deadline();
          co_return ReadHead::ok;
        }
        if (s == ParseStatus::error) {
          clear_deadline();
          const int status = parser_.error().status;
          if (status == 0) {
            w_.counters.reject(RejectReason::bad_request);  // the HTTP/2 preface: silent
          } else {
            begin_rejected_exchange();
            co_await reject(status);
          }
          co_return ReadHead::closed;
        }
      }
      if (idle_ && (w_.closing || (w_.draining && nothing_unread()))) co_return ReadHead::closed;
      const auto room = in_.room(kHeadBuffer);
      auto [ec, n] = co_await client_.async_read_some(room, nothrow);
      if (ec) {
        const bool timed_out = take_expired();
        idle_ = false;
        if (timed_out && parser_.started()) {
          begin_rejected_exchange();
          co_await reject(408, RejectReason::header_timeout);
        } else if (timed_out && first) {
          w_.counters.reject(RejectReason::header_timeout);  // silent close (§3.10)
        }
        co_return ReadHead::closed;
      }
      in_.commit(n);
    }
  }

  // §3.3: text/plain, Connection: close, then a lingering close. The request ends with the
  // answer, before the linger.
  asio::awaitable<void> reject(int status, RejectReason why = RejectReason::bad_request) {
    build_rejection(status, out_);
    x_.rec.status = status;
    x_.rec.route = "edge_error";
    x_.edge_answer = true;
    x_.rejection = status;
    w_.counters.reject(why);
    set_deadline(opt_.header_read);
    const auto buf = asio::buffer(out_);
    auto [ec, n] = co_await asio::async_write(client_, buf, nothrow);
    clear_deadline();
    take_expired();
    log_access();
    if (ec) co_return;
    co_await linger();
  }

  asio::awaitable<void> linger() {
    error_code ignored;
    client_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    set_deadline(kDrainTime);
    std::size_t got = 0;
    while (got < kDrainBytes) {
      in_.clear();
      const auto room = in_.room(kHeadBuffer);
      auto [ec, n] = co_await client_.async_read_some(room, nothrow);
      if (ec) break;
      got += n;
    }
    in_.clear();
    clear_deadline();
    take_expired();
  }

  // A request rejected before its head was complete: an exchange without a head.
  void begin_rejected_exchange() {
    x_ = Exchange{};
    x_.start = steady::now();
    x_.rec.ts_ms = coarse_unix_ms();
    x_.rec.request_id = w_.ids.next().str();
    x_.rec.client_ip = client_ip_;
    x_.rec.client_port = client_port_;
    x_.rec.https = https_;
    x_.rec.tls = tls_version_;
  }

  void begin_exchange(const RequestHead& h) {
    x_ = Exchange{};
    x_.start = steady::now();
    x_.head_only = h.method == "HEAD";
    x_.http10 = h.version == HttpVersion::http10;
    x_.keep = h.keep_alive;
    x_.html = is_navigation(h);
    AccessRecord& r = x_.rec;
    r.ts_ms = coarse_unix_ms();
    r.request_id = w_.ids.next().str();
    r.client_ip = client_ip_;
    r.client_port = client_port_;
    r.https = https_;
    r.tls = tls_version_;
    if (w_.access_log != nullptr && w_.access_log->enabled()) {  // only the access line reads these
      r.method = h.method;
      r.host = h.host;
      r.target = h.target;
      r.proto = x_.http10 ? "HTTP/1.0" : "HTTP/1.1";
      r.user_agent = h.field("user-agent").value_or("");
      r.referer = h.field("referer").value_or("");
    }
    if (h.chunked) {
      body_is_chunked_ = true;
      body_chunked_.reset();
      body_left_ = 0;
      body_finished_ = false;
    } else {
      body_is_chunked_ = false;
      body_left_ = h.content_length.value_or(0);
      body_finished_ = body_left_ == 0;
    }
  }

  asio::awaitable<bool> handle_request() {
    const RequestHead& h = parser_.head();
    begin_exchange(h);
    const HostMatch m = classify_host(h.host, opt_.preview_suffix);
    const std::string_view path = h.origin_target.substr(0, h.origin_target.find('?'));
    const bool health = m.kind == HostKind::other && (h.method == "GET" || h.method == "HEAD") &&
                        path == "/healthz";
    if (https_ && !host_covered(h.host)) {
      switch_sandbox(nullptr);
      x_.misdirected = true;
      co_return co_await send_edge_answer();
    }
    if (!https_ && opt_.tls && opt_.redirect_http && !health && !serving_placeholder()) {
      switch_sandbox(nullptr);
      prepare_redirect(h);
      co_return co_await send_edge_answer();
    }
    if (m.kind == HostKind::other) {
      switch_sandbox(nullptr);
      if (health) {
        x_.health = true;
        co_return co_await send_edge_answer();
      }
      prepare_error("unknown_host");
      co_return co_await send_edge_answer();
    }
    if (m.kind == HostKind::bad_preview) {
      switch_sandbox(nullptr);
      prepare_error("no_such_sandbox");
      co_return co_await send_edge_answer();
    }
    const PreviewTarget target = m.target;
    co_return co_await handle_preview(target);
  }

  // ---- private previews (§3.14) ----

  enum class Access : std::uint8_t { allowed, redirect, denied };

  std::string_view cookie_name() const { return https_ ? "__Host-sandbox_preview" : "sandbox_preview"; }

  void count_preview(bool allowed, PreviewVia via, TokenCheck reason) {
    bump(w_.counters.preview_auth[allowed ? 0 : 1][idx(via)][idx(reason)]);
  }

  // The request's lower-cased host name, without port or trailing dot.
  std::string host_lower(const RequestHead& h) const {
    std::string out(host_name(h.host).value_or(std::string_view{}));
    for (char& c : out) c = ascii_lower(c);
    return out;
  }

  void set_preview_cookie(const PreviewAuthSettings& s, const RequestHead& h, const PreviewTarget& t,
                          std::int64_t now) {
    x_.set_cookie.assign(cookie_name());
    x_.set_cookie.push_back('=');
    x_.set_cookie += make_preview_cookie(s.keys.front(), t.id, host_lower(h), now + s.cookie_ttl.count());
    x_.set_cookie += "; Path=/; Max-Age=" + std::to_string(s.cookie_ttl.count()) + "; HttpOnly; SameSite=Lax";
    if (https_) x_.set_cookie += "; Secure";
  }

  // Step 2 of §3.5 for a private sandbox: the credentials in order (query token, bearer
  // token, session cookie). Sets what the answer or the forwarded request must carry.
  Access check_private(const RequestHead& h, const PreviewTarget& t, bool running) {
    const auto& settings = w_.preview_auth();
    static const PreviewAuthSettings kNone;
    const PreviewAuthSettings& s = settings ? *settings : kNone;
    const std::int64_t now = coarse_unix_ms() / 1000;
    const bool get_or_head = h.method == "GET" || h.method == "HEAD";
    if (h.method == "OPTIONS" && h.field("access-control-request-method")) {
      // A CORS preflight carries no credentials; forwarding it wakes nothing when running.
      count_preview(running, PreviewVia::none, TokenCheck::ok);
      return running ? Access::allowed : Access::denied;
    }
    PreviewVia failed_via = PreviewVia::none;
    TokenCheck failed = TokenCheck::ok;
    auto remember = [&](PreviewVia via, TokenCheck c) {
      if (failed == TokenCheck::ok) {
        failed_via = via;
        failed = c;
      }
    };
    std::string_view token;
    std::string without;
    if (take_query_param(h.origin_target, "sandbox_token", &token, &without)) {
      const TokenCheck c = check_preview_token(token, s.keys, t.id, t.port, now);
      if (c == TokenCheck::ok) {
        count_preview(true, PreviewVia::query, c);
        set_preview_cookie(s, h, t, now);
        if (get_or_head) {
          x_.redirect = 302;
          x_.location = std::move(without);
          return Access::redirect;
        }
        x_.fwd_target = std::move(without);
        return Access::allowed;
      }
      remember(PreviewVia::query, c);
    }
    if (auto auth = h.field("authorization"); auth && istarts_with(*auth, "bearer ")) {
      const TokenCheck c = check_preview_token(trim_ows(auth->substr(7)), s.keys, t.id, t.port, now);
      if (c == TokenCheck::ok) {
        count_preview(true, PreviewVia::bearer, c);
        set_preview_cookie(s, h, t, now);
        if (x_.html) {
          x_.redirect = 302;
          x_.location.assign(h.origin_target);
          return Access::redirect;
        }
        x_.drop_auth = true;
        return Access::allowed;
      }
      remember(PreviewVia::bearer, c);
    }
    if (auto value = find_cookie(h, cookie_name())) {
      const TokenCheck c = check_preview_cookie(*value, s.keys, t.id, host_lower(h), now);
      if (c == TokenCheck::ok) {
        count_preview(true, PreviewVia::cookie, c);
        x_.strip_cookie = true;
        return Access::allowed;
      }
      remember(PreviewVia::cookie, c);
    }
    count_preview(false, failed_via, failed);
    if (!s.redirect_url.empty() && x_.html) {
      // The login page, told which sandbox and where to come back to (token removed).
      std::string back = https_ ? "https://" : "http://";
      back.append(h.host);
      back.append(without.empty() ? std::string(h.origin_target) : without);
      x_.redirect = 302;
      x_.location = fill_login_url(s.redirect_url, t.id.str(), back);
      return Access::redirect;
    }
    return Access::denied;
  }

  // ---- edge answers ----

  // §3.15: the host (lower-cased, without port) is a name of the certificate the handshake
  // chose.
  bool host_covered(std::string_view host) {
    const auto name = host_name(host);
    if (!name || !tls_set_) return false;
    std::string lower(*name);
    for (char& c : lower) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return tls_set_->covers(client_.native_ssl(), lower);
  }

  bool serving_placeholder() {
    const auto set = w_.tls_contexts();
    return !set || set->placeholder();
  }

  // §3.1: 301 for GET and HEAD, 308 for the rest, to the same host on the https listener.
  void prepare_redirect(const RequestHead& h) {
    x_.redirect = (h.method == "GET" || h.method == "HEAD") ? 301 : 308;
    x_.location = "https://";
    const auto name = host_name(h.host);
    x_.location.append(name ? *name : std::string_view{});
    if (st_.https_port != 443) {
      x_.location.push_back(':');
      x_.location.append(std::to_string(st_.https_port));
    }
    x_.location.append(h.origin_target.empty() ? std::string_view("/") : h.origin_target);
  }

  void prepare_error(std::string_view code, std::string_view message = {}, int retry_after = -1) {
    const ErrorInfo* e = find_error(code);
    x_.error = e != nullptr ? e->code : std::string_view("internal");
    x_.error_message.assign(message);
    x_.retry_after = retry_after;
  }

  // Writes the prepared answer (an error, or /healthz). The unread request body is
  // discarded first when that is quick; otherwise the connection closes after the answer.
  asio::awaitable<bool> send_edge_answer() {
    x_.edge_answer = true;
    bool keep = x_.keep && !w_.draining && !w_.closing;
    if (!body_finished_) {
      const bool drained = keep && co_await drain_body();
      keep = keep && drained;
    }
    if (x_.health) {
      x_.rec.route = "health";
      x_.rec.status = 200;
      build_health_answer(x_.head_only, !keep, x_.http10 && keep, out_);
    } else if (x_.redirect != 0) {
      x_.rec.route = "redirect";
      x_.rec.status = x_.redirect;
      build_redirect(x_.redirect, x_.location, !keep, x_.http10 && keep, out_, x_.set_cookie);
    } else if (x_.misdirected) {
      x_.rec.route = "edge_error";
      x_.rec.status = 421;
      build_misdirected(x_.head_only, !keep, x_.http10 && keep, out_);
    } else {
      const ErrorInfo* e = find_error(x_.error);
      x_.rec.route = "edge_error";
      x_.rec.error = e->code;
      x_.rec.status = e->status;
      ErrorAnswer a;
      a.code = e->code;
      a.html = x_.html;
      a.head_only = x_.head_only;
      a.close = !keep;
      a.http10_keep_alive = x_.http10 && keep;
      if (x_.sandbox) {
        a.sandbox = x_.sandbox;
        a.port = x_.port;
      }
      a.retry_after = x_.retry_after;
      a.wake = x_.rec.wake;
      const std::string message =
          x_.error_message.empty()
              ? default_message(e->code, x_.port,
                                std::chrono::ceil<std::chrono::seconds>(opt_.wake_timeout)
                                    .count())
              : x_.error_message;
      build_error_answer(a, message, out_);
    }
    const auto buf = asio::buffer(out_);
    const bool written = co_await write_client(buf);
    co_return written && keep;
  }

  // Discards the rest of the request body: at most 64 KiB, within 1 s.
  asio::awaitable<bool> drain_body() {
    if (!body_is_chunked_ && body_left_ > kDrainBytes) co_return false;
    const auto until = steady::now() + kDrainTime;
    std::uint64_t drained = 0;
    for (;;) {
      if (steady::now() >= until || drained > kDrainBytes) co_return false;
      std::string_view data;
      const BodyStep s = co_await next_body(&data, kDrainTime);
      if (s == BodyStep::done) co_return true;
      if (s != BodyStep::data) co_return false;
      drained += data.size();
    }
  }

  // The next piece of the request body: buffered bytes first, then reads, each within
  // `idle` (body_idle). Chunked bodies come back decoded.
  asio::awaitable<BodyStep> next_body(std::string_view* data, steady::duration idle) {
    for (;;) {
      if (body_finished_) co_return BodyStep::done;
      if (!body_is_chunked_) {
        if (body_left_ == 0) {
          body_finished_ = true;
          co_return BodyStep::done;
        }
        if (!in_.empty()) {
          const std::size_t n =
              std::min<std::uint64_t>(in_.size(), body_left_);
          *data = in_.view().substr(0, n);
          in_.consume(n);
          body_left_ -= n;
          if (body_left_ == 0) body_finished_ = true;
          co_return BodyStep::data;
        }
      } else if (!in_.empty()) {
        std::size_t used = 0;
        std::string_view piece;
        const ChunkStatus s = body_chunked_.decode(in_.view(), &used, &piece);
        in_.consume(used);
        if (s == ChunkStatus::data) {
          *data = piece;
          co_return BodyStep::data;
        }
        if (s == ChunkStatus::done) {
          body_finished_ = true;
          co_return BodyStep::done;
        }
        if (s == ChunkStatus::error) {
          body_error_ = body_chunked_.error().status;
          co_return BodyStep::bad;
        }
        if (!in_.empty()) continue;
      }
      set_deadline(idle);
      const auto room = in_.room(kMaxBuffer);
      auto [ec, n] = co_await client_.async_read_some(room, nothrow);
      clear_deadline();
      if (ec) co_return take_expired() ? BodyStep::timeout : BodyStep::gone;
      in_.commit(n);
    }
  }

  template <class Buffers>
  asio::awaitable<bool> write_client(const Buffers& buffers) {
    set_deadline(opt_.body_idle);
    auto [ec, n] = co_await asio::async_write(client_, buffers, nothrow);
    clear_deadline();
    take_expired();
    if (n > 0) x_.response_started = true;
    co_return !ec;
  }

  template <class Buffers>
  asio::awaitable<bool> write_upstream(UpstreamConn& up, const Buffers& buffers) {
    set_deadline(opt_.body_idle);
    auto [ec, n] = co_await asio::async_write(up.socket, buffers, nothrow);
    clear_deadline();
    take_expired();
    co_return !ec;
  }

  // ---- preview requests ----

  void switch_sandbox(ShardEntry* e) {
    if (sandbox_ == e) return;
    if (sandbox_ != nullptr) sandbox_->open_connections.fetch_sub(1, std::memory_order_relaxed);
    sandbox_ = e;
    if (e != nullptr) e->open_connections.fetch_add(1, std::memory_order_relaxed);
  }

  void note_bytes(std::size_t in, std::size_t out) {
    x_.rec.bytes_in += in;
    x_.rec.bytes_out += out;
    if (in > 0) bump(w_.counters.bytes_in, in);
    if (out > 0) bump(w_.counters.bytes_out, out);
    if (x_.entry != nullptr) {
      if (in > 0) x_.entry->bytes_in.fetch_add(in, std::memory_order_relaxed);
      if (out > 0) x_.entry->bytes_out.fetch_add(out, std::memory_order_relaxed);
      x_.entry->touch(coarse_unix_ms());
    }
  }

  asio::awaitable<bool> handle_preview(PreviewTarget t) {
    x_.sandbox = t.id;
    x_.port = t.port;
    x_.rec.sandbox_id = t.id.str();
    x_.rec.port = t.port;
    ShardEntry& entry = w_.activity.entry(t.id);
    x_.entry = &entry;
    switch_sandbox(&entry);
    entry.touch(coarse_unix_ms());

    RouteAction action = RouteAction::no_such_sandbox;
    IpAddress address;
    std::string reason;
    Access access = Access::allowed;
    {
      const RouteTable& table = w_.routes.current();
      if (w_.pool_table != &table) {
        w_.pool.drop_stale(table);
        w_.pool_table = &table;
      }
      const Route* route = table.find(t.id);
      if (route != nullptr && route->visibility == Visibility::private_) {
        access = check_private(parser_.head(), t, route->state == RouteState::running);
      }
      action = decide_route(route, t.port, access == Access::allowed, opt_.ports);
      if (route != nullptr) {
        address = route->address;
        reason = route->error_reason.substr(0, 200);
      }
    }
    switch (action) {
      case RouteAction::no_such_sandbox:
        prepare_error("no_such_sandbox");
        co_return co_await send_edge_answer();
      case RouteAction::preview_auth_required:
        if (access != Access::redirect) prepare_error("preview_auth_required");
        co_return co_await send_edge_answer();
      case RouteAction::port_not_exposed:
        prepare_error("port_not_exposed");
        co_return co_await send_edge_answer();
      case RouteAction::sandbox_error:
        prepare_error("sandbox_error", reason);
        co_return co_await send_edge_answer();
      case RouteAction::proxy:
      case RouteAction::hold:
        break;
    }

    CountGuard in_flight(entry.in_flight);
    x_.arrival = steady::now();
    bool must_hold = action == RouteAction::hold || address.empty();
    bool wake = action == RouteAction::hold;
    std::optional<tcp::socket> probed;
    // A released request whose connect is refused again waits again; each round is bounded
    // by the request's own deadline, the count by this loop.
    for (int round = 0; round < 64; ++round) {
      if (must_hold) {
        const HoldResult hr = co_await hold(t, wake, address, probed);
        if (hr == HoldResult::gone) co_return false;
        if (hr == HoldResult::answered) co_return co_await send_edge_answer();
      }
      const ForwardResult fr = co_await forward(t, address, probed);
      if (fr != ForwardResult::refused) co_return fr == ForwardResult::keep;
      must_hold = true;
      wake = false;
      if (steady::now() >= x_.arrival + opt_.wake_timeout) break;
    }
    prepare_error("port_not_open");
    x_.rec.wake = "timeout;held_ms=" + std::to_string(ms_between(x_.arrival, steady::now()));
    co_return co_await send_edge_answer();
  }

  // §3.6: waits, holding the request, until the gate releases or answers it, the client
  // leaves, or the request's deadline passes.
  asio::awaitable<HoldResult> hold(const PreviewTarget& t, bool wake, IpAddress& address,
                                   std::optional<tcp::socket>& probed) {
    SandboxCounters& shared = *x_.entry->shared;
    x_.held = true;
    if (wake) x_.woke = true;
    if (static_cast<std::size_t>(shared.held.load(std::memory_order_relaxed)) >=
            opt_.max_held_requests_per_sandbox ||
        st_.held.load(std::memory_order_relaxed) >= opt_.max_held_requests_total) {
      prepare_error("too_many_held");
      x_.rec.wake = "refused;held_ms=0";
      x_.held_result = HeldResult::refused;
      x_.held_for = {};
      co_return HoldResult::answered;
    }
    CountGuard held_here(shared.held);
    st_.held.fetch_add(1, std::memory_order_relaxed);
    held_ = true;
    const auto deadline = x_.arrival + opt_.wake_timeout;

    HeldRequest r(client_.get_executor());
    r.id = t.id;
    r.port = t.port;
    r.wake = wake;
    r.arrival = x_.arrival;
    r.timer.expires_at(deadline);
    struct Leave {
      Connection& c;
      HeldRequest& r;
      ~Leave() {
        c.w_.gate.remove(r);
        c.st_.held.fetch_sub(1, std::memory_order_relaxed);
        c.held_ = false;
      }
    } leave{*this, r};
    w_.gate.add(r);

    const std::size_t read_limit = in_.size() + kHeldBodyBytes;
    bool client_gone = false;
    while (r.verdict == HeldRequest::Verdict::waiting && steady::now() < deadline &&
           !w_.closing) {
      if (in_.size() < read_limit) {
        auto timer_wait = r.timer.async_wait(nothrow);
        auto client_wait = client_.socket().async_wait(tcp::socket::wait_read, nothrow);
        auto first = co_await (std::move(timer_wait) || std::move(client_wait));
        if (first.index() == 1) {
          auto [ec] = std::get<1>(first);
          if (!ec) {
            const auto room = in_.room(kMaxBuffer, read_limit - in_.size());
            auto [rec, n] = co_await client_.async_read_some(room, nothrow);
            if (!rec) {
              in_.commit(n);
              continue;
            }
          }
          client_gone = true;
          break;
        }
      } else {
        co_await r.timer.async_wait(nothrow);
      }
    }
    const auto now = steady::now();
    const std::int64_t held_ms = ms_between(x_.arrival, now);
    x_.held_ms = held_ms;
    x_.held_for = now - x_.arrival;
    if (client_gone) {
      x_.held_result = HeldResult::gone;
      if (!wake) count_port_wait(PortWaitResult::cancelled);
      co_return HoldResult::gone;
    }
    if (r.verdict == HeldRequest::Verdict::dispatch) {
      x_.held_result = HeldResult::forwarded;
      if (!wake) count_port_wait(PortWaitResult::ok);
      address = r.address;
      if (r.probed) {
        probed.emplace(std::move(*r.probed));
        r.probed.reset();
      }
      x_.rec.wake = (x_.woke ? "woke;held_ms=" : "port_wait;held_ms=") + std::to_string(held_ms);
      co_return HoldResult::dispatched;
    }
    if (r.verdict == HeldRequest::Verdict::answer) {
      prepare_error(r.code, r.message, r.retry_after);
    } else if (w_.closing) {
      prepare_error("shutting_down");
    } else {
      // The deadline: still starting, or started with the port still closed.
      bool running = false;
      {
        const Route* route = w_.routes.current().find(t.id);
        running = route != nullptr && route->state == RouteState::running;
      }
      prepare_error(running ? "port_not_open" : "wake_timeout");
    }
    const std::string_view kind = wake_kind(x_.error);
    x_.rec.wake = std::string(kind) + ";held_ms=" + std::to_string(held_ms);
    x_.held_result = kind == "timeout"   ? HeldResult::timeout
                     : kind == "refused" ? HeldResult::refused
                                         : HeldResult::failed;
    if (!wake) {
      count_port_wait(kind == "timeout" ? PortWaitResult::timeout : PortWaitResult::cancelled);
    }
    co_return HoldResult::answered;
  }

  void count_port_wait(PortWaitResult r) { bump(w_.counters.port_waits[idx(r)]); }

  // Sends the request upstream and relays the answer (§3.7, §3.8).
  asio::awaitable<ForwardResult> forward(const PreviewTarget& t, const IpAddress& address,
                                         std::optional<tcp::socket>& probed) {
    const RequestHead& h = parser_.head();
    SandboxCounters& shared = *x_.entry->shared;
    if (static_cast<std::size_t>(shared.busy.load(std::memory_order_relaxed)) >=
        opt_.max_connections_per_sandbox) {
      prepare_error("sandbox_busy");
      co_return co_await finish_answer();
    }
    if (address.empty()) {
      prepare_error("upstream_unreachable");
      co_return co_await finish_answer();
    }
    CountGuard busy(shared.busy);
    struct ClearUpstream {
      tcp::socket*& s;
      ~ClearUpstream() { s = nullptr; }
    } clear_upstream{up_sock_};

    x_.rec.route = h.upgrade ? "tunnel" : "proxy";
    const UpstreamKey key{address, t.port};
    const bool may_retry = !h.upgrade && !h.has_body();
    auto ex = client_.get_executor();
    std::unique_ptr<UpstreamConn> up;
    for (int attempt = 0; attempt < 2; ++attempt) {
      up.reset();
      up_sock_ = nullptr;
      if (probed) {
        up = std::make_unique<UpstreamConn>(ex, key, t.id, w_.counters.upstream_open);
        up->socket = std::move(*probed);
        probed.reset();
        tune_socket(up->socket);
      } else if (attempt == 0 && !h.upgrade) {
        up = w_.pool.take(key);
        if (up) st_.upstream_reuses.fetch_add(1, std::memory_order_relaxed);
      }
      if (!up) {
        up = std::make_unique<UpstreamConn>(ex, key, t.id, w_.counters.upstream_open);
        up_sock_ = &up->socket;
        const tcp::endpoint to(to_asio(address), t.port);
        const ConnectResult cr = co_await connect_within(up->socket, to, opt_.upstream_connect);
        st_.upstream_connects.fetch_add(1, std::memory_order_relaxed);
        if (cr == ConnectResult::refused) co_return ForwardResult::refused;
        if (cr != ConnectResult::ok) {
          prepare_error(cr == ConnectResult::timeout ? "upstream_timeout" : "upstream_unreachable");
          co_return co_await finish_answer();
        }
      }
      up_sock_ = &up->socket;

      const auto sent_at = steady::now();
      bool body_sent = false;
      const SendResult sr = co_await send_request(*up, &body_sent);
      if (sr == SendResult::client_bad || sr == SendResult::client_timeout) {
        const int status = sr == SendResult::client_bad ? body_error_ : 408;
        if (!x_.response_started) co_await reject(status);
        co_return ForwardResult::close;
      }
      if (sr == SendResult::client_gone) co_return ForwardResult::close;
      if (sr == SendResult::upstream_failed && up->reused && may_retry && attempt == 0) {
        x_.rec.retried = true;
        bump(w_.counters.upstream_retries);
        continue;
      }

      // The answer; 1xx first. With Expect: 100-continue the body waits for the 100.
      HeadResult hr = HeadResult::ok;
      int interim = 0;
      for (; interim < kMaxInterim; ++interim) {
        if (!body_sent && sr == SendResult::ok) {
          const bool answered = co_await upstream_readable_within(*up, kExpectWait);
          if (!answered) {
            const SendResult br = co_await send_body(*up);
            if (br != SendResult::ok) co_return co_await body_failed(br);
            body_sent = true;
          }
        }
        hr = co_await read_response_head(*up);
        if (hr != HeadResult::ok) break;
        if (!x_.rec.upstream_ms) {
          const auto first_byte = steady::now();
          x_.rec.upstream_ms = ms_between(sent_at, first_byte);
          if (x_.woke && x_.held_result == HeldResult::forwarded) {
            const auto dispatched = x_.arrival + x_.held_for;
            w_.counters.wake_phases[idx(EdgeWakePhase::first_byte)].observe(first_byte - dispatched);
          }
        }
        const int status = resp_.head().status;
        if (status >= 200 || status == 101) break;
        if (status == 100 && !body_sent && sr == SendResult::ok) {
          if (!x_.http10) {
            constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            const auto buf = asio::buffer(kContinue);
            if (!co_await write_client(buf)) co_return ForwardResult::close;
          }
          const SendResult br = co_await send_body(*up);
          if (br != SendResult::ok) co_return co_await body_failed(br);
          body_sent = true;
        } else if (!x_.http10 && (status == 100 || status == 103)) {
          ClientResponseContext ctx;
          build_client_response_head(resp_.head(), ctx, out_);
          const auto buf = asio::buffer(out_);
          if (!co_await write_client(buf)) co_return ForwardResult::close;
        }
      }
      if (interim == kMaxInterim) hr = HeadResult::bad;
      if (hr == HeadResult::eof_before_any && up->reused && may_retry && attempt == 0 &&
          !x_.response_started) {
        x_.rec.retried = true;
        bump(w_.counters.upstream_retries);
        continue;
      }
      if (hr != HeadResult::ok) {
        if (x_.response_started) co_return ForwardResult::close;
        prepare_error(hr == HeadResult::timeout ? "upstream_timeout"
                      : hr == HeadResult::bad   ? "upstream_protocol_error"
                                                : "upstream_reset");
        co_return co_await finish_answer();
      }
      co_return co_await relay_response(up, body_sent);
    }
    prepare_error("upstream_reset");
    co_return co_await finish_answer();
  }

  asio::awaitable<ForwardResult> finish_answer() {
    const bool keep = co_await send_edge_answer();
    co_return keep ? ForwardResult::keep : ForwardResult::close;
  }

  asio::awaitable<ForwardResult> body_failed(SendResult r) {
    if (r == SendResult::client_bad || r == SendResult::client_timeout) {
      if (!x_.response_started) co_await reject(r == SendResult::client_bad ? body_error_ : 408);
      co_return ForwardResult::close;
    }
    if (r == SendResult::client_gone || x_.response_started) co_return ForwardResult::close;
    prepare_error("upstream_reset");
    x_.keep = false;
    co_return co_await finish_answer();
  }

  // True when the upstream has something to say within `limit` (for Expect: 100-continue).
  asio::awaitable<bool> upstream_readable_within(UpstreamConn& up, steady::duration limit) {
    if (!up.pending().empty()) co_return true;
    asio::steady_timer timer(client_.get_executor(), limit);
    auto readable = up.socket.async_wait(tcp::socket::wait_read, nothrow);
    auto waited = timer.async_wait(nothrow);
    auto first = co_await (std::move(readable) || std::move(waited));
    co_return first.index() == 0;
  }

  // The head (with the buffered body when it is all there), then the body unless the
  // client expects a 100 first.
  asio::awaitable<SendResult> send_request(UpstreamConn& up, bool* body_sent) {
    const RequestHead& h = parser_.head();
    ForwardContext ctx;
    ctx.client_ip = client_ip_;
    ctx.listener_port = https_ ? st_.https_port : st_.port;
    ctx.https = https_;
    ctx.trusted = trusted_;
    ctx.tunnel = h.upgrade;
    ctx.forwarded_header = opt_.forwarded_header;
    ctx.request_id = x_.rec.request_id;
    ctx.target = x_.fwd_target;
    ctx.drop_authorization = x_.drop_auth;
    if (x_.strip_cookie) ctx.preview_cookie = cookie_name();
    build_forward_head(h, ctx, fwd_);
    const bool wait_for_continue = h.expect_continue && h.has_body();
    if (!wait_for_continue && !body_is_chunked_ && body_left_ > 0 && in_.size() >= body_left_) {
      const std::size_t n = body_left_;
      const std::array<asio::const_buffer, 2> bufs{asio::buffer(fwd_),
                                                   asio::buffer(in_.view().data(), n)};
      const bool ok = co_await write_upstream(up, bufs);
      if (!ok) co_return SendResult::upstream_failed;
      in_.consume(n);
      body_left_ = 0;
      body_finished_ = true;
      note_bytes(n, 0);
      *body_sent = true;
      co_return SendResult::ok;
    }
    const auto head = asio::buffer(fwd_);
    if (!co_await write_upstream(up, head)) co_return SendResult::upstream_failed;
    if (wait_for_continue) co_return SendResult::ok;
    const SendResult r = co_await send_body(up);
    *body_sent = r == SendResult::ok;
    co_return r;
  }

  asio::awaitable<SendResult> send_body(UpstreamConn& up) {
    SizeLines sizes;
    for (;;) {
      std::string_view data;
      const BodyStep s = co_await next_body(&data, opt_.body_idle);
      if (s == BodyStep::done) {
        if (body_is_chunked_) {
          const auto last = asio::buffer(kLastChunk);
          if (!co_await write_upstream(up, last)) co_return SendResult::upstream_failed;
        }
        co_return SendResult::ok;
      }
      if (s == BodyStep::bad) co_return SendResult::client_bad;
      if (s == BodyStep::timeout) co_return SendResult::client_timeout;
      if (s == BodyStep::gone) co_return SendResult::client_gone;
      bool ok = false;
      if (body_is_chunked_) {
        const std::array<asio::const_buffer, 3> bufs{sizes.line(0, data.size()),
                                                     asio::buffer(data), asio::buffer(kCrlf)};
        ok = co_await write_upstream(up, bufs);
      } else {
        const auto buf = asio::buffer(data);
        ok = co_await write_upstream(up, buf);
      }
      if (!ok) co_return SendResult::upstream_failed;
      note_bytes(data.size(), 0);
    }
  }

  asio::awaitable<HeadResult> read_response_head(UpstreamConn& up) {
    resp_.reset();
    bool any = false;
    for (;;) {
      if (!up.pending().empty()) {
        any = true;
        std::size_t used = 0;
        const ParseStatus s = resp_.feed(up.pending(), &used);
        up.consume(used);
        if (s == ParseStatus::head_complete) co_return HeadResult::ok;
        if (s == ParseStatus::error) co_return HeadResult::bad;
      }
      if (opt_.upstream_response_header.count() > 0) set_deadline(opt_.upstream_response_header);
      const auto room = up.room();
      auto [ec, n] = co_await up.socket.async_read_some(room, nothrow);
      clear_deadline();
      if (ec) {
        if (take_expired()) co_return HeadResult::timeout;
        co_return any ? HeadResult::reset : HeadResult::eof_before_any;
      }
      up.end += n;
    }
  }

  // Relays the response whose head `resp_` holds, and the body as it arrives.
  asio::awaitable<ForwardResult> relay_response(std::unique_ptr<UpstreamConn>& up,
                                                bool body_sent) {
    const RequestHead& h = parser_.head();
    const ResponseHead& rh = resp_.head();
    if (rh.status == 101) {
      if (!h.upgrade || !body_finished_) {
        prepare_error("upstream_protocol_error");
        x_.keep = false;
        co_return co_await finish_answer();
      }
      co_await tunnel(*up);
      co_return ForwardResult::close;
    }
    const BodyFraming from = rh.framing(x_.head_only);
    BodyFraming to = from;
    if (from == BodyFraming::chunked || from == BodyFraming::until_close) {
      to = x_.http10 ? BodyFraming::until_close : BodyFraming::chunked;
    }
    bool keep = x_.keep && !w_.draining && !w_.closing && to != BodyFraming::until_close;
    if (!body_finished_) {
      // The upstream answered before the whole body came (§3.7 Expect).
      const bool drained = keep && co_await drain_body();
      keep = keep && drained;
    }
    ClientResponseContext ctx;
    ctx.framing = to;
    ctx.close = !keep;
    ctx.http10_keep_alive = x_.http10 && keep;
    ctx.wake = x_.rec.wake;
    ctx.set_cookie = x_.set_cookie;
    if (https_ && opt_.hsts_max_age.count() > 0) {
      hsts_ = "max-age=" + std::to_string(opt_.hsts_max_age.count());
      ctx.hsts = hsts_;
    }
    build_client_response_head(rh, ctx, out_);
    x_.rec.status = rh.status;

    bool complete = false;
    if (from == BodyFraming::none) {
      const auto buf = asio::buffer(out_);
      if (!co_await write_client(buf)) co_return ForwardResult::close;
      complete = true;
    } else if (from == BodyFraming::content_length) {
      complete = co_await relay_sized(*up, *rh.content_length);
    } else {
      complete = co_await relay_stream(*up, from == BodyFraming::chunked, to);
    }
    if (!complete) co_return ForwardResult::close;
    bool reusable = from != BodyFraming::until_close && rh.keep_alive && body_sent &&
                    body_finished_ && !h.upgrade && !w_.closing;
    if (reusable) {
      // §3.8: a busy connection whose sandbox left running or moved closes when its
      // exchange ends.
      const Route* route = w_.routes.current().find(up->sandbox);
      reusable = route != nullptr && route->state == RouteState::running &&
                 route->address == up->key.address;
    }
    if (reusable) {
      up_sock_ = nullptr;
      w_.pool.put(std::move(up));
    }
    co_return keep ? ForwardResult::keep : ForwardResult::close;
  }

  // A Content-Length body: the head goes out with the first bytes.
  asio::awaitable<bool> relay_sized(UpstreamConn& up, std::uint64_t length) {
    std::uint64_t left = length;
    bool head_sent = false;
    for (;;) {
      const std::size_t n =
          std::min<std::uint64_t>(up.pending().size(), left);
      if (!head_sent || n > 0) {
        const std::array<asio::const_buffer, 2> bufs{
            head_sent ? asio::const_buffer() : asio::const_buffer(asio::buffer(out_)),
            asio::buffer(up.pending().data(), n)};
        if (!co_await write_client(bufs)) co_return false;
        head_sent = true;
        up.consume(n);
        left -= n;
        note_bytes(0, n);
      }
      if (left == 0) co_return true;
      const auto room = up.room();
      auto [ec, got] = co_await up.socket.async_read_some(room, nothrow);
      if (ec) co_return false;  // truncated: the client connection closes
      up.end += got;
    }
  }

  // A chunked or close-delimited body, relayed as chunked (HTTP/1.1 client) or raw (1.0,
  // then close), each read written out before the next starts.
  asio::awaitable<bool> relay_stream(UpstreamConn& up, bool chunked_in, BodyFraming to) {
    const bool chunked_out = to == BodyFraming::chunked;
    resp_chunked_.reset();
    SizeLines sizes;
    std::vector<asio::const_buffer> bufs;
    bufs.reserve(kMaxSpans * 3 + 2);
    bool head_sent = false;
    for (;;) {
      bufs.clear();
      if (!head_sent) bufs.push_back(asio::buffer(out_));
      std::size_t used_total = 0;
      std::size_t spans = 0;
      std::size_t body_bytes = 0;
      bool done = false;
      std::string_view rest = up.pending();
      while (!rest.empty() && spans < kMaxSpans) {
        std::string_view data;
        std::size_t used = rest.size();
        if (chunked_in) {
          const ChunkStatus s = resp_chunked_.decode(rest, &used, &data);
          if (s == ChunkStatus::error) co_return false;
          if (s == ChunkStatus::done) done = true;
        } else {
          data = rest;
        }
        rest.remove_prefix(used);
        used_total += used;
        if (!data.empty()) {
          if (chunked_out) bufs.push_back(sizes.line(spans, data.size()));
          bufs.push_back(asio::buffer(data));
          if (chunked_out) bufs.push_back(asio::buffer(kCrlf));
          ++spans;
          body_bytes += data.size();
        }
        if (done || (chunked_in && used == 0)) break;
      }
      if (done && chunked_out) bufs.push_back(asio::buffer(kLastChunk));
      if (!bufs.empty()) {
        if (!co_await write_client(bufs)) co_return false;
        head_sent = true;
        note_bytes(0, body_bytes);
      }
      up.consume(used_total);
      if (done) co_return true;
      if (!up.pending().empty() && spans == kMaxSpans) continue;
      const auto room = up.room();
      auto [ec, got] = co_await up.socket.async_read_some(room, nothrow);
      if (ec) {
        if (chunked_in || ec != asio::error::eof) co_return false;
        if (chunked_out) {
          const auto last = asio::buffer(kLastChunk);
          if (!co_await write_client(last)) co_return false;
        }
        co_return true;
      }
      up.end += got;
    }
  }

  // §3.9: the 101 goes out, then bytes flow both ways until both sides are done, one
  // side fails, or nothing moved for websocket_idle. A WebSocket tunnel that the edge ends
  // itself (its sandbox stops, or it sat idle) sends the client a close frame 1001 at the
  // next frame boundary; `downward` writes it, `upward` then waits for the client's own
  // close frame, for at most kCloseWait.
  asio::awaitable<void> tunnel(UpstreamConn& up) {
    x_.rec.route = "tunnel";
    ClientResponseContext ctx;
    ctx.tunnel = true;
    ctx.wake = x_.rec.wake;
    build_client_response_head(resp_.head(), ctx, out_);
    x_.rec.status = 101;
    websocket_ = iequals(parser_.head().upgrade_protocol, "websocket");
    to_client_ = FrameCursor{};
    from_client_ = FrameCursor{};
    // From here on the sandbox's stop can end the tunnel (end_tunnel).
    tunnel_dead_ = false;
    tunnel_end_ = {};
    tunnel_by_.reset();
    tunnel_up_ = &up.socket;
    // Counted open from the 101 on; when it ends, closed under the cause (tunnel_ended_by).
    struct Detach {
      Connection& c;
      std::size_t protocol;
      ~Detach() {
        c.tunnel_up_ = nullptr;
        c.end_token_.reset();
        drop(c.w_.counters.tunnels_open[protocol]);
        bump(c.w_.counters.tunnels_closed[idx(c.tunnel_ended_by())]);
      }
    } detach{*this, idx(websocket_ ? TunnelProtocol::websocket : TunnelProtocol::other)};
    bump(w_.counters.tunnels_open[detach.protocol]);
    {
      const std::array<asio::const_buffer, 2> bufs{asio::buffer(out_),
                                                   asio::buffer(up.pending())};
      const std::size_t n = up.pending().size();
      if (!co_await write_client(bufs)) {
        note_tunnel_end(TunnelEnd::client);
        co_return;
      }
      to_client_.advance(up.pending());
      up.consume(n);
      note_bytes(0, n);
    }
    if (!in_.empty()) {
      const auto early = asio::buffer(in_.view());
      const std::size_t n = in_.size();
      if (!co_await write_upstream(up, early)) {
        note_tunnel_end(TunnelEnd::upstream);
        co_return;
      }
      from_client_.advance(in_.view());
      in_.clear();
      note_bytes(n, 0);
    }
    CountGuard tunnels(x_.entry->open_tunnels);
    auto upward = pump_upward(up);
    auto downward = pump_downward(up);
    co_await (std::move(upward) && std::move(downward));
    clear_deadline();
  }

  // Called by the worker when the tunnel's sandbox stops: `token` is held until the close
  // frame went out (or the tunnel is gone).
  void end_tunnel(const Ulid& id, std::shared_ptr<void> token) {
    if (tunnel_up_ == nullptr || !x_.sandbox || *x_.sandbox != id) return;
    finish_tunnel(kSandboxStopping, std::move(token));
  }

  // §3.16 drain: a WebSocket gets close 1001 "server shutting down", other tunnels close.
  void shutdown_tunnel() {
    if (tunnel_up_ == nullptr) return;
    finish_tunnel(kServerShutdown, nullptr);
  }

  void finish_tunnel(std::string_view why, std::shared_ptr<void> token) {
    if (!tunnel_end_.empty()) return;
    tunnel_end_ = why;
    error_code ignored;
    if (!websocket_) {
      tunnel_dead_ = true;
      client_.socket().cancel(ignored);
      tunnel_up_->cancel(ignored);
      return;
    }
    end_token_ = std::move(token);
    tunnel_up_->cancel(ignored);  // wakes `downward`, which writes the close frame
  }

  // The first side (or edge reason) to end the tunnel is the one counted (§11 `by`): an
  // error seen during shutdown is the shutdown's, one seen after the idle deadline fired is
  // the deadline's; what the other pump sees afterwards is a consequence.
  void note_tunnel_end(TunnelEnd side) {
    if (tunnel_by_) return;
    tunnel_by_ = w_.closing ? TunnelEnd::shutdown : expired_ ? TunnelEnd::idle : side;
  }

  TunnelEnd tunnel_ended_by() const {
    if (tunnel_end_ == kSandboxStopping) return TunnelEnd::sandbox_stop;
    if (tunnel_end_ == kServerShutdown) return TunnelEnd::shutdown;
    if (tunnel_end_ == kIdleTimeout) return TunnelEnd::idle;
    if (tunnel_by_) return *tunnel_by_;
    return w_.closing ? TunnelEnd::shutdown : TunnelEnd::client;
  }

  // A read of the tunnel failed with the tunnel's end or an idle deadline behind it: a
  // WebSocket then goes on to its close handshake instead of just closing.
  bool closing_websocket(const error_code& ec) {
    if (!websocket_ || tunnel_dead_ || ec != asio::error::operation_aborted) return false;
    if (tunnel_end_.empty()) {
      if (!expired_) return false;
      tunnel_end_ = kIdleTimeout;
    }
    return true;
  }

  void kill_tunnel(tcp::socket& a, tcp::socket& b) {
    tunnel_dead_ = true;
    error_code ignored;
    a.cancel(ignored);
    b.cancel(ignored);
  }

  // Client → upstream.
  asio::awaitable<void> pump_upward(UpstreamConn& up) {
    for (;;) {
      if (tunnel_dead_) co_return;
      const bool ending = !tunnel_end_.empty();
      if (!ending) set_deadline(opt_.websocket_idle);
      const asio::mutable_buffer room = in_.room(kMaxBuffer);
      auto [ec, n] = co_await client_.async_read_some(room, nothrow);
      error_code ignored;
      if (ec) {
        // The client left, or kCloseWait passed since the close frame: the connection ends.
        if (!tunnel_end_.empty() && (ending || expired_)) co_return;
        if (closing_websocket(ec)) continue;
        note_tunnel_end(TunnelEnd::client);
        // §3.9: the other side gets what is pending (every read was written before the
        // next), then the tunnel closes.
        if (ec == asio::error::eof && !tunnel_dead_) up.socket.shutdown(tcp::socket::shutdown_send, ignored);
        kill_tunnel(up.socket, client_.socket());
        co_return;
      }
      const std::string_view data(static_cast<const char*>(room.data()), n);
      from_client_.advance(data);
      in_.clear();
      note_bytes(n, 0);
      if (!tunnel_end_.empty()) {
        // The edge is closing: these bytes go nowhere, and the client's close frame ends it.
        if (from_client_.saw_close()) co_return;
        continue;
      }
      auto [wec, written] = co_await asio::async_write(up.socket, asio::buffer(data), nothrow);
      if (wec) {
        if (closing_websocket(wec)) continue;
        note_tunnel_end(TunnelEnd::upstream);
        kill_tunnel(up.socket, client_.socket());
        co_return;
      }
    }
  }

  // Upstream → client.
  asio::awaitable<void> pump_downward(UpstreamConn& up) {
    for (;;) {
      if (tunnel_dead_) co_return;
      if (!tunnel_end_.empty()) {
        co_await close_websocket(up);
        co_return;
      }
      set_deadline(opt_.websocket_idle);
      const asio::mutable_buffer room = up.room();
      auto [ec, n] = co_await up.socket.async_read_some(room, nothrow);
      error_code ignored;
      if (ec) {
        if (closing_websocket(ec)) continue;
        note_tunnel_end(TunnelEnd::upstream);
        if (ec == asio::error::eof && !tunnel_dead_) client_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        kill_tunnel(client_.socket(), up.socket);
        co_return;
      }
      const std::string_view data(static_cast<const char*>(room.data()), n);
      auto [wec, written] = co_await asio::async_write(client_, asio::buffer(data), nothrow);
      up.begin = up.end = 0;
      if (wec) {
        note_tunnel_end(TunnelEnd::client);
        kill_tunnel(client_.socket(), up.socket);
        co_return;
      }
      to_client_.advance(data);
      note_bytes(0, n);
    }
  }

  // The edge's side of a WebSocket close (§3.9): the frame under way is finished, then the
  // close frame goes out and the upstream is closed. Bounded by kCloseWait in all.
  asio::awaitable<void> close_websocket(UpstreamConn& up) {
    expired_ = false;
    deadline_ = steady::time_point::max();
    set_deadline(kCloseWait);
    error_code ignored;
    bool boundary = to_client_.at_boundary();
    while (!boundary && !to_client_.lost()) {
      const asio::mutable_buffer room = up.room();
      auto [ec, n] = co_await up.socket.async_read_some(room, nothrow);
      if (ec) break;
      const std::string_view data(static_cast<const char*>(room.data()), n);
      const std::size_t part = to_client_.advance(data, true);
      auto [wec, written] = co_await asio::async_write(client_, asio::buffer(data.substr(0, part)), nothrow);
      up.begin = up.end = 0;
      if (wec) break;
      note_bytes(0, part);
      boundary = to_client_.at_boundary();
    }
    up.socket.close(ignored);
    if (boundary) {
      close_frame_ = close_frame(1001, tunnel_end_);
      auto [wec, written] = co_await asio::async_write(client_, asio::buffer(close_frame_), nothrow);
      if (wec) boundary = false;
    }
    end_token_.reset();
    if (!boundary) client_.socket().cancel(ignored);  // nothing more can be said: `upward` ends now
  }

  // A request has ended: its metrics, then its access line (§3.11, §11). Once per request.
  void log_access() {
    if (std::exchange(x_.logged, true)) return;
    const auto now = steady::now();
    WorkerCounters& m = w_.counters;
    const int status = x_.rec.status;
    const std::size_t source = idx(x_.edge_answer ? Source::edge : Source::upstream);
    if (status >= 100) {
      bump(m.requests[https_ ? 1 : 0][static_cast<std::size_t>(std::min(status / 100, 5) - 1)][source]);
      if (status != 101) m.request_duration[source].observe(now - x_.start);
    }
    if (!x_.rec.error.empty()) {
      m.error(edge_error_index(x_.rec.error));
    } else if (x_.rejection != 0) {
      m.error(edge_rejection_index(x_.rejection));
    }
    if (x_.held_result) m.held_seconds[idx(*x_.held_result)].observe(x_.held_for);

    if (w_.access_log == nullptr || !w_.access_log->enabled()) return;
    x_.rec.duration_ms = ms_between(x_.start, now);
    x_.rec.held_ms = x_.held_ms;
    if (x_.rec.route.empty()) x_.rec.route = "proxy";
    format_access_line(x_.rec, log_line_);
    w_.access_log->append(log_line_);
  }

  struct Exchange {
    steady::time_point start{};
    AccessRecord rec;
    bool head_only = false;
    bool http10 = false;
    bool keep = true;
    bool html = false;
    bool health = false;
    int redirect = 0;          // 301/308 to https (§3.1), 302 of §3.14, with `location`
    std::string location;
    std::string set_cookie;    // the preview cookie to set on the answer (§3.14)
    std::string fwd_target;    // the target without a consumed sandbox_token
    bool drop_auth = false;    // Authorization carried the preview token: not forwarded
    bool strip_cookie = false;  // the edge's cookie is removed upstream
    bool misdirected = false;  // 421 (§3.15)
    bool response_started = false;
    std::optional<Ulid> sandbox;
    std::uint16_t port = 0;
    ShardEntry* entry = nullptr;
    steady::time_point arrival{};
    bool held = false;
    bool woke = false;
    std::int64_t held_ms = 0;
    std::string_view error;  // a §3.13 code (static)
    std::string error_message;
    int retry_after = -1;
    bool logged = false;       // counted and logged (log_access)
    bool edge_answer = false;  // the edge wrote the answer (source=edge)
    int rejection = 0;         // the status of a §3.3 rejection
    std::optional<HeldResult> held_result;  // the outcome of the request's last hold
    steady::duration held_for{};
  };

  Worker& w_;
  const EdgeOptions& opt_;  // the snapshot in force when the connection was accepted
  ServerState& st_;
  ClientStream client_;
  const bool https_;
  std::shared_ptr<const TlsContexts> tls_set_;  // the set this connection handshook with
  std::string_view tls_version_;                // "" on plain HTTP
  bool head_deadline_set_ = false;              // the handshake started header_read
  asio::ip::address peer_;
  std::string client_ip_;
  std::uint16_t client_port_ = 0;
  bool trusted_ = false;
  bool counted_client_ = false;

  InBuffer in_;
  HeadParser parser_;
  ChunkedDecoder body_chunked_;
  bool body_is_chunked_ = false;
  std::uint64_t body_left_ = 0;
  bool body_finished_ = true;
  int body_error_ = 400;
  ResponseHeadParser resp_;
  ChunkedDecoder resp_chunked_;
  std::string out_;
  std::string fwd_;
  std::string hsts_;
  std::string log_line_;
  Exchange x_;

  asio::steady_timer timer_;
  steady::time_point deadline_ = steady::time_point::max();
  bool expired_ = false;
  bool finished_ = false;
  tcp::socket* up_sock_ = nullptr;
  bool tunnel_dead_ = false;
  tcp::socket* tunnel_up_ = nullptr;  // while a tunnel runs
  bool websocket_ = false;
  std::string_view tunnel_end_;  // why the edge ends the tunnel (static text), "" if it does not
  std::optional<TunnelEnd> tunnel_by_;  // who ended it first, when not the edge
  FrameCursor to_client_;
  FrameCursor from_client_;
  std::string close_frame_;
  std::shared_ptr<void> end_token_;

  bool idle_ = false;
  bool held_ = false;
  ShardEntry* sandbox_ = nullptr;
  ConnectionHandle handle_;
  std::list<ConnectionHandle*>::iterator reg_;
};

}  // namespace

asio::awaitable<void> serve_connection(Worker& worker, const EdgeOptions& tuning,
                                       tcp::socket socket, bool https) {
  struct Count {
    ServerState& s;
    ~Count() {
      s.open_connections.fetch_sub(1, std::memory_order_relaxed);
      s.connection_closed();
    }
  } count{worker.state};
  Connection c(worker, tuning, std::move(socket), https);
  co_await c.run();
}

}  // namespace sandboxd::edge::detail
