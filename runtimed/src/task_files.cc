#include "task_files.h"

#include "base/json.h"
#include "base/log.h"
#include "base/ulid.h"
#include "runtimed/events.h"
#include "runtimed/text.h"

#include <boost/json.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

namespace sandboxd::runtimed {

namespace json = boost::json;

namespace {

constexpr log::Logger kLog{"runtimed"};
constexpr std::size_t kMaxTaskFile = 4 * 1024 * 1024;
constexpr std::size_t kMaxResultFile = 4 * 1024 * 1024;
constexpr std::size_t kMaxLine = 4 * 1024 * 1024;

Error io_error(std::string_view what, int err) {
  return Error{Errc::io, std::string(what) + ": " + std::strerror(err)};
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool pread_all(int fd, char* buf, std::size_t len, off_t at) {
  while (len > 0) {
    ssize_t n = ::pread(fd, buf, len, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf += n;
    len -= static_cast<std::size_t>(n);
    at += n;
  }
  return true;
}

// Offset just past the last '\n' at or before `limit`, or -1 when there is none.
off_t last_newline_end(int fd, off_t limit) {
  constexpr off_t kBlock = 64 * 1024;
  std::string buf;
  off_t end = limit;
  while (end > 0) {
    off_t start = end > kBlock ? end - kBlock : 0;
    buf.resize(static_cast<std::size_t>(end - start));
    if (!pread_all(fd, buf.data(), buf.size(), start)) return -1;
    std::size_t pos = buf.rfind('\n');
    if (pos != std::string::npos) return start + static_cast<off_t>(pos) + 1;
    end = start;
  }
  return -1;
}

// The line in [start, end) without its '\n', read only when it is not too long.
std::optional<std::string> read_range(int fd, off_t start, off_t end) {
  if (end <= start || end - start > static_cast<off_t>(kMaxLine)) return std::nullopt;
  std::string line(static_cast<std::size_t>(end - start), '\0');
  if (!pread_all(fd, line.data(), line.size(), start)) return std::nullopt;
  if (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

struct EventHead {
  std::uint64_t id = 0;
  std::string type;
  std::optional<Clock::WallTime> ts;
  json::object data;
};

std::optional<EventHead> parse_event(const std::optional<std::string>& line) {
  if (!line) return std::nullopt;
  auto parsed = parse_json_object(*line, JsonLimits{.max_depth = 64});
  if (!parsed) return std::nullopt;
  EventHead h;
  const json::value* id = parsed->if_contains("id");
  const json::value* type = parsed->if_contains("type");
  const json::value* ts = parsed->if_contains("ts");
  if (!id || !id->is_int64() || id->get_int64() < 1 || !type || !type->is_string()) {
    return std::nullopt;
  }
  h.id = static_cast<std::uint64_t>(id->get_int64());
  h.type = std::string(type->get_string());
  if (ts && ts->is_string()) h.ts = parse_time_ms(std::string_view(ts->get_string()));
  if (const json::value* d = parsed->if_contains("data"); d && d->is_object()) h.data = d->get_object();
  return h;
}

// Fills status, exit code and error from `done` data (result.json or the done line).
void apply_done(const json::object& done, TaskSummary& s) {
  if (const json::value* st = done.if_contains("status"); st && st->is_string()) {
    if (auto status = parse_status(std::string_view(st->get_string()))) s.status = *status;
  }
  if (!is_final(s.status)) s.status = TaskStatus::failed;
  if (const json::value* code = done.if_contains("exit_code"); code && code->is_int64()) {
    s.exit_code = static_cast<int>(code->get_int64());
  }
  if (const json::value* err = done.if_contains("error"); err && err->is_object()) {
    const json::object& e = err->get_object();
    TaskError te;
    if (const json::value* c = e.if_contains("code"); c && c->is_string()) te.code = std::string(c->get_string());
    if (const json::value* m = e.if_contains("message"); m && m->is_string()) te.message = std::string(m->get_string());
    s.error = te;
  }
  s.cancel_requested = s.status == TaskStatus::cancelled;
}

std::optional<Clock::WallTime> file_mtime(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return Clock::WallTime(std::chrono::duration_cast<Clock::WallTime::duration>(
      std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
}

void remove_at(int dirfd, const char* name) {
  int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    if (DIR* d = ::fdopendir(fd)) {
      while (dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        remove_at(::dirfd(d), e->d_name);
      }
      ::closedir(d);
    } else {
      ::close(fd);
    }
    ::unlinkat(dirfd, name, AT_REMOVEDIR);
    return;
  }
  ::unlinkat(dirfd, name, 0);
}

}  // namespace

std::string_view status_name(TaskStatus s) {
  switch (s) {
    case TaskStatus::queued: return "queued";
    case TaskStatus::running: return "running";
    case TaskStatus::succeeded: return "succeeded";
    case TaskStatus::failed: return "failed";
    case TaskStatus::cancelled: return "cancelled";
  }
  return "failed";
}

std::optional<TaskStatus> parse_status(std::string_view s) {
  for (TaskStatus t : {TaskStatus::queued, TaskStatus::running, TaskStatus::succeeded,
                       TaskStatus::failed, TaskStatus::cancelled}) {
    if (status_name(t) == s) return t;
  }
  return std::nullopt;
}

Status make_dirs(const std::string& path, mode_t mode) {
  std::string prefix;
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t slash = path.find('/', i);
    if (slash == std::string::npos) slash = path.size();
    prefix = path.substr(0, slash);
    i = slash + 1;
    if (prefix.empty()) continue;
    if (::mkdir(prefix.c_str(), mode) == 0) continue;
    if (errno != EEXIST) return io_error("mkdir " + prefix, errno);
    struct stat st {};
    if (::lstat(prefix.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error{Errc::io, prefix + ": exists and is not a directory"};
    }
  }
  return ok();
}

Status write_file_atomic(const std::string& dir, std::string_view name, std::string_view content,
                         mode_t mode) {
  int dirfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0) return io_error("open " + dir, errno);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string tmp = "." + std::string(name) + "." + std::to_string(rng() % 1000000000) + ".tmp";
  int fd = ::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    int e = errno;
    ::close(dirfd);
    return io_error("create " + std::string(name), e);
  }
  bool good = ::fchmod(fd, mode) == 0 && write_all(fd, content) && ::fsync(fd) == 0;
  int e = errno;
  ::close(fd);
  if (good && ::renameat(dirfd, tmp.c_str(), dirfd, std::string(name).c_str()) != 0) {
    good = false;
    e = errno;
  }
  if (!good) {
    ::unlinkat(dirfd, tmp.c_str(), 0);
    ::close(dirfd);
    return io_error("write " + std::string(name), e);
  }
  ::fsync(dirfd);
  ::close(dirfd);
  return ok();
}

Result<std::string> read_small_file(const std::string& path, std::size_t max) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    return Error{e == ENOENT ? Errc::not_found : Errc::io, path + ": " + std::strerror(e)};
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{Errc::io, path + ": not a regular file"};
  }
  if (static_cast<std::uint64_t>(st.st_size) > max) {
    ::close(fd);
    return Error{Errc::io, path + ": too large"};
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return io_error("read " + path, e);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max) {
      ::close(fd);
      return Error{Errc::io, path + ": too large"};
    }
  }
  ::close(fd);
  return out;
}

void remove_tree(const std::string& path) {
  std::size_t slash = path.rfind('/');
  std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  int dirfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return;
  remove_at(dirfd, name.c_str());
  ::close(dirfd);
}

std::string task_file_json(const TaskRequest& request, Clock::WallTime created_at) {
  json::object o = task_request_json(request);
  o["created_at"] = format_time_ms(created_at);
  return json::serialize(o) + "\n";
}

RecoveryReport recover_tasks(const std::string& root, const RequestDefaults& defaults,
                             Clock::WallTime now, std::chrono::hours retention,
                             std::string_view devserver_state) {
  RecoveryReport report;
  DIR* d = ::opendir(root.c_str());
  if (!d) return report;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    auto id = Ulid::parse(name);
    if (id && id->str() == name) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());

