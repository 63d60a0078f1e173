#include "edge/request_head.h"

#include "http_syntax.h"

#include <llhttp.h>

#include <algorithm>
#include <array>
#include <string>

// Two parsers look at every head byte, each doing what it does best:
//  - a byte scanner (here) owns the line structure: CRLF only, no obs-fold, no whitespace
//    before ':', token field names, no NUL/CTL in values, the request line's exact shape,
//    and the size limits. The non-strict llhttp build accepts bare LF, obs-fold, "Host :"
//    and empty field names, so these cannot be left to it.
//  - llhttp (no lenient flag) owns the method table, URL characters, and Content-Length /
//    Transfer-Encoding framing; the semantic checks at the end repeat the framing rules so
//    that they hold whichever way llhttp was built.
// llhttp only ever sees bytes the scanner accepted: when the scanner rejects byte i, llhttp
// first gets the bytes before i. The earliest fault in the input therefore decides the
// answer, however the input was split into reads.

namespace sandboxd::edge {

namespace {

using detail::iequals;

constexpr std::uint64_t kMaxContentLength = std::uint64_t{1} << 53;
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

enum class Scan : std::uint8_t {
  start,       // before the request line; empty lines are skipped
  start_lf,    // the CR of a leading empty line
  line,        // in the request line
  line_lf,     // the CR ending the request line
  line_start,  // the first byte of a field line or of the final empty line
  name,        // in a field name
  value,       // after the colon
  value_lf,    // the CR ending a field line
  end_lf,      // the CR of the final empty line
};

enum class FieldKind : std::uint8_t {
  other,
  host,
  content_length,
  transfer_encoding,
  connection,
  upgrade,
  expect,
};

FieldKind classify(std::string_view name) {
  switch (name.size()) {
    case 4:
      return iequals(name, "host") ? FieldKind::host : FieldKind::other;
    case 6:
      return iequals(name, "expect") ? FieldKind::expect : FieldKind::other;
    case 7:
      return iequals(name, "upgrade") ? FieldKind::upgrade : FieldKind::other;
    case 10:
      return iequals(name, "connection") ? FieldKind::connection : FieldKind::other;
    case 14:
      return iequals(name, "content-length") ? FieldKind::content_length : FieldKind::other;
    case 17:
      return iequals(name, "transfer-encoding") ? FieldKind::transfer_encoding : FieldKind::other;
    default:
      return FieldKind::other;
  }
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr std::array<bool, 256> make_value_table() {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x100; ++c) t[static_cast<std::size_t>(c)] = c != 0x7f;
  t['\t'] = true;
  return t;
}

// Field-value bytes: VCHAR, obs-text, SP and HTAB (RFC 9110 §5.5).
constexpr std::array<bool, 256> kValueByte = make_value_table();

bool is_value_byte(unsigned char c) { return kValueByte[c]; }

// 1*DIGIT up to 2^53; nullopt when not digits, `kMaxContentLength + 1` when above.
std::optional<std::uint64_t> parse_content_length(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (!is_digit(c)) return std::nullopt;
    if (value <= kMaxContentLength) value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

struct Span {
  std::size_t offset = 0;
  std::size_t length = 0;
};

}  // namespace

std::optional<std::string_view> RequestHead::field(std::string_view name) const {
  for (const HeaderField& f : headers) {
    if (detail::iequals(f.name, name)) return f.value;
  }
  return std::nullopt;
}

struct HeadParser::Impl {
  struct FieldSpans {
    Span name;
    Span value;
  };

  // What the llhttp callbacks learn about the fields, reset per head.
  struct Facts {
    std::size_t field_start = 0;  // where the current field name starts in `store`
    FieldKind kind = FieldKind::other;
    std::size_t host_count = 0;
    std::size_t host_index = kNone;
    std::size_t content_length_count = 0;
    std::size_t content_length_index = kNone;
    std::size_t transfer_encoding_count = 0;
    std::size_t chunked_count = 0;
    bool chunked_last = false;
    bool other_coding = false;
    std::size_t upgrade_index = kNone;
    bool connection_close = false;
    bool connection_keep_alive = false;
    bool connection_upgrade = false;
    bool expect_seen = false;
    bool expect_other = false;
  };

  explicit Impl(const HeadLimits& l) : limits(l) { start(); }

  HeadLimits limits;
  llhttp_t http{};
  RequestHead head;
  std::string store;  // request line, constructed origin target, then field names and values
  std::vector<FieldSpans> fields;

  ParseStatus status = ParseStatus::need_more;
  HeadError error;
  Scan scan = Scan::start;
  std::size_t head_bytes = 0;
  std::size_t field_lines = 0;
  bool started = false;

