#include "demux.h"

#include "docker/error.h"

#include <algorithm>

namespace sandboxd::docker::detail {

Status StreamDemuxer::feed(std::string_view bytes) {
  if (failed_) return docker_error(DockerErrorKind::protocol, "exec stream already malformed");
  while (!bytes.empty()) {
    if (remaining_ == 0) {
      const std::size_t take = std::min(bytes.size(), header_.size() - header_len_);
      std::copy_n(bytes.data(), take, header_.begin() + static_cast<std::ptrdiff_t>(header_len_));
      header_len_ += take;
      bytes.remove_prefix(take);
      if (header_len_ < header_.size()) break;
      header_len_ = 0;
      if (header_[0] > 2 || header_[1] != 0 || header_[2] != 0 || header_[3] != 0) {
        failed_ = true;
        return docker_error(DockerErrorKind::protocol,
                            "exec stream: invalid frame header (is the exec a TTY?)");
      }
      stream_ = static_cast<ExecStream>(header_[0]);
      remaining_ = (std::uint32_t{header_[4]} << 24) | (std::uint32_t{header_[5]} << 16) |
                   (std::uint32_t{header_[6]} << 8) | std::uint32_t{header_[7]};
      continue;
    }
    const std::size_t take = std::min<std::size_t>(bytes.size(), remaining_);
    remaining_ -= static_cast<std::uint32_t>(take);
    counts_[static_cast<std::size_t>(stream_)] += take;
    if (on_output_) on_output_(stream_, bytes.substr(0, take));
    bytes.remove_prefix(take);
  }
  return ok();
}

std::uint64_t StreamDemuxer::bytes(ExecStream stream) const {
  return counts_[static_cast<std::size_t>(stream)];
}

Result<bool> LineSplitter::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    const auto piece = bytes.substr(0, nl);
    if (partial_.size() + piece.size() > max_line_) {
      return docker_error(DockerErrorKind::protocol,
                          "event stream: line longer than " + std::to_string(max_line_) + " bytes");
    }
    if (nl == std::string_view::npos) {
      partial_.append(piece);
      break;
    }
    bytes.remove_prefix(nl + 1);
    std::string_view line = piece;
    if (!partial_.empty()) {
      partial_.append(piece);
      line = partial_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    bool go_on = true;
    if (!line.empty()) go_on = on_line_(line);
    partial_.clear();
    if (!go_on) return false;
  }
  return true;
}

}  // namespace sandboxd::docker::detail
