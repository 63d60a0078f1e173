#include "edge/chunked.h"

#include "http_syntax.h"

namespace sandboxd::edge {

namespace {

constexpr std::size_t kMaxSizeDigits = 16;

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

}  // namespace

void ChunkedDecoder::reset() {
  state_ = State::size;
  error_ = ChunkError{};
  chunk_size_ = 0;
  size_digits_ = 0;
  extension_bytes_ = 0;
  trailer_bytes_ = 0;
  body_bytes_ = 0;
}

ChunkStatus ChunkedDecoder::fail(int status, std::string_view reason) {
  state_ = State::failed;
  error_ = ChunkError{status, reason};
  return ChunkStatus::error;
}

ChunkStatus ChunkedDecoder::decode(std::string_view in, std::size_t* consumed,
                                   std::string_view* data) {
  *consumed = 0;
  if (state_ == State::done) return ChunkStatus::done;
  if (state_ == State::failed) return ChunkStatus::error;
  const std::size_t n = in.size();
  std::size_t i = 0;
  auto reject = [&](int status, std::string_view reason) {
    *consumed = i + 1;
    return fail(status, reason);
  };
  for (; i < n; ++i) {
    if (state_ == State::data) {
      const std::uint64_t available = n - i;
      const std::size_t take =
          static_cast<std::size_t>(chunk_size_ < available ? chunk_size_ : available);
      *data = in.substr(i, take);
      chunk_size_ -= take;
      if (chunk_size_ == 0) state_ = State::data_cr;
      *consumed = i + take;
      return ChunkStatus::data;
    }
    const auto c = static_cast<unsigned char>(in[i]);
    if (state_ >= State::trailer_start && ++trailer_bytes_ > limits_.max_trailer_bytes) {
      return reject(431, "trailer section too large");
    }
    switch (state_) {
      case State::size: {
        const int v = hex_value(c);
        if (v >= 0) {
          if (++size_digits_ > kMaxSizeDigits) return reject(400, "chunk size over 16 digits");
          chunk_size_ = (chunk_size_ << 4) | static_cast<std::uint64_t>(v);
          break;
        }
        if (size_digits_ == 0) return reject(400, "bad chunk size");
        if (c == ';') {
          extension_bytes_ = 1;
          state_ = State::extension;
        } else if (c == '\r') {
          state_ = State::size_lf;
        } else {
          return reject(400, "bad chunk size");
        }
        break;
      }
      case State::extension:
        if (c == '\r') {
          state_ = State::size_lf;
          break;
        }
        if (++extension_bytes_ > limits_.max_extension_bytes) {
          return reject(400, "chunk extension over 4 KiB");
        }
        if (c == '\n') return reject(400, "bare LF");
        if (is_ctl(c)) return reject(400, "bad chunk extension");
        break;
      case State::size_lf:
        if (c != '\n') return reject(400, "CR without LF");
        if (limits_.max_body_bytes > 0 && chunk_size_ > limits_.max_body_bytes - body_bytes_) {
          return reject(413, "body over max_request_body");
        }
        body_bytes_ += chunk_size_;
        size_digits_ = 0;
        state_ = chunk_size_ == 0 ? State::trailer_start : State::data;
        break;
      case State::data_cr:
        if (c != '\r') return reject(400, "missing CRLF after chunk data");
        state_ = State::data_lf;
        break;
      case State::data_lf:
        if (c != '\n') return reject(400, "missing CRLF after chunk data");
        state_ = State::size;
        break;
      case State::trailer_start:
        if (c == '\r') {
          state_ = State::end_lf;
          break;
        }
        if (c == ' ' || c == '\t') return reject(400, "obs-fold");
        if (c == ':') return reject(400, "empty field name");
        if (!detail::is_tchar(c)) return reject(400, "bad trailer field");
        state_ = State::trailer_name;
        break;
      case State::trailer_name:
        if (c == ':') {
          state_ = State::trailer_value;
          break;
        }
        if (!detail::is_tchar(c)) return reject(400, "bad trailer field");
        break;
      case State::trailer_value:
        if (c == '\r') {
          state_ = State::trailer_lf;
          break;
        }
        if (c == '\n') return reject(400, "bare LF");
        if (is_ctl(c)) return reject(400, "bad trailer field");
        break;
      case State::trailer_lf:
      case State::end_lf:
        if (c != '\n') return reject(400, "CR without LF");
        if (state_ == State::end_lf) {
          state_ = State::done;
          *consumed = i + 1;
          return ChunkStatus::done;
        }
        state_ = State::trailer_start;
        break;
      case State::data:
      case State::done:
      case State::failed:
        break;  // handled above
    }
  }
  *consumed = n;
  return ChunkStatus::need_more;
}

}  // namespace sandboxd::edge
