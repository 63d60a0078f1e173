#include "cli/http_parse.h"

#include <algorithm>
#include <cctype>

namespace sandboxd::cli {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool token_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (std::isalnum(u)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

CliError malformed(std::string what) {
  return CliError::protocol("malformed answer from sandboxd: " + what);
}

}  // namespace

std::optional<std::string> ResponseHead::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return std::nullopt;
}

bool ResponseHead::chunked() const {
  bool chunked = false;
  for (const auto& [k, v] : headers) {
    if (k != "transfer-encoding") continue;
    std::string value = lower(v);
    std::size_t comma = value.rfind(',');
    std::string_view last =
        trim(comma == std::string::npos ? std::string_view(value)
                                        : std::string_view(value).substr(comma + 1));
    chunked = last == "chunked";
  }
  return chunked;
}

std::optional<std::uint64_t> ResponseHead::content_length(bool* bad) const {
  std::optional<std::uint64_t> found;
  *bad = false;
  for (const auto& [k, v] : headers) {
    if (k != "content-length") continue;
    std::string_view t = trim(v);
    if (t.empty() || t.size() > 19 ||
        !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      *bad = true;
      return std::nullopt;
    }
    std::uint64_t n = std::stoull(std::string(t));
    if (found && *found != n) {
      *bad = true;
      return std::nullopt;
    }
    found = n;
  }
  return found;
}

std::size_t find_head_end(std::string_view buffer) {
  for (std::size_t i = 0; i < buffer.size(); ++i) {
    if (buffer[i] != '\n') continue;
    if (i + 1 < buffer.size() && buffer[i + 1] == '\n') return i + 2;
    if (i + 2 < buffer.size() && buffer[i + 1] == '\r' && buffer[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

CliResult<ResponseHead> parse_response_head(std::string_view head) {
  ResponseHead h;
  std::vector<std::string_view> lines;
  std::size_t i = 0;
  bool ended = false;
  while (i < head.size()) {
    std::size_t nl = head.find('\n', i);
    if (nl == std::string_view::npos) break;
    std::string_view l = head.substr(i, nl - i);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    i = nl + 1;
    if (l.empty()) {
      ended = true;
      break;
    }
    lines.push_back(l);
  }
  if (lines.empty()) return malformed("no status line");
  if (!ended) return malformed("the head does not end in a blank line");
  std::string_view status = lines[0];
  // "HTTP/1.1 200 OK" (the reason may be empty, the space before it may be missing).
  if (status.size() < 12 || !status.starts_with("HTTP/1.") || status[8] != ' ' || status[7] < '0' ||
      status[7] > '9') {
    return malformed("bad status line");
  }
  h.version_minor = status[7] - '0';
  int code = 0;
  for (std::size_t k = 9; k < 12; ++k) {
    if (status[k] < '0' || status[k] > '9') return malformed("bad status code");
    code = code * 10 + (status[k] - '0');
  }
  if (code < 100 || (status.size() > 12 && status[12] != ' ')) return malformed("bad status code");
  h.status = code;
  h.reason = status.size() > 13 ? std::string(status.substr(13)) : "";
  for (std::size_t k = 1; k < lines.size(); ++k) {
    std::string_view l = lines[k];
    if (l.front() == ' ' || l.front() == '\t') return malformed("folded header line");
    std::size_t colon = l.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return malformed("header line without a name");
    std::string_view name = l.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), token_char)) return malformed("bad header name");
    h.headers.emplace_back(lower(name), std::string(trim(l.substr(colon + 1))));
  }
  return h;
}

CliStatus ChunkedDecoder::fail(std::string message) {
  state_ = State::failed;
  return malformed("chunked body: " + message);
}

CliStatus ChunkedDecoder::feed(std::string_view in, std::string& out) {
  std::size_t i = 0;
  while (i < in.size()) {
    switch (state_) {
      case State::failed:
        return malformed("chunked body: decoder already failed");
      case State::done:
        return {};
      case State::size_line:
      case State::trailer_line: {
        std::size_t nl = in.find('\n', i);
        std::size_t take = (nl == std::string_view::npos ? in.size() : nl) - i;
        if (line_.size() + take > kMaxChunkLine) return fail("line too long");
        line_.append(in.substr(i, take));
        if (nl == std::string_view::npos) return {};
        i = nl + 1;
        std::string_view l = line_;
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        if (state_ == State::trailer_line) {
          if (l.empty()) state_ = State::done;
          line_.clear();
          continue;
        }
        // chunk-size [; extensions]
        std::size_t semi = l.find(';');
        std::string_view size = trim(l.substr(0, semi));
        if (size.empty()) return fail("missing chunk size");
        if (size.size() > 15) return fail("chunk size too large");
        std::uint64_t n = 0;
        for (char c : size) {
          int d;
          if (c >= '0' && c <= '9')
            d = c - '0';
          else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
          else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
          else
            return fail("bad chunk size");
          n = n * 16 + static_cast<std::uint64_t>(d);
        }
        line_.clear();
        if (n == 0) {
          state_ = State::trailer_line;
        } else {
          remaining_ = n;
          state_ = State::data;
        }
        continue;
      }
      case State::data: {
        std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - i));
        out.append(in.substr(i, take));
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::data_cr;
        continue;
      }
      case State::data_cr:
        if (in[i] == '\r') {
          state_ = State::data_lf;
          ++i;
        } else if (in[i] == '\n') {
          state_ = State::size_line;
          ++i;
        } else {
          return fail("chunk data longer than its size");
        }
        continue;
      case State::data_lf:
        if (in[i] != '\n') return fail("chunk data longer than its size");
        state_ = State::size_line;
        ++i;
        continue;
    }
  }
  return {};
}

}  // namespace sandboxd::cli
