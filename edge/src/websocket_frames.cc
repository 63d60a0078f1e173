#include "edge/websocket_frames.h"

#include <algorithm>

namespace sandboxd::edge {

namespace {
constexpr unsigned char kOpcodeMask = 0x0F;
constexpr unsigned char kOpcodeClose = 0x08;
constexpr unsigned char kMaskBit = 0x80;
constexpr unsigned char kLength7 = 0x7F;
constexpr std::size_t kMaxReason = 123;  // 125 bytes of control payload minus the code
}  // namespace

std::size_t FrameCursor::header_size() const {
  if (have_ < 2) return 0;
  const unsigned char len7 = header_[1] & kLength7;
  const std::size_t extended = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  const std::size_t mask = (header_[1] & kMaskBit) != 0 ? 4 : 0;
  return 2 + extended + mask;
}

std::size_t FrameCursor::advance(std::string_view in, bool stop_at_boundary) {
  std::size_t i = 0;
  while (i < in.size()) {
    if (lost_) return in.size();
    if (payload_left_ > 0) {
      const std::uint64_t take = std::min<std::uint64_t>(payload_left_, in.size() - i);
      i += static_cast<std::size_t>(take);
      payload_left_ -= take;
      continue;
    }
    if (have_ == 0 && stop_at_boundary) break;
    header_[have_++] = static_cast<unsigned char>(in[i++]);
    const std::size_t size = header_size();
    if (size == 0 || have_ < size) continue;
    const unsigned char len7 = header_[1] & kLength7;
    std::uint64_t length = len7;
    if (len7 >= 126) {
      const std::size_t bytes = len7 == 126 ? 2 : 8;
      length = 0;
      for (std::size_t b = 0; b < bytes; ++b) length = (length << 8) | header_[2 + b];
      if (bytes == 8 && (length >> 63) != 0) {
        lost_ = true;
        return in.size();
      }
    }
    if ((header_[0] & kOpcodeMask) == kOpcodeClose) saw_close_ = true;
    payload_left_ = length;
    have_ = 0;
  }
  return i;
}

std::string close_frame(std::uint16_t code, std::string_view reason) {
  reason = reason.substr(0, kMaxReason);
  std::string frame;
  frame.reserve(4 + reason.size());
  frame.push_back(static_cast<char>(0x80 | kOpcodeClose));  // FIN, close
  frame.push_back(static_cast<char>(2 + reason.size()));    // unmasked, short length
  frame.push_back(static_cast<char>(code >> 8));
  frame.push_back(static_cast<char>(code & 0xFF));
  frame.append(reason);
  return frame;
}

}  // namespace sandboxd::edge
