// sandboxd's client of runtimed (SPEC §6.2, §6.3): HTTP/1.1 over the sandbox's unix socket,
// pinned by RuntimedLink::open_socket, every request with `Authorization: Bearer <secret>`.
// One connection per call; runtimed's socket is local, so a connect costs microseconds.
//
// Answers are untrusted: bodies are capped (JSON 1 MiB by default, event lines 256 KiB), and
// a malformed answer is Errc::corrupt. Failures are values:
//   Errc::not_found    no socket yet (runtimed not up), or the run directory is gone
//   Errc::unavailable  the connection was refused or dropped
//   Errc::conflict     the socket entry failed the checks of §6.2 (`bad_socket`)
//   Errc::timeout      no complete answer within the deadline
//   Errc::corrupt      the answer is not HTTP/1.1 as expected, or over its cap
// An HTTP error status (401, 404, 429, …) is an answer, not a failure.
//
// Runs on the caller's executor; the link must outlive every call. Beast stays in the .cc.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "runtimed_link.h"

namespace sandboxd::control {

inline constexpr std::size_t kRuntimedJsonCap = 1024 * 1024;
inline constexpr std::size_t kRuntimedLineCap = 256 * 1024;
inline constexpr std::chrono::milliseconds kRuntimedStatusTimeout{2000};  // SPEC §6.2
inline constexpr std::chrono::milliseconds kRuntimedCallTimeout{5000};
inline constexpr std::chrono::milliseconds kRuntimedStreamSilence{45000};

struct RuntimedTarget {
  std::string sandbox_id;
  std::string secret;  // 64 hex; never logged
};

struct RuntimedReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

class RuntimedClient {
 public:
  explicit RuntimedClient(const RuntimedLink& link) : link_(link) {}

  // One request with a deadline for the whole exchange; the body is capped at `max_body`.
  // The views are copied before the first suspension point.
  boost::asio::awaitable<Result<RuntimedReply>> call(const RuntimedTarget& target,
                                                     std::string_view method, std::string_view path,
                                                     std::string_view body,
                                                     std::chrono::milliseconds timeout,
                                                     std::size_t max_body = kRuntimedJsonCap);

  // GET `path` as a stream of lines (NDJSON): `on_line` gets each non-empty line, without its
  // terminator, as it arrives; returning false ends the stream early. Empty lines are
  // heartbeats. Ends ok when runtimed ends the body; Errc::timeout after `silence` without a
  // byte. A non-200 answer is returned as the reply (its body, capped, in `body`) without
  // calling `on_line`.
  using LineFn = std::function<bool(std::string_view line)>;
  boost::asio::awaitable<Result<RuntimedReply>> stream_lines(
      const RuntimedTarget& target, std::string_view path, LineFn on_line,
      std::chrono::milliseconds silence = kRuntimedStreamSilence);

 private:
  const RuntimedLink& link_;
};

}  // namespace sandboxd::control
