// Streaming gzip compression (RFC 1952) for `GET …/export?gzip=true` (SPEC §2.7.10), over
// zlib's deflate.
//
// Feed the input in pieces with add(); finish() flushes and appends the trailer. The output
// of every call is appended to the caller's string, so a response can be sent piece by piece
// without holding the whole archive. One encoder is one stream; not thread-safe, but it may
// move between threads between calls.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sandboxd::control {

class GzipEncoder {
 public:
  // `level` is zlib's 0-9 (or -1 for its default).
  static Result<GzipEncoder> make(int level = -1);

  GzipEncoder(GzipEncoder&&) noexcept;
  GzipEncoder& operator=(GzipEncoder&&) noexcept;
  ~GzipEncoder();

  // Compresses `in`, appending whatever output zlib produces now to `out`.
  Status add(std::string_view in, std::string& out);
  // Ends the stream: the rest of the output and the gzip trailer go to `out`.
  Status finish(std::string& out);

 private:
  struct State;
  explicit GzipEncoder(std::unique_ptr<State> state);
  Status run(std::string_view in, bool finish, std::string& out);

  std::unique_ptr<State> state_;
};

}  // namespace sandboxd::control
