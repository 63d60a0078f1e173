#include "edge/access_log_writer.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <thread>
#include <vector>

#include "base/log.h"

namespace sandboxd::edge {

namespace {

constexpr log::Logger kLog{"edge"};
constexpr std::string_view kStderr = "stderr";
// One write to a pipe of at most PIPE_BUF bytes is atomic: cut there so that the process's
// own log lines (also on stderr) never land inside an access line.
constexpr std::size_t kStderrPiece = PIPE_BUF;
constexpr std::size_t kFilePiece = 1024 * 1024;

Result<int> open_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Error{Errc::io, "cannot open the access log " + path + ": " + std::strerror(errno)};
  }
  return fd;
}

}  // namespace

struct AccessLogWriter::State {
  State(std::string t, AccessLogOptions o, int f, bool owns)
      : target(std::move(t)), options(o), fd(f), owns_fd(owns) {}
  ~State() {
    if (owns_fd && fd >= 0) ::close(fd);
    if (pending_fd >= 0) ::close(pending_fd);
  }

  const std::string target;
  const AccessLogOptions options;
  std::atomic<std::uint64_t> dropped{0};

  // Writer thread only.
  int fd;
  bool owns_fd;
  bool complaining = false;  // a write error was logged; the next success ends the streak

  std::mutex mu;
  std::condition_variable wake;  // the writer waits here
  std::condition_variable idle;  // flush() and the destructor wait here
  std::vector<std::unique_ptr<Shard>> shards;
  int pending_fd = -1;  // from reopen(), taken by the writer before its next write
  bool kick = false;
  bool stopping = false;
  bool exited = false;
  std::uint64_t requested = 0;  // flush passes asked for
  std::uint64_t done = 0;       // flush passes finished

  Shard& add_shard() {
    std::lock_guard lock(mu);
    shards.push_back(std::unique_ptr<Shard>(new Shard(*this)));
    return *shards.back();
  }

  void kick_writer() {
    std::lock_guard lock(mu);
    kick = true;
    wake.notify_one();
  }

  void run() {
    std::string batch;
    std::vector<Shard*> list;
    std::unique_lock lock(mu);
    for (;;) {
      wake.wait_for(lock, options.flush_interval,
                    [&] { return stopping || kick || requested > done; });
      const bool last = stopping;
      const std::uint64_t serving = requested;
      kick = false;
      const int new_fd = std::exchange(pending_fd, -1);
      list.assign(shards.size(), nullptr);
      std::transform(shards.begin(), shards.end(), list.begin(),
                     [](const std::unique_ptr<Shard>& s) { return s.get(); });
      lock.unlock();

      if (new_fd >= 0) {
        if (owns_fd) ::close(fd);
        fd = new_fd;
        owns_fd = true;
      }
      for (Shard* s : list) {
        {
          std::lock_guard shard_lock(s->mu_);
          batch.swap(s->buffer_);
          s->kicked_ = false;
        }
        if (!batch.empty()) write_all(batch);
        batch.clear();
      }

      lock.lock();
      done = std::max(done, serving);
      idle.notify_all();
      if (last) {
        exited = true;
        idle.notify_all();
        return;
      }
    }
  }

  // Writes whole lines; what an error leaves unwritten is counted as dropped.
  void write_all(std::string_view text) {
    const std::size_t piece = target == kStderr ? kStderrPiece : kFilePiece;
    while (!text.empty()) {
      std::size_t n = text.size();
      if (n > piece) {
        // End the piece at a line's end; a longer line goes alone.
        const std::size_t cut = text.rfind('\n', piece - 1);
        const std::size_t end = cut != std::string_view::npos ? cut : text.find('\n');
        n = end != std::string_view::npos ? end + 1 : text.size();
      }
      const ssize_t w = ::write(fd, text.data(), n);
      if (w >= 0) {
        text.remove_prefix(static_cast<std::size_t>(w));
        complaining = false;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // Somebody made the descriptor non-blocking (stderr is shared): wait for room.
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 100);
        continue;
      }
      const int err = errno;
      dropped.fetch_add(static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n')),
                        std::memory_order_relaxed);
      if (!complaining) {
        complaining = true;
        kLog.warn("access log write failed", {{"target", target}, {"error", std::strerror(err)}});
      }
      return;
    }
  }
};

void AccessLogWriter::Shard::append(std::string_view line) {
  const std::size_t limit = state_.options.max_buffered_bytes;
  bool kick = false;
  {
    std::lock_guard lock(mu_);
    if (buffer_.size() + line.size() + 1 > limit) {
      state_.dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    buffer_.append(line);
    buffer_.push_back('\n');
    if (!kicked_ && buffer_.size() >= limit / 2) {
      kicked_ = true;
      kick = true;
    }
  }
  if (kick) state_.kick_writer();
}

Result<std::shared_ptr<AccessLogWriter>> AccessLogWriter::open(std::string target,
                                                               AccessLogOptions options) {
  int fd = STDERR_FILENO;
  bool owns = false;
  if (target.empty()) return Error{Errc::invalid_argument, "the access log target is empty"};
  if (target != kStderr) {
    auto opened = open_file(target);
    if (!opened) return opened.error();
    fd = *opened;
    owns = true;
  }
  auto state = std::make_shared<State>(std::move(target), options, fd, owns);
  std::thread([state] { state->run(); }).detach();
  return std::shared_ptr<AccessLogWriter>(new AccessLogWriter(std::move(state)));
}

AccessLogWriter::AccessLogWriter(std::shared_ptr<State> state) : state_(std::move(state)) {}

AccessLogWriter::~AccessLogWriter() {
  // The thread keeps the state alive: when a write blocks past stop_wait (a pipe nobody
  // reads), it finishes on its own, and the process does not wait for it.
  std::unique_lock lock(state_->mu);
  state_->stopping = true;
  state_->wake.notify_one();
  state_->idle.wait_for(lock, state_->options.stop_wait, [&] { return state_->exited; });
}

const std::string& AccessLogWriter::target() const { return state_->target; }

AccessLogWriter::Shard& AccessLogWriter::add_shard() { return state_->add_shard(); }

Status AccessLogWriter::reopen() {
  if (state_->target == kStderr) return ok();
  auto opened = open_file(state_->target);
  if (!opened) return opened.error();
  std::lock_guard lock(state_->mu);
  if (state_->pending_fd >= 0) ::close(state_->pending_fd);
  state_->pending_fd = *opened;
  state_->kick = true;
  state_->wake.notify_one();
  return ok();
}

bool AccessLogWriter::flush(std::chrono::milliseconds limit) {
  std::unique_lock lock(state_->mu);
  const std::uint64_t want = ++state_->requested;
  state_->wake.notify_one();
  return state_->idle.wait_for(lock, limit, [&] {
    return state_->done >= want || state_->exited;
  }) && state_->done >= want;
}

std::uint64_t AccessLogWriter::dropped() const {
  return state_->dropped.load(std::memory_order_relaxed);
}

}  // namespace sandboxd::edge
