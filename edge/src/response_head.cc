#include "response_head.h"

#include "http_syntax.h"

#include <array>
#include <charconv>

namespace sandboxd::edge::detail {

namespace {

constexpr std::uint64_t kMaxContentLength = std::uint64_t{1} << 53;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_value_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

bool is_hop_by_hop(std::string_view name) {
  switch (name.size()) {
    case 2:
      return iequals(name, "te");
    case 7:
      return iequals(name, "trailer") || iequals(name, "upgrade");
    case 10:
      return iequals(name, "connection") || iequals(name, "keep-alive");
    case 16:
      return iequals(name, "proxy-connection");
    case 17:
      return iequals(name, "transfer-encoding");
    case 18:
      return iequals(name, "proxy-authenticate");
    case 19:
      return iequals(name, "proxy-authorization");
    default:
      return false;
  }
}


}  // namespace

BodyFraming ResponseHead::framing(bool head_request) const {
  if (head_request || (status >= 100 && status < 200) || status == 204 || status == 304) {
    return BodyFraming::none;
  }
  if (chunked) return BodyFraming::chunked;
  if (content_length) return BodyFraming::content_length;
  return BodyFraming::until_close;
}

void ResponseHeadParser::reset() {
  store_.clear();
  std::vector<HeaderField> keep = std::move(head_.headers);
  keep.clear();
  head_ = ResponseHead{};
  head_.headers = std::move(keep);
  status_ = ParseStatus::need_more;
  error_ = {};
}

ParseStatus ResponseHeadParser::fail(std::string_view why) {
  status_ = ParseStatus::error;
  error_ = why;
  return status_;
}

bool ResponseHeadParser::reject(std::string_view why) {
  fail(why);
  return false;
}

ParseStatus ResponseHeadParser::feed(std::string_view bytes, std::size_t* consumed) {
  *consumed = 0;
  if (status_ != ParseStatus::need_more) return status_;
  const std::size_t old = store_.size();
  const std::size_t room = max_bytes_ > old ? max_bytes_ - old : 0;
  const std::size_t take = std::min(room, bytes.size());
  store_.append(bytes.data(), take);
  const std::size_t from = old >= 3 ? old - 3 : 0;
  const std::size_t end = store_.find("\r\n\r\n", from);
  if (end == std::string::npos) {
    *consumed = take;
    if (store_.size() >= max_bytes_) return fail("response head too large");
    return status_;
  }
  const std::size_t head_len = end + 4;
  *consumed = head_len - old;
  store_.resize(head_len);
  head_.head_bytes = head_len;
  if (!parse()) return status_;
  status_ = ParseStatus::head_complete;
  return status_;
}

bool ResponseHeadParser::parse() {
  const std::string_view all(store_);
  // Bare CR or LF anywhere: every LF must follow a CR and every CR precede an LF.
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i] == '\n' && (i == 0 || all[i - 1] != '\r')) return reject("bare LF");
    if (all[i] == '\r' && (i + 1 == all.size() || all[i + 1] != '\n')) return reject("bare CR");
  }
  std::size_t eol = all.find("\r\n");
  const std::string_view line = all.substr(0, eol);
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' ||
      !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) ||
      (line.size() > 12 && line[12] != ' ')) {
    return reject("bad status line");
  }
  if (line[7] == '1') {
    head_.version = HttpVersion::http11;
  } else if (line[7] == '0') {
    head_.version = HttpVersion::http10;
  } else {
    return reject("bad version");
  }
  head_.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (head_.status < 100) return reject("bad status");
  head_.reason = line.size() > 13 ? line.substr(13) : std::string_view();
  for (char c : head_.reason) {
    if (!is_value_byte(static_cast<unsigned char>(c))) return reject("bad reason");
  }

  std::size_t content_lengths = 0;
  std::size_t transfer_encodings = 0;
  bool chunked_last = false;
  bool close = false;
  bool keep_alive = false;
  std::string_view content_length;
  std::size_t pos = eol + 2;
  while (pos < all.size()) {
    eol = all.find("\r\n", pos);
    const std::string_view fl = all.substr(pos, eol - pos);
    pos = eol + 2;
    if (fl.empty()) break;
    if (head_.headers.size() >= max_fields_) return reject("too many fields");
    if (fl[0] == ' ' || fl[0] == '\t') return reject("obs-fold");
    const std::size_t colon = fl.find(':');
    if (colon == std::string_view::npos || colon == 0) return reject("bad field");
    const std::string_view name = fl.substr(0, colon);
    for (char c : name) {
      if (!is_tchar(static_cast<unsigned char>(c))) return reject("bad field name");
    }
    const std::string_view value = trim_ows(fl.substr(colon + 1));
    for (char c : value) {
      if (!is_value_byte(static_cast<unsigned char>(c))) return reject("bad field value");
    }
    head_.headers.push_back({name, value});
    if (iequals(name, "content-length")) {
      ++content_lengths;
      content_length = value;
    } else if (iequals(name, "transfer-encoding")) {
      ++transfer_encodings;
      for_each_list_element(value, [&](std::string_view coding) {
        chunked_last = iequals(coding, "chunked");
        return true;
      });
    } else if (iequals(name, "connection")) {
      for_each_list_element(value, [&](std::string_view option) {
        if (iequals(option, "close")) close = true;
        if (iequals(option, "keep-alive")) keep_alive = true;
        return true;
      });
    }
  }
  if (content_lengths > 0 && transfer_encodings > 0) {
    return reject("both Content-Length and Transfer-Encoding");
  }
  if (content_lengths > 1) return reject("several Content-Length fields");
  if (content_lengths == 1) {
    if (content_length.empty()) return reject("bad Content-Length");
    std::uint64_t n = 0;
    for (char c : content_length) {
      if (!is_digit(c)) return reject("bad Content-Length");
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
      if (n > kMaxContentLength) return reject("Content-Length too large");
    }
    head_.content_length = n;
  }
  head_.chunked = transfer_encodings > 0 && chunked_last;
  const bool http11 = head_.version == HttpVersion::http11;
  head_.keep_alive = http11 ? !close : keep_alive && !close;
  // A body that ends at EOF (RFC 9112 §6.3: Transfer-Encoding without chunked last, or no
  // framing at all) cannot leave the connection reusable.
  if (transfer_encodings > 0 && !chunked_last) head_.keep_alive = false;
  return true;
}