  Span method, target, origin, authority;
  HttpVersion version = HttpVersion::http11;
  bool absolute_form = false;
  Facts facts;

  void start() {
    llhttp_init(&http, HTTP_REQUEST, &settings());
    http.data = this;
    store.clear();
    fields.clear();
    std::vector<HeaderField> keep = std::move(head.headers);
    keep.clear();
    head = RequestHead{};
    head.headers = std::move(keep);
    status = ParseStatus::need_more;
    error = HeadError{};
    scan = Scan::start;
    head_bytes = 0;
    field_lines = 0;
    started = false;
    method = target = origin = authority = Span{};
    version = HttpVersion::http11;
    absolute_form = false;
    facts = Facts{};
  }

  std::string_view view(Span s) const { return std::string_view(store).substr(s.offset, s.length); }

  bool fail(int code, std::string_view reason) {
    status = ParseStatus::error;
    error = HeadError{code, reason};
    return false;
  }

  // ---- llhttp ----

  static Impl& self(llhttp_t* p) { return *static_cast<Impl*>(p->data); }

  static int on_field(llhttp_t* p, const char* at, std::size_t len) {
    self(p).store.append(at, len);
    return 0;
  }

  static int on_field_complete(llhttp_t* p) {
    Impl& s = self(p);
    Span name{s.facts.field_start, s.store.size() - s.facts.field_start};
    s.facts.kind = classify(s.view(name));
    std::size_t index = s.fields.size();
    switch (s.facts.kind) {
      case FieldKind::host:
        if (s.facts.host_count++ == 0) s.facts.host_index = index;
        break;
      case FieldKind::content_length:
        if (s.facts.content_length_count++ == 0) s.facts.content_length_index = index;
        break;
      case FieldKind::transfer_encoding:
        ++s.facts.transfer_encoding_count;
        break;
      case FieldKind::upgrade:
        if (s.facts.upgrade_index == kNone) s.facts.upgrade_index = index;
        break;
      case FieldKind::expect:
        s.facts.expect_seen = true;
        break;
      case FieldKind::connection:
      case FieldKind::other:
        break;
    }
    s.fields.push_back(FieldSpans{name, Span{s.store.size(), 0}});
    return 0;
  }

  static int on_value(llhttp_t* p, const char* at, std::size_t len) {
    self(p).store.append(at, len);
    return 0;
  }

  static int on_value_complete(llhttp_t* p) {
    Impl& s = self(p);
    Span& value = s.fields.back().value;
    value.length = s.store.size() - value.offset;
    std::string_view raw = s.view(value);
    std::string_view trimmed = detail::trim_ows(raw);
    value.offset += static_cast<std::size_t>(trimmed.data() - raw.data());
    value.length = trimmed.size();
    s.note_value(trimmed);
    s.facts.field_start = s.store.size();
    return 0;
  }

  static int on_headers_complete(llhttp_t*) { return HPE_PAUSED; }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t kSettings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_header_field = &on_field;
      s.on_header_field_complete = &on_field_complete;
      s.on_header_value = &on_value;
      s.on_header_value_complete = &on_value_complete;
      s.on_headers_complete = &on_headers_complete;
      return s;
    }();
    return kSettings;
  }

  void note_value(std::string_view value) {
    switch (facts.kind) {
      case FieldKind::transfer_encoding:
        detail::for_each_list_element(value, [&](std::string_view coding) {
          if (iequals(coding, "chunked")) {
            ++facts.chunked_count;
            facts.chunked_last = true;
          } else {
            facts.other_coding = true;
            facts.chunked_last = false;
          }
          return true;
        });
        // An empty field leaves chunked_last as it was; an empty list overall has none.
        break;
      case FieldKind::connection:
        detail::for_each_list_element(value, [&](std::string_view option) {
          if (iequals(option, "close")) facts.connection_close = true;
          if (iequals(option, "keep-alive")) facts.connection_keep_alive = true;
          if (iequals(option, "upgrade")) facts.connection_upgrade = true;
          return true;
        });
        break;
      case FieldKind::expect: {
        bool any = false;
        detail::for_each_list_element(value, [&](std::string_view e) {
          any = true;
          if (!iequals(e, "100-continue")) facts.expect_other = true;
          return true;
        });
        if (!any) facts.expect_other = true;
        break;
      }
      case FieldKind::host:
      case FieldKind::content_length:
      case FieldKind::upgrade:
      case FieldKind::other:
        break;
    }
  }

