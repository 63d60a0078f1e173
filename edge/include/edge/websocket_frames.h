// Where WebSocket frames begin and end in a tunnel's byte stream (RFC 6455 §5.2, SPEC §3.9).
//
// The edge never reads payloads; it follows frame headers so that it can put a close frame
// of its own between two frames (a sandbox that stops, an idle tunnel) and so that it can
// tell a client's close frame when it answers one. `FrameCursor` takes the stream through
// any split into reads. A header that is not well formed (a 64-bit length with the top bit
// set) leaves the cursor `lost`: it then never reports a boundary again. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sandboxd::edge {

class FrameCursor {
 public:
  // Follows the front of `in`. With `stop_at_boundary`, stops at the first frame boundary
  // it reaches (at once when it is at one) and returns how many bytes it followed;
  // otherwise it follows all of `in`.
  std::size_t advance(std::string_view in, bool stop_at_boundary = false);

  // Between two frames: every header and payload byte seen so far is complete.
  bool at_boundary() const { return !lost_ && have_ == 0 && payload_left_ == 0; }
  // A close frame's header (opcode 8) has been seen.
  bool saw_close() const { return saw_close_; }
  bool lost() const { return lost_; }

 private:
  std::size_t header_size() const;  // 0 while the first two bytes are not in yet

  unsigned char header_[14] = {};
  std::size_t have_ = 0;  // header bytes of the current frame seen so far
  std::uint64_t payload_left_ = 0;
  bool saw_close_ = false;
  bool lost_ = false;
};

// A server's (unmasked) close frame: `code` and a UTF-8 `reason` of at most 123 bytes.
std::string close_frame(std::uint16_t code, std::string_view reason);

}  // namespace sandboxd::edge