void build_client_response_head(const ResponseHead& head, const ClientResponseContext& ctx,
                                std::string& out) {
  out.clear();
  out.append("HTTP/1.1 ");
  char status[4] = {static_cast<char>('0' + head.status / 100),
                    static_cast<char>('0' + head.status / 10 % 10),
                    static_cast<char>('0' + head.status % 10), ' '};
  out.append(status, 4);
  out.append(head.reason);
  out.append("\r\n");

  bool extra_options = false;
  for (const HeaderField& f : head.headers) {
    if (!iequals(f.name, "connection")) continue;
    for_each_list_element(f.value, [&](std::string_view option) {
      extra_options = !iequals(option, "close") && !iequals(option, "keep-alive") &&
                      !iequals(option, "upgrade");
      return !extra_options;
    });
    if (extra_options) break;
  }
  const bool keep_length =
      ctx.framing == BodyFraming::content_length || ctx.framing == BodyFraming::none;
  bool has_hsts = false;
  for (const HeaderField& f : head.headers) {
    if (ctx.tunnel && iequals(f.name, "upgrade")) {
      append_field(out, f.name, f.value);
      continue;
    }
    if (is_hop_by_hop(f.name)) continue;
    if (iequals(f.name, "content-length")) {
      if (keep_length) append_field(out, f.name, f.value);
      continue;
    }
    if (extra_options && named_in_connection(head, f.name)) continue;
    if (iequals(f.name, "strict-transport-security")) has_hsts = true;
    append_field(out, f.name, f.value);
  }
  if (!ctx.hsts.empty() && !has_hsts) append_field(out, "Strict-Transport-Security", ctx.hsts);
  if (!ctx.set_cookie.empty()) append_field(out, "Set-Cookie", ctx.set_cookie);
  if (!ctx.wake.empty()) append_field(out, "X-Sandbox-Wake", ctx.wake);
  if (ctx.framing == BodyFraming::chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (ctx.tunnel) {
    out.append("Connection: Upgrade\r\n");
  } else if (ctx.close) {
    out.append("Connection: close\r\n");
  } else if (ctx.http10_keep_alive) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

}  // namespace sandboxd::edge::detail
