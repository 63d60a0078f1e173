// The access log's writer (SPEC §3.11): JSON lines buffered per producer and written out by
// one background thread, so the data plane never waits for the log.
//
// Each producer (an edge worker) takes a `Shard` once and appends its lines there. An
// append copies the line into the shard's buffer under the shard's own mutex, which the
// writer thread holds only to swap the buffer for an empty one; nobody holds it during I/O.
// The writer thread writes every shard's lines at least every `flush_interval`, and sooner
// when a buffer is half full. When a shard's buffer is full (the writer fell behind: a slow
// disk, a pipe nobody reads) the line is dropped and counted in `dropped()`; lines that a
// write error loses are counted there too.
//
// The target is "stderr" (fd 2, never closed), a file path, opened with
// O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC and mode 0640, or "" (off: lines are dropped before
// they are buffered, uncounted). `reopen()` opens the path again (for SIGHUP and logrotate)
// and `retarget()` switches to another target (SIGHUP with a new log.access_log): lines go
// there from the next write; if the open fails, the old target stays. Lines from one shard keep their order; lines of different shards
// interleave whole.
//
// Thread safety: everything is thread-safe. Shards live as long as the writer. The
// destructor writes what is buffered, waiting at most `stop_wait` for a blocked write (a
// pipe nobody reads); the writer thread is then left to finish on its own.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sandboxd::edge {

struct AccessLogOptions {
  std::chrono::milliseconds flush_interval{250};
  std::size_t max_buffered_bytes = 1024 * 1024;  // per shard
  std::chrono::milliseconds stop_wait{2000};
};

class AccessLogWriter {
 public:
  struct State;

  // One producer's buffer.
  class Shard {
   public:
    // One line, without its newline. Never waits for I/O.
    void append(std::string_view line);
    // False while the target is "": a producer need not build its lines.
    bool enabled() const;

   private:
    friend struct State;
    explicit Shard(State& state) : state_(state) {}
    State& state_;
    std::mutex mu_;
    std::string buffer_;
    bool kicked_ = false;  // the writer was told this buffer is half full
  };

  static Result<std::shared_ptr<AccessLogWriter>> open(std::string target,
                                                       AccessLogOptions options = {});
  ~AccessLogWriter();
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  std::string target() const;
  Shard& add_shard();
  Status reopen();
  Status retarget(std::string target);
  // Writes what is buffered now; false if that took longer than `limit`.
  bool flush(std::chrono::milliseconds limit);
  std::uint64_t dropped() const;

 private:
  explicit AccessLogWriter(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace sandboxd::edge
