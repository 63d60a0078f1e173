#include "journal.h"

#include "task_files.h"

#include <boost/asio/post.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace sandboxd::runtimed {

namespace {

constexpr auto kSyncInterval = std::chrono::milliseconds(200);
constexpr auto kRetryInterval = std::chrono::seconds(1);
constexpr std::uint64_t kDevLogRotate = 8 * 1024 * 1024;

// Writes as much of `data` as the file takes; returns the bytes written and sets *err on a
// failure.
std::size_t write_some(int fd, std::string_view data, int* err) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *err = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  return done;
}

int open_append(const std::string& path, mode_t mode) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, mode);
}

}  // namespace

// Everything here is touched on the writer strand only.
struct Journal::Files : std::enable_shared_from_this<Journal::Files> {
  std::string dir;
  int events_fd = -1;
  int log_fd = -1;
  std::string pending;
  std::uint64_t events = 0;  // written so far
  std::uint64_t bytes = 0;
  bool dirty = false;
  std::chrono::steady_clock::time_point last_sync{};
  std::unique_ptr<asio::steady_timer> timer;
  bool timer_armed = false;
  bool finishing = false;
  std::string result_json;
  std::function<void(std::uint64_t, std::uint64_t, int)> report;  // posts to the loop
  std::function<void()> finished;                                 // posts to the loop

  ~Files() {
    if (events_fd >= 0) ::close(events_fd);
    if (log_fd >= 0) ::close(log_fd);
  }

  // Writes pending bytes; reports progress or the error.
  void write_pending() {
    if (pending.empty()) return;
    int err = 0;
    if (events_fd < 0) {
      events_fd = open_append(dir + "/events.ndjson", 0600);
      if (events_fd < 0) err = errno;
    }
    std::size_t n = events_fd >= 0 ? write_some(events_fd, pending, &err) : 0;
    if (n > 0) {
      // Only whole lines count as written events.
      std::uint64_t lines = static_cast<std::uint64_t>(
          std::count(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n), '\n'));
      events += lines;
      bytes += n;
      pending.erase(0, n);
      dirty = true;
    }
    if (report) report(events, bytes, err);
  }

  void sync_if_due() {
    if (!dirty || events_fd < 0) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_sync >= kSyncInterval) {
      ::fsync(events_fd);
      last_sync = now;
      dirty = false;
      return;
    }
    arm(kSyncInterval - (now - last_sync));
  }

  void arm(std::chrono::steady_clock::duration d) {
    if (timer_armed) return;
    timer_armed = true;
    timer->expires_after(d);
    // The pending wait keeps this state alive; it ends at the latest after kRetryInterval.
    timer->async_wait([self = shared_from_this()](const boost::system::error_code&) {
      self->timer_armed = false;
      self->tick();
    });
  }

  void tick() {
    write_pending();
    if (finishing) {
      try_finish();
      return;
    }
    sync_if_due();
    if (!pending.empty()) arm(kRetryInterval);
  }

  void try_finish() {
    write_pending();
    if (!pending.empty()) {
      arm(kRetryInterval);
      return;
    }
    if (events_fd >= 0) ::fsync(events_fd);
    dirty = false;
    if (write_file_atomic(dir, kResultFile, result_json, 0600)) {
      if (events_fd >= 0) ::close(events_fd);
      if (log_fd >= 0) ::close(log_fd);
      events_fd = log_fd = -1;
      finishing = false;
      finished();
      return;
    }
    arm(kRetryInterval);
  }
};

Journal::Journal(asio::any_io_executor loop, WriterStrand writer, std::string dir,
                 std::uint64_t events, std::uint64_t bytes, std::uint64_t max_log_bytes)
    : loop_(std::move(loop)),
      writer_(std::move(writer)),
      dir_(std::move(dir)),
      files_(std::make_shared<Files>()),
      log_budget_(max_log_bytes),
      written_events_(events),
      written_bytes_(bytes) {
  files_->dir = dir_;
  files_->events = events;
  files_->bytes = bytes;
  files_->timer = std::make_unique<asio::steady_timer>(writer_);
}

Journal::~Journal() = default;

void Journal::append_event(std::string line) {
  batch_ += line;
  ++batch_events_;
  schedule_flush();
}

void Journal::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // Lines made in the same loop turn (one pipe read) go to the writer together.
  asio::post(loop_, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->flush_now();
  });
}

void Journal::ensure_report() {
  if (!files_->report) {
    std::weak_ptr<Journal> weak = weak_from_this();
    auto loop = loop_;
    files_->report = [weak, loop](std::uint64_t events, std::uint64_t bytes, int err) {
      asio::post(loop, [weak, events, bytes, err] {
        if (auto self = weak.lock()) self->on_written(events, bytes, err);
      });
    };
  }
}

void Journal::flush_now() {
  flush_scheduled_ = false;
  if (batch_.empty()) return;
  ensure_report();
  asio::post(writer_, [files = files_, data = std::move(batch_)]() mutable {
    files->pending += data;
    files->write_pending();
    if (files->finishing) return;
    files->sync_if_due();
    if (!files->pending.empty()) files->arm(kRetryInterval);
  });
  batch_.clear();
  batch_events_ = 0;
}

void Journal::on_written(std::uint64_t events, std::uint64_t bytes, int err) {
  if (events > written_events_ || bytes > written_bytes_) {
    written_events_ = events;
    written_bytes_ = bytes;
    changed_.notify();
  }
  if (err != 0 && !error_reported_) {
    error_reported_ = true;
    if (on_disk_error) on_disk_error(err);
  }
}

void Journal::append_log(std::string_view bytes) {
  if (log_budget_ == 0 || bytes.empty()) return;
  std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(log_budget_, bytes.size()));
  log_budget_ -= n;
  asio::post(writer_, [files = files_, data = std::string(bytes.substr(0, n))] {
    if (files->log_fd < 0) files->log_fd = open_append(files->dir + "/agent.log", 0600);
    if (files->log_fd < 0) return;
    int err = 0;
    write_some(files->log_fd, data, &err);
  });
}

void Journal::finish(std::string result_json, std::function<void()> done_cb) {
  ensure_report();
  flush_now();
  auto loop = loop_;
  asio::post(writer_, [files = files_, result = std::move(result_json), loop,
                       done_cb = std::move(done_cb)]() mutable {
    files->finishing = true;
    files->result_json = std::move(result);
    files->finished = [loop, done_cb = std::move(done_cb)] { asio::post(loop, done_cb); };
    files->try_finish();
  });
}

struct DevLog::Files {
  std::string path;
  int fd = -1;
  std::uint64_t size = 0;

  ~Files() {
    if (fd >= 0) ::close(fd);
  }

  void append(const std::string& data) {
    if (fd < 0) {
      fd = open_append(path, 0600);
      if (fd < 0) return;
      struct stat st {};
      size = ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    }
    int err = 0;
    size += write_some(fd, data, &err);
    if (size >= kDevLogRotate) {
      ::close(fd);
      fd = -1;
      std::string old = path + ".1";
      ::rename(path.c_str(), old.c_str());
    }
  }
};

DevLog::DevLog(WriterStrand writer, std::string path)
    : writer_(std::move(writer)), path_(std::move(path)), files_(std::make_shared<Files>()) {
  files_->path = path_;
}

void DevLog::append(std::string bytes) {
  asio::post(writer_, [files = files_, data = std::move(bytes)] { files->append(data); });
}

}  // namespace sandboxd::runtimed