  // Gives header bytes to llhttp; false (with the error set) when llhttp rejects them.
  // `at_end`: these bytes finish the head, so llhttp must stop at on_headers_complete.
  bool give_llhttp(const char* data, std::size_t len, bool at_end) {
    if (len == 0 && !at_end) return true;
    llhttp_errno_t err = len == 0 ? HPE_OK : llhttp_execute(&http, data, len);
    if (err == HPE_OK) return !at_end || fail(400, "malformed head");
    if (err == HPE_PAUSED) return at_end || fail(400, "malformed head");
    switch (err) {
      case HPE_UNEXPECTED_CONTENT_LENGTH:
        return fail(400, facts.transfer_encoding_count > 0
                             ? "both Content-Length and Transfer-Encoding"
                             : "several Content-Length fields");
      case HPE_INVALID_CONTENT_LENGTH:
        return fail(400,
                    std::string_view(llhttp_get_error_reason(&http)) == "Content-Length overflow"
                        ? "Content-Length above 2^53"
                        : "bad Content-Length");
      case HPE_INVALID_TRANSFER_ENCODING:  // something after "chunked"
        return fail(400, "bad Transfer-Encoding");
      case HPE_INVALID_HEADER_TOKEN:
        return fail(400, "bad field");
      default:
        return fail(400, "malformed head");
    }
  }

  // ---- the request line ----

