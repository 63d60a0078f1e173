// Incremental decoder and validator of a chunked request body (RFC 9112 §7.1, SPEC §3.3).
//
// `ChunkedDecoder` follows one chunked body through any split of the input into reads and
// hands the data back as spans of the caller's own bytes, without copying; the framing
// (sizes, extensions, CRLFs, trailers) is checked and dropped, as the upstream gets the body
// re-chunked without extensions or trailers (§3.7). Rejected: a chunk size that is not
// 1*HEXDIG (a sign, a space, an empty size) or longer than 16 digits, a chunk extension
// over 4 KiB, a chunk not followed by CRLF, bare LF or CR, and malformed trailer lines: all
// 400. A body above `max_body_bytes` is 413, a trailer section above `max_trailer_bytes` 431.
// It stops right after the final CRLF, so a pipelined request stays with the caller.
// One decoder serves one body at a time; `reset()` readies it for the next. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sandboxd::edge {

struct ChunkedLimits {
  std::size_t max_extension_bytes = 4 * 1024;  // fixed limit of SPEC §3.10
  std::size_t max_trailer_bytes = 64 * 1024;   // the trailer section, final CRLF included
  std::uint64_t max_body_bytes = 0;            // edge.limits.max_request_body; 0 = none
};

enum class ChunkStatus : std::uint8_t {
  need_more,  // every byte given was framing; read more
  data,       // `*data` holds body bytes
  done,       // the body ended; the next request starts at `in.data() + *consumed`
  error,
};

struct ChunkError {
  int status = 400;         // 400, 413 or 431
  std::string_view reason;  // static text
};

class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(const ChunkedLimits& limits = {}) : limits_(limits) {}

  // Decodes from the front of `in` and stops at the first data, at the end of the body, or
  // at an error. `*consumed` counts the bytes of `in` used (for `data`, up to the end of
  // `*data`, which points into `in`). Call again with the rest until `need_more` or `done`.
  // After `done` or `error`, further calls return the same status and consume nothing.
  ChunkStatus decode(std::string_view in, std::size_t* consumed, std::string_view* data);

  const ChunkError& error() const { return error_; }
  std::uint64_t body_bytes() const { return body_bytes_; }  // data bytes announced so far
  void reset();

 private:
  enum class State : std::uint8_t {
    size,
    extension,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer_start,
    trailer_name,
    trailer_value,
    trailer_lf,
    end_lf,
    done,
    failed,
  };

  ChunkStatus fail(int status, std::string_view reason);

  ChunkedLimits limits_;
  State state_ = State::size;
  ChunkError error_;
  std::uint64_t chunk_size_ = 0;  // the size being read, then what is left of the chunk
  std::size_t size_digits_ = 0;
  std::size_t extension_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::uint64_t body_bytes_ = 0;
};

}  // namespace sandboxd::edge
