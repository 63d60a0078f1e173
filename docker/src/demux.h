// Incremental parsers for the two streamed answers of the Engine API.
//
// StreamDemuxer splits Docker's multiplexed exec/attach/logs stream (Tty=false): frames of an
// 8-byte header [stream id (0 stdin, 1 stdout, 2 stderr), 0, 0, 0, big-endian uint32 length]
// and then `length` payload bytes. Input may arrive split at any byte; payload is passed on
// as soon as it arrives, so one frame may reach the callback in several pieces.
//
// LineSplitter cuts the `/events` stream into its newline-terminated JSON documents.
//
// Both are single-threaded plain objects; the callbacks run inside feed().
#pragma once

#include "base/result.h"
#include "docker/types.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace sandboxd::docker::detail {

class StreamDemuxer {
 public:
  explicit StreamDemuxer(OutputFn on_output) : on_output_(std::move(on_output)) {}

  // Consumes `bytes`; an invalid header is a protocol error and the demuxer stays failed.
  Status feed(std::string_view bytes);
  // True between frames, where a clean end of stream may fall.
  bool at_frame_boundary() const { return header_len_ == 0 && remaining_ == 0; }
  std::uint64_t bytes(ExecStream stream) const;

 private:
  OutputFn on_output_;
  std::array<unsigned char, 8> header_{};
  std::size_t header_len_ = 0;
  std::uint32_t remaining_ = 0;
  ExecStream stream_ = ExecStream::out;
  std::array<std::uint64_t, 3> counts_{};
  bool failed_ = false;
};

class LineSplitter {
 public:
  using LineFn = std::function<bool(std::string_view line)>;  // false: stop

  LineSplitter(std::size_t max_line, LineFn on_line)
      : max_line_(max_line), on_line_(std::move(on_line)) {}

  // Calls on_line for each complete non-empty line (without the newline). Returns false once
  // on_line asked to stop; a line longer than max_line is a protocol error.
  Result<bool> feed(std::string_view bytes);

 private:
  std::size_t max_line_;
  LineFn on_line_;
  std::string partial_;
};

}  // namespace sandboxd::docker::detail