  bool finish_request_line() {
    const std::string_view line(store);
    std::size_t sp1 = 0;
    while (sp1 < line.size() && detail::is_tchar(static_cast<unsigned char>(line[sp1]))) ++sp1;
    if (sp1 == 0 || sp1 == line.size() || line[sp1] != ' ') return fail(400, "bad request line");
    const std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return fail(400, "bad request line");
    const std::string_view version_text = line.substr(sp2 + 1);
    if (version_text.size() != 8 || version_text.substr(0, 5) != "HTTP/" ||
        !is_digit(version_text[5]) || version_text[6] != '.' || !is_digit(version_text[7])) {
      return fail(400, "bad request line");
    }
    method = Span{0, sp1};
    target = Span{sp1 + 1, sp2 - sp1 - 1};
    const std::string_view m = view(method);
    const std::string_view t = view(target);
    for (char c : t) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x21 || u > 0x7e) return fail(400, "bad character in the request target");
    }
    if (m == "PRI") {
      if (t == "*" && version_text == "HTTP/2.0") return fail(0, "HTTP/2 preface");
      return fail(400, "PRI outside the HTTP/2 preface");
    }
    if (version_text == "HTTP/1.1") {
      version = HttpVersion::http11;
    } else if (version_text == "HTTP/1.0") {
      version = HttpVersion::http10;
    } else {
      return fail(505, "HTTP version not supported");
    }
    if (m == "CONNECT") return fail(405, "CONNECT is not allowed");

    llhttp_errno_t err = llhttp_execute(&http, line.data(), line.size());
    if (err == HPE_OK) err = llhttp_execute(&http, "\r\n", 2);
    if (err != HPE_OK) {
      if (err == HPE_INVALID_METHOD || err == HPE_INVALID_CONSTANT) {
        return fail(501, "unknown method");
      }
      if (err == HPE_INVALID_URL) return fail(400, "bad request target");
      return fail(400, "bad request line");
    }
    if (!check_target_form()) return false;
    facts.field_start = store.size();
    return true;
  }

  bool check_target_form() {
    const std::string_view t = view(target);
    origin = target;
    if (t.front() == '/') return true;
    if (t == "*") return view(method) == "OPTIONS" || fail(400, "asterisk-form outside OPTIONS");
    std::size_t scheme_end;
    if (detail::istarts_with(t, "http://")) {
      scheme_end = 7;
    } else if (detail::istarts_with(t, "https://")) {
      scheme_end = 8;
    } else {
      return fail(400, "bad request target");
    }
    const std::size_t auth_end = t.find_first_of("/?#", scheme_end);
    const std::size_t auth_len =
        (auth_end == std::string_view::npos ? t.size() : auth_end) - scheme_end;
    const std::string_view auth = t.substr(scheme_end, auth_len);
    if (auth.find('@') != std::string_view::npos) return fail(400, "userinfo in request target");
    if (auth.empty() || detail::check_authority(auth) != detail::AuthorityProblem::none) {
      return fail(400, "bad authority in request target");
    }
    absolute_form = true;
    authority = Span{target.offset + scheme_end, auth_len};
    const std::size_t rest_offset = authority.offset + auth_len;
    const std::size_t rest_len = target.offset + target.length - rest_offset;
    if (rest_len > 0 && store[rest_offset] == '/') {
      origin = Span{rest_offset, rest_len};
    } else {
      // "http://h" or "http://h?q" become "/" and "/?q": built after the line in `store`.
      origin = Span{store.size(), rest_len + 1};
      store.push_back('/');
      store.append(store, rest_offset, rest_len);
    }
    return true;
  }

  // ---- the end of the head ----

  bool finish_head(const char* data, std::size_t len) {
    if (!give_llhttp(data, len, true)) return false;
    head.method = view(method);
    head.target = view(target);
    head.origin_target = view(origin);
    head.version = version;
    head.absolute_form = absolute_form;
    head.authority = view(authority);
    head.headers.clear();
    for (const FieldSpans& f : fields) head.headers.push_back({view(f.name), view(f.value)});
    head.has_host_header = facts.host_count > 0;
    head.host_header = head.has_host_header ? head.headers[facts.host_index].value : "";
    head.host = absolute_form ? head.authority : head.host_header;
    head.head_bytes = head_bytes;
    const bool http11 = version == HttpVersion::http11;

    if (http11 && facts.host_count == 0) return fail(400, "missing Host");
    if (facts.host_count > 1) return fail(400, "several Host fields");
    if (head.has_host_header) {
      switch (detail::check_authority(head.host_header)) {
        case detail::AuthorityProblem::none:
          break;
        case detail::AuthorityProblem::bad_character:
          return fail(400, "bad character in Host");
        case detail::AuthorityProblem::bad_port:
          return fail(400, "bad port in Host");
        case detail::AuthorityProblem::bad_syntax:
          return fail(400, "bad Host");
      }
    }

    if (facts.content_length_count > 0 && facts.transfer_encoding_count > 0) {
      return fail(400, "both Content-Length and Transfer-Encoding");
    }
    if (facts.content_length_count > 1) return fail(400, "several Content-Length fields");
    head.content_length.reset();
    if (facts.content_length_count == 1) {
      auto length = parse_content_length(head.headers[facts.content_length_index].value);
      if (!length) return fail(400, "bad Content-Length");
      if (*length > kMaxContentLength) return fail(400, "Content-Length above 2^53");
      head.content_length = *length;
    }
    head.chunked = false;
    if (facts.transfer_encoding_count > 0) {
      if (!http11) return fail(400, "Transfer-Encoding in HTTP/1.0");
      if (!facts.chunked_last) return fail(400, "Transfer-Encoding without chunked last");
      if (facts.chunked_count > 1) return fail(400, "chunked applied more than once");
      if (facts.other_coding) return fail(501, "transfer coding other than chunked");
      head.chunked = true;
    }
    head.expect_continue = false;
    if (http11 && facts.expect_seen) {
      if (facts.expect_other) return fail(417, "Expect other than 100-continue");
      head.expect_continue = true;
    }
    if (limits.max_request_body > 0 && head.content_length.value_or(0) > limits.max_request_body) {
      return fail(413, "body over max_request_body");
    }

    head.keep_alive =
        http11 ? !facts.connection_close : facts.connection_keep_alive && !facts.connection_close;
    head.upgrade_protocol =
        facts.upgrade_index == kNone ? "" : head.headers[facts.upgrade_index].value;
    // RFC 9110 §7.8: an Upgrade in an HTTP/1.0 request is ignored.
    const bool upgrading = http11 && facts.connection_upgrade && facts.upgrade_index != kNone;
    head.h2c_upgrade = upgrading && iequals(head.upgrade_protocol, "h2c");
    head.upgrade = upgrading && !head.h2c_upgrade;
    status = ParseStatus::head_complete;
    return true;
  }
};

HeadParser::HeadParser(const HeadLimits& limits) : impl_(std::make_unique<Impl>(limits)) {}
HeadParser::~HeadParser() = default;
HeadParser::HeadParser(HeadParser&&) noexcept = default;
HeadParser& HeadParser::operator=(HeadParser&&) noexcept = default;

ParseStatus HeadParser::status() const { return impl_->status; }
const RequestHead& HeadParser::head() const { return impl_->head; }
const HeadError& HeadParser::error() const { return impl_->error; }
bool HeadParser::started() const { return impl_->started; }
void HeadParser::reset() { impl_->start(); }

