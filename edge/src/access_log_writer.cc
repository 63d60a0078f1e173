#include "edge/access_log_writer.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <optional>
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

// The descriptor of a target: stderr is fd 2 and never closed, "" is none (off).
struct Opened {
  int fd = -1;
  bool owns = false;
};

Result<Opened> open_target(const std::string& target) {
  if (target.empty()) return Opened{};
  if (target == kStderr) return Opened{STDERR_FILENO, false};
  auto fd = open_file(target);
  if (!fd) return fd.error();
  return Opened{*fd, true};
}

}  // namespace

struct AccessLogWriter::State {
  State(std::string t, AccessLogOptions o, Opened f)
      : on(!t.empty()), options(o), writing(t), fd(f.fd), owns_fd(f.owns), target(std::move(t)) {}
  ~State() {
    if (owns_fd && fd >= 0) ::close(fd);
    if (pending && pending->file.owns) ::close(pending->file.fd);
  }

  std::atomic<bool> on;  // false: the target is "" and lines are not even buffered
  const AccessLogOptions options;
  std::atomic<std::uint64_t> dropped{0};

  // Writer thread only.
  std::string writing;  // the target `fd` belongs to
  int fd;
  bool owns_fd;
  bool complaining = false;  // a write error was logged; the next success ends the streak

  std::mutex mu;
  std::condition_variable wake;  // the writer waits here
  std::condition_variable idle;  // flush() and the destructor wait here
  std::vector<std::unique_ptr<Shard>> shards;
  std::string target;  // the latest target asked for
  // From reopen() or retarget(), taken by the writer before its next write.
  struct Pending {
    Opened file;
    std::string target;
  };
  std::optional<Pending> pending;

  // Hands `next` to the writer thread (under `mu`).
  void hand_over(Opened next, std::string next_target) {
    if (pending && pending->file.owns) ::close(pending->file.fd);
    pending = Pending{next, std::move(next_target)};
    kick = true;
    wake.notify_one();
  }
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
      std::optional<Pending> next = std::exchange(pending, std::nullopt);
      list.assign(shards.size(), nullptr);
      std::transform(shards.begin(), shards.end(), list.begin(),
                     [](const std::unique_ptr<Shard>& s) { return s.get(); });
      lock.unlock();

      if (next) {
        if (owns_fd) ::close(fd);
        fd = next->file.fd;
        owns_fd = next->file.owns;
        writing = std::move(next->target);
        complaining = false;
      }
      for (Shard* s : list) {
        {
          std::lock_guard shard_lock(s->mu_);
          batch.swap(s->buffer_);
          s->kicked_ = false;
        }
        if (!batch.empty() && fd >= 0) write_all(batch);  // fd < 0: turned off meanwhile
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
    const std::size_t piece = writing == kStderr ? kStderrPiece : kFilePiece;
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
        kLog.warn("access log write failed", {{"target", writing}, {"error", std::strerror(err)}});
      }
      return;
    }
  }
};

bool AccessLogWriter::Shard::enabled() const { return state_.on.load(std::memory_order_relaxed); }

void AccessLogWriter::Shard::append(std::string_view line) {
  if (!enabled()) return;
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
  auto opened = open_target(target);
  if (!opened) return opened.error();
  auto state = std::make_shared<State>(std::move(target), options, *opened);
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

std::string AccessLogWriter::target() const {
  std::lock_guard lock(state_->mu);
  return state_->target;
}

AccessLogWriter::Shard& AccessLogWriter::add_shard() { return state_->add_shard(); }

Status AccessLogWriter::reopen() {
  const std::string current = target();
  if (current.empty() || current == kStderr) return ok();
  auto opened = open_target(current);
  if (!opened) return opened.error();
  std::lock_guard lock(state_->mu);
  if (state_->target != current) {  // retargeted meanwhile
    if (opened->owns) ::close(opened->fd);
    return ok();
  }
  state_->hand_over(*opened, current);
  return ok();
}

Status AccessLogWriter::retarget(std::string next) {
  if (target() == next) return ok();
  auto opened = open_target(next);
  if (!opened) return opened.error();
  std::lock_guard lock(state_->mu);
  state_->on.store(!next.empty(), std::memory_order_relaxed);
  state_->target = next;
  state_->hand_over(*opened, std::move(next));
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
