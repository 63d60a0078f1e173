// Framing of the control API's streams as sandboxctl reads them: NDJSON lines (streaming
// exec, SPEC §2.6.8; logs in ndjson), Server-Sent Events (task events, SPEC §2.7.4), and
// the exec frames themselves.
//
// The splitters take bytes as they arrive, in any split, and hand out complete items. A line
// or event longer than its limit is an error, not an allocation without bound; malformed
// frames are errors, never crashes. Not thread-safe; one splitter per stream.
#pragma once

#include "base/base64.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/errors.h"

namespace sandboxd::cli {

// Lines ended by '\n' (a '\r' before it is dropped).
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line = 16 * 1024 * 1024) : max_line_(max_line) {}

  // Appends the lines `bytes` completes to `out`; an error when a line grows past the limit.
  CliStatus feed(std::string_view bytes, std::vector<std::string>& out);
  // End of stream: a last line without its '\n', if any.
  std::optional<std::string> finish();

 private:
  std::size_t max_line_;
  std::string buffer_;
};

struct SseEvent {
  std::string id;     // the `id:` of this event ("" when it had none)
  std::string event;  // "message" when it had no `event:`
  std::string data;   // `data:` lines joined with '\n'
};

// The event-stream grammar of the HTML standard: lines end in "\r\n", "\n" or "\r"; a line
// starting with ':' is a comment; "field: value" with one optional space after the colon;
// a blank line dispatches the event when it has data. `last_event_id()` is the id to send as
// Last-Event-ID after a reconnect; `retry_ms()` the last valid `retry:`.
class SseParser {
 public:
  explicit SseParser(std::size_t max_event = 16 * 1024 * 1024) : max_event_(max_event) {}

  CliStatus feed(std::string_view bytes, std::vector<SseEvent>& out);
  const std::string& last_event_id() const { return last_id_; }
  std::optional<std::uint64_t> retry_ms() const { return retry_ms_; }
  // Forgets a partial event (after a dropped connection); keeps last_event_id.
  void reset();

 private:
  CliStatus line(std::string_view l, std::vector<SseEvent>& out);

  std::size_t max_event_;
  std::string line_;
  bool skip_lf_ = false;
  SseEvent current_;
  bool has_data_ = false;
  std::string last_id_;
  std::optional<std::uint64_t> retry_ms_;
};

// One frame of a streaming exec (SPEC §2.6.8).
struct ExecFrame {
  enum class Type { start, stdout_, stderr_, heartbeat, exit, error, unknown };
  Type type = Type::unknown;
  std::string exec_id;           // start
  std::string data;              // stdout/stderr: the bytes (data_b64 decoded)
  bool binary = false;           // the frame carried data_b64
  std::optional<int> exit_code;  // exit; nullopt when the server sent null
  bool timed_out = false;        // exit
  std::int64_t duration_ms = 0;  // exit
  std::string code, message;     // error
};

// A line of the stream; an error when it is not a JSON object with a string `type` or a
// known type lacks its fields. Unknown types parse as `unknown` (newer servers).
CliResult<ExecFrame> parse_exec_frame(std::string_view line);

// base/base64.h's decoder (standard alphabet, padding optional).
using sandboxd::base64_decode;

}  // namespace sandboxd::cli
