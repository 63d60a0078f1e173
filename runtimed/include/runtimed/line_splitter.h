// Turns a byte stream (a task's stdout or stderr) into lines as SPEC §6.4 defines them:
// `\n`, `\r\n` and a lone `\r` each end a line, and the terminator is not part of the line.
// A line longer than `max_line` bytes is handed out in pieces of at most `max_line` bytes,
// cut on UTF-8 character boundaries; every piece but the last has `partial` set. The bytes
// are not repaired here (events do that). Not thread-safe; one splitter per stream.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::runtimed {

class LineSplitter {
 public:
  struct Piece {
    std::string text;
    bool partial = false;  // more of the same line follows
    bool split = false;    // this piece belongs to a line that was cut
  };

  explicit LineSplitter(std::size_t max_line) : max_line_(max_line) {}

  // Appends the pieces that `bytes` completes to `out`.
  void feed(std::string_view bytes, std::vector<Piece>& out);
  // End of stream: a final line without terminator is handed out.
  void finish(std::vector<Piece>& out);

 private:
  void emit_line(std::vector<Piece>& out);
  void cut_long(std::vector<Piece>& out, bool line_complete);

  std::size_t max_line_;
  std::string buffer_;
  bool skip_lf_ = false;     // the previous byte was a '\r'
  bool in_split_ = false;    // pieces of the current line were already handed out
};

}  // namespace sandboxd::runtimed
