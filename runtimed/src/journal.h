// A task's files as the task runner writes them (SPEC §6.6). Appends are handed from the
// loop to the writer strand on the blocking pool, which writes them in order; events are
// fsync'd at most every 200 ms and always after `done`. The loop learns how many events
// (and bytes) have reached the file, and event streams read only that far, so nothing a
// client has seen can vanish from events.ndjson if runtimed dies.
//
// A failed write (ENOSPC) keeps the bytes and retries every second; the first failure is
// reported once through `on_disk_error`. Loop-side members are used on the loop thread only.
#pragma once

#include "async.h"


#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace sandboxd::runtimed {

// A strand on the blocking pool, held type-erased (a strand keeps its FIFO order).
using WriterStrand = asio::any_io_executor;

class Journal : public std::enable_shared_from_this<Journal> {
 public:
  // `events`/`bytes`: what events.ndjson already holds (a recovered task).
  Journal(asio::any_io_executor loop, WriterStrand writer, std::string dir,
          std::uint64_t events, std::uint64_t bytes, std::uint64_t max_log_bytes);
  ~Journal();

  // One event line ending in '\n'. Coalesced with the others of the same loop turn.
  void append_event(std::string line);
  // Raw output for agent.log; silently cut at the cap given at construction.
  void append_log(std::string_view bytes);
  // After the `done` line: everything is written and fsync'd, result.json is written by
  // temp file and rename, the files are closed, then `done_cb` runs on the loop.
  void finish(std::string result_json, std::function<void()> done_cb);

  std::uint64_t written_events() const { return written_events_; }
  std::uint64_t written_bytes() const { return written_bytes_; }
  Notifier& changed() { return changed_; }
  const std::string& dir() const { return dir_; }
  std::string events_path() const { return dir_ + "/events.ndjson"; }

  std::function<void(int err)> on_disk_error;

  struct Files;  // writer-side state

 private:
  void ensure_report();
  void schedule_flush();
  void flush_now();
  void on_written(std::uint64_t events, std::uint64_t bytes, int err);

  asio::any_io_executor loop_;
  WriterStrand writer_;
  std::string dir_;
  std::shared_ptr<Files> files_;
  std::string batch_;
  std::uint64_t batch_events_ = 0;
  bool flush_scheduled_ = false;
  std::uint64_t log_budget_;
  std::uint64_t written_events_;
  std::uint64_t written_bytes_;
  bool error_reported_ = false;
  Notifier changed_;
};

// The dev server's log, `.sandboxd/devserver.log`, rotated to `.1` at 8 MiB (SPEC §6.7).
// Appends go through the writer strand; failures are dropped (the log is best effort).
class DevLog {
 public:
  DevLog(WriterStrand writer, std::string path);
  void append(std::string bytes);
  const std::string& path() const { return path_; }

  struct Files;

 private:
  WriterStrand writer_;
  std::string path_;
  std::shared_ptr<Files> files_;
};

}  // namespace sandboxd::runtimed
