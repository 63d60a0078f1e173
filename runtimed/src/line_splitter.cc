#include "runtimed/line_splitter.h"

#include "runtimed/text.h"

namespace sandboxd::runtimed {

void LineSplitter::emit_line(std::vector<Piece>& out) {
  out.push_back(Piece{std::move(buffer_), false, in_split_});
  buffer_.clear();
  in_split_ = false;
}

void LineSplitter::cut_long(std::vector<Piece>& out, bool line_complete) {
  // Until the line is complete, keep 3 bytes beyond the cut point in hand, so that a
  // character straddling it is seen whole and the cut falls where it would for the whole
  // input at once.
  std::size_t keep = line_complete ? 0 : 3;
  while (buffer_.size() > max_line_ + keep) {
    std::size_t n = utf8_cut(buffer_, max_line_);
    out.push_back(Piece{buffer_.substr(0, n), true, true});
    buffer_.erase(0, n);
    in_split_ = true;
  }
}

void LineSplitter::feed(std::string_view bytes, std::vector<Piece>& out) {
  std::size_t i = 0;
  if (skip_lf_ && !bytes.empty()) {
    skip_lf_ = false;
    if (bytes[0] == '\n') i = 1;
  }
  while (i < bytes.size()) {
    std::size_t end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      buffer_.append(bytes.substr(i));
      cut_long(out, false);
      return;
    }
    buffer_.append(bytes.substr(i, end - i));
    cut_long(out, true);
    emit_line(out);
    if (bytes[end] == '\r') {
      if (end + 1 < bytes.size()) {
        i = bytes[end + 1] == '\n' ? end + 2 : end + 1;
      } else {
        skip_lf_ = true;  // a '\n' at the start of the next read belongs to this '\r'
        i = end + 1;
      }
    } else {
      i = end + 1;
    }
  }
}

void LineSplitter::finish(std::vector<Piece>& out) {
  skip_lf_ = false;
  cut_long(out, true);
  if (!buffer_.empty() || in_split_) emit_line(out);
}

}  // namespace sandboxd::runtimed