ParseStatus HeadParser::feed(std::string_view bytes, std::size_t* consumed) {
  Impl& s = *impl_;
  *consumed = 0;
  if (s.status != ParseStatus::need_more) return s.status;
  if (!bytes.empty()) s.started = true;
  const char* p = bytes.data();
  const std::size_t n = bytes.size();
  // Byte i is head byte number `base + i + 1`; from index `room` on, the head is too large.
  const std::size_t base = s.head_bytes;
  const std::size_t room = s.limits.max_header_bytes > base ? s.limits.max_header_bytes - base : 0;
  const std::size_t stop = std::min(n, room);  // the fast paths run up to here
  // p[pending, i) are field bytes llhttp has not seen yet. The request line is given to
  // llhttp whole, from `store`, once it is complete; until then nothing is pending.
  std::size_t pending = s.scan >= Scan::line_start ? 0 : n;
  std::size_t i = 0;
  auto flush = [&](std::size_t end) {
    return pending >= end || s.give_llhttp(p + pending, end - pending, false);
  };

  // Rejects byte i, after llhttp had its say on the bytes before it.
  auto reject = [&](int code, std::string_view reason) {
    if (flush(i)) s.fail(code, reason);
    s.head_bytes = base + i + 1;
    *consumed = i + 1;
    return ParseStatus::error;
  };

  for (; i < n; ++i) {
    if (i >= room) {
      if (s.scan == Scan::line || s.scan == Scan::line_lf) {
        return reject(414, "request line too long");
      }
      return reject(431, "head too large");
    }
    const auto c = static_cast<unsigned char>(p[i]);
    switch (s.scan) {
      case Scan::start:
        if (c == '\r') {
          s.scan = Scan::start_lf;
          break;
        }
        s.scan = Scan::line;
        [[fallthrough]];
      case Scan::line: {
        if (c == '\r') {
          s.scan = Scan::line_lf;
          break;
        }
        if (c == '\n') return reject(400, "bare LF");
        // Take the run of line bytes at once; the line's own checks come at its end.
        std::size_t j = i + 1;
        while (j < stop && p[j] != '\r' && p[j] != '\n') ++j;
        const std::size_t line_room = s.limits.max_request_line_bytes > s.store.size()
                                          ? s.limits.max_request_line_bytes - s.store.size()
                                          : 0;
        if (j - i > line_room) {
          i += line_room;
          return reject(414, "request line too long");
        }
        s.store.append(p + i, j - i);
        i = j - 1;
        break;
      }
      case Scan::start_lf:
      case Scan::line_lf:
      case Scan::value_lf:
      case Scan::end_lf:
        if (c != '\n') return reject(400, "CR without LF");
        if (s.scan == Scan::start_lf) {
          s.scan = Scan::start;
        } else if (s.scan == Scan::line_lf) {
          if (!s.finish_request_line()) {
            s.head_bytes = base + i + 1;
            *consumed = i + 1;
            return ParseStatus::error;
          }
          s.scan = Scan::line_start;
          pending = i + 1;
        } else if (s.scan == Scan::value_lf) {
          s.scan = Scan::line_start;
        } else {
          s.head_bytes = base + i + 1;
          *consumed = i + 1;
          s.finish_head(p + pending, i + 1 - pending);
          return s.status;
        }
        break;
      case Scan::line_start:
        if (c == '\r') {
          s.scan = Scan::end_lf;
          break;
        }
        if (c == ' ' || c == '\t') return reject(400, "obs-fold");
        if (c == '\n') return reject(400, "bare LF");
        if (++s.field_lines > s.limits.max_header_fields) {
          return reject(431, "too many header fields");
        }
        if (c == ':') return reject(400, "empty field name");
        if (!detail::is_tchar(c)) return reject(400, "bad character in a field name");
        s.scan = Scan::name;
        break;
      case Scan::name:
        if (c == ':') {
          s.scan = Scan::value;
          break;
        }
        if (c == ' ' || c == '\t') return reject(400, "whitespace before ':'");
        if (c == '\r' || c == '\n') return reject(400, "field line without ':'");
        if (!detail::is_tchar(c)) return reject(400, "bad character in a field name");
        while (i + 1 < stop && detail::is_tchar(static_cast<unsigned char>(p[i + 1]))) ++i;
        break;
      case Scan::value:
        if (is_value_byte(c)) {
          while (i + 1 < stop && is_value_byte(static_cast<unsigned char>(p[i + 1]))) ++i;
          break;
        }
        if (c == '\r') {
          s.scan = Scan::value_lf;
          break;
        }
        if (c == '\n') return reject(400, "bare LF");
        if (c == 0) return reject(400, "NUL in a field value");
        return reject(400, "control character in a field value");
    }
  }
  if (!flush(n)) {
    s.head_bytes = base + n;
    *consumed = n;
    return ParseStatus::error;
  }
  s.head_bytes = base + n;
  *consumed = n;
  return ParseStatus::need_more;
}

}  // namespace sandboxd::edge
