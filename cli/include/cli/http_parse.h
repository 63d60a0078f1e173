// The parsing half of sandboxctl's HTTP/1.1 client: response heads and chunked bodies.
//
// Both parsers take whatever bytes the server sent, however they are split, and never crash,
// loop or allocate without bound on hostile input: a head is limited in size by the caller
// (it passes at most the bytes it is willing to buffer), a chunk-size line is at most
// `kMaxChunkLine` bytes and a chunk size must fit 63 bits. Errors are messages for the
// user ("malformed chunked body: …"). Not thread-safe; one decoder per response.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/errors.h"

namespace sandboxd::cli {

struct ResponseHead {
  int version_minor = 1;  // HTTP/1.<minor>
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased

  // The first value of a header (name in lower case).
  std::optional<std::string> header(std::string_view lower_name) const;
  bool chunked() const;  // Transfer-Encoding ends in "chunked"
  // Content-Length when present and valid; `bad` set when present but malformed or
  // conflicting (several different values).
  std::optional<std::uint64_t> content_length(bool* bad) const;
};

// Where the head ends in `buffer`: the offset just past "\r\n\r\n" (or "\n\n"), or npos.
std::size_t find_head_end(std::string_view buffer);

// Parses a complete head (status line and header lines, up to and including the blank
// line). Obsolete line folding is refused.
CliResult<ResponseHead> parse_response_head(std::string_view head);

class ChunkedDecoder {
 public:
  static constexpr std::size_t kMaxChunkLine = 4096;

  // Consumes all of `in`, appending decoded payload to `out`. Bytes after the final chunk
  // and its trailers are ignored. After an error the decoder stays failed.
  CliStatus feed(std::string_view in, std::string& out);
  bool done() const { return state_ == State::done; }

 private:
  enum class State { size_line, data, data_cr, data_lf, trailer_line, done, failed };
  CliStatus fail(std::string message);

  State state_ = State::size_line;
  std::string line_;
  std::uint64_t remaining_ = 0;
};

}  // namespace sandboxd::cli