  for (const std::string& name : names) {
    std::string dir = root + "/" + name;
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    auto skip = [&](std::string_view why) {
      kLog.warn("task directory skipped", {{"task", name}, {"reason", why}});
      ++report.skipped;
    };

    auto task_text = read_small_file(dir + "/" + std::string(kTaskFile), kMaxTaskFile);
    if (!task_text) {
      skip("task.json unreadable");
      continue;
    }
    auto task_obj = parse_json_object(*task_text);
    if (!task_obj) {
      skip("task.json invalid");
      continue;
    }
    auto request = parse_task_request(*task_obj, defaults);
    if (!request || request->id != name) {
      skip("task.json invalid");
      continue;
    }
    RecoveredTask t;
    t.summary.request = std::move(*request);
    if (const json::value* c = task_obj->if_contains("created_at"); c && c->is_string()) {
      if (auto when = parse_time_ms(std::string_view(c->get_string()))) t.summary.created_at = *when;
    }

    std::string result_path = dir + "/" + std::string(kResultFile);
    if (auto result_mtime = file_mtime(result_path)) {
      if (*result_mtime + retention < now) {
        remove_tree(dir);
        ++report.deleted;
        continue;
      }
    }

    std::string events_path = dir + "/" + std::string(kEventsFile);
    int fd = ::open(events_path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    struct stat est {};
    if (fd < 0 || ::fstat(fd, &est) != 0 || !S_ISREG(est.st_mode) || est.st_size == 0) {
      if (fd >= 0) ::close(fd);
      if (file_mtime(result_path)) {
        skip("result.json without events");
        continue;
      }
      t.kind = RecoveredTask::Kind::queued;
      report.tasks.push_back(std::move(t));
      continue;
    }
    // A torn last line (runtimed died mid-write) is cut off.
    off_t end = last_newline_end(fd, est.st_size);
    if (end < 0) end = 0;
    if (end < est.st_size) {
      if (::ftruncate(fd, end) != 0) {
        ::close(fd);
        skip("cannot truncate a torn events line");
        continue;
      }
    }
    if (end == 0) {
      ::close(fd);
      t.kind = RecoveredTask::Kind::queued;
      report.tasks.push_back(std::move(t));
      continue;
    }
    off_t last_start = last_newline_end(fd, end - 1);
    if (last_start < 0) last_start = 0;
    auto last = parse_event(read_range(fd, last_start, end));
    off_t first_end = 0;
    {
      off_t probe = std::min<off_t>(end, 64 * 1024);
      std::string head(static_cast<std::size_t>(probe), '\0');
      if (pread_all(fd, head.data(), head.size(), 0)) {
        std::size_t nl = head.find('\n');
        first_end = nl == std::string::npos ? 0 : static_cast<off_t>(nl) + 1;
      }
    }
    auto first = parse_event(read_range(fd, 0, first_end));
    if (first && first->type == "started") t.summary.started_at = first->ts;
    if (!last) {
      ::close(fd);
      skip("last event unreadable");
      continue;
    }
    t.summary.last_event_id = last->id;

    auto result_text = read_small_file(result_path, kMaxResultFile);
    if (last->type == "done") {
      // Finished. result.json may be missing if runtimed died right after the done line.
      json::object done = last->data;
      if (result_text) {
        if (auto parsed = parse_json_object(*result_text)) done = *parsed;
      } else {
        write_file_atomic(dir, kResultFile, json::serialize(done) + "\n", 0600);
      }
      apply_done(done, t.summary);
      t.summary.finished_at = last->ts ? last->ts : file_mtime(events_path);
      t.summary.events_bytes = static_cast<std::uint64_t>(end);
      ::close(fd);
      t.kind = RecoveredTask::Kind::finished;
      report.tasks.push_back(std::move(t));
      continue;
    }

    // Interrupted: append error {interrupted} and done {failed} with the next ids.
    json::object err;
    err["code"] = "interrupted";
    err["message"] = "runtimed stopped while the task was running";
    json::object done;
    done["status"] = "failed";
    if (last->type == "exit") {
      const json::value* code = last->data.if_contains("code");
      if (code && code->is_int64()) {
        done["exit_code"] = code->get_int64();
        t.summary.exit_code = static_cast<int>(code->get_int64());
      } else {
        done["exit_code"] = nullptr;
      }
    } else {
      done["exit_code"] = nullptr;
    }
    done["error"] = err;
    auto started = t.summary.started_at.value_or(t.summary.created_at);
    done["duration_ms"] =
        std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(now - started).count());
    done["output_dropped_bytes"] = 0;
    json::object dev;
    dev["state"] = devserver_state;
    done["devserver"] = std::move(dev);
    std::string lines = event_line(last->id + 1, "error", now, err) +
                        event_line(last->id + 2, "done", now, done);
    bool written = ::lseek(fd, 0, SEEK_END) >= 0 && write_all(fd, lines) && ::fsync(fd) == 0;
    ::close(fd);
    if (!written) {
      skip("cannot append the interrupted events");
      continue;
    }
    write_file_atomic(dir, kResultFile, json::serialize(done) + "\n", 0600);
    t.summary.status = TaskStatus::failed;
    t.summary.error = TaskError{"interrupted", "runtimed stopped while the task was running"};
    t.summary.finished_at = now;
    t.summary.last_event_id = last->id + 2;
    t.summary.events_bytes = static_cast<std::uint64_t>(end) + lines.size();
    t.kind = RecoveredTask::Kind::interrupted;
    report.tasks.push_back(std::move(t));
  }

  std::stable_sort(report.tasks.begin(), report.tasks.end(),
                   [](const RecoveredTask& a, const RecoveredTask& b) {
                     return a.summary.created_at < b.summary.created_at;
                   });
  return report;
}

}  // namespace sandboxd::runtimed
