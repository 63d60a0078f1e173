#include "acme/storage.h"

#include "base/log.h"

#include <boost/url/parse.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace sandboxd::acme {
namespace {

constexpr log::Logger kLog{"acme"};

Error io_error(std::string_view what, std::string_view key, int err) {
  return Error{Errc::io, std::string(what) + " acme/" + std::string(key) + ": " + std::strerror(err)};
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

class FileLock final : public StorageLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {}
  ~FileLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_;
};

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

class FileStorage final : public Storage {
 public:
  explicit FileStorage(std::string dir) : dir_(std::move(dir)) {
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  }

  Result<std::optional<std::string>> load(std::string_view key) override {
    if (!valid_storage_key(key)) return Error{Errc::invalid_argument, "bad storage key"};
    const std::string path = dir_ + "/" + std::string(key);
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0) {
      if (errno == ENOENT) return std::optional<std::string>{};
      return io_error("cannot open", key, errno);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return io_error("cannot stat", key, errno);
    if (!S_ISREG(st.st_mode)) return Error{Errc::corrupt, "acme/" + std::string(key) + " is not a file"};
    if ((st.st_mode & 077) != 0) {
      kLog.warn("tightened file mode", {{"path", path}, {"mode", "0600"}});
      ::fchmod(fd.get(), 0600);
    }
    std::string out;
    char buf[16384];
    for (;;) {
      const ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        return io_error("cannot read", key, errno);
      }
      if (n == 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return std::optional<std::string>(std::move(out));
  }

  Status store(std::string_view key, std::string_view data) override {
    if (!valid_storage_key(key)) return Error{Errc::invalid_argument, "bad storage key"};
    const std::string path = dir_ + "/" + std::string(key);
    const std::string parent = path.substr(0, path.rfind('/'));
    if (auto made = make_dirs(parent); !made) return made;
    static std::atomic<unsigned> counter{0};
    const std::string tmp = parent + "/.tmp-" + std::to_string(::getpid()) + "-" +
                            std::to_string(counter.fetch_add(1));
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) return io_error("cannot create a temp file for", key, errno);
    const bool written = write_all(fd.get(), data) && ::fsync(fd.get()) == 0;
    const int werr = errno;
    ::close(fd.release());
    if (!written) {
      ::unlink(tmp.c_str());
      return io_error("cannot write", key, werr);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int rerr = errno;
      ::unlink(tmp.c_str());
      return io_error("cannot rename into", key, rerr);
    }
    return sync_dir(parent, key);
  }

  Status remove(std::string_view key) override {
    if (!valid_storage_key(key)) return Error{Errc::invalid_argument, "bad storage key"};
    const std::string path = dir_ + "/" + std::string(key);
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return ok();
      return io_error("cannot remove", key, errno);
    }
    return sync_dir(path.substr(0, path.rfind('/')), key);
  }

  Result<std::unique_ptr<StorageLock>> try_lock() override {
    if (auto made = make_dirs(dir_); !made) return made.error();
    const std::string path = dir_ + "/lock";
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) return io_error("cannot open", "lock", errno);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) return std::unique_ptr<StorageLock>{};
      return io_error("cannot lock", "lock", errno);
    }
    return std::unique_ptr<StorageLock>(std::make_unique<FileLock>(fd.release()));
  }

 private:
  // mkdir -p of `path` (the root or below it): levels inside the root are 0700 and looser
  // modes found there are tightened; missing parents of the root are made 0700 too.
  Status make_dirs(const std::string& path) {
    std::lock_guard lock(mu_);
    if (!ensure_tree(dir_)) return io_error("cannot create", "", errno);
    std::size_t pos = dir_.size();
    while (pos < path.size()) {
      std::size_t next = path.find('/', pos + 1);
      if (next == std::string::npos) next = path.size();
      const std::string prefix = path.substr(0, next);
      if (!ensure_dir(prefix, true)) return io_error("cannot create", prefix.substr(dir_.size() + 1), errno);
      pos = next;
    }
    return ok();
  }

  bool ensure_tree(const std::string& path) {
    if (ensure_dir(path, path == dir_)) return true;
    if (errno != ENOENT) return false;
    const auto slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return false;
    return ensure_tree(path.substr(0, slash)) && ensure_dir(path, path == dir_);
  }

  static bool ensure_dir(const std::string& path, bool tighten) {
    if (::mkdir(path.c_str(), 0700) == 0) return true;
    if (errno != EEXIST) return false;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return false;
    if (!S_ISDIR(st.st_mode)) {
      errno = ENOTDIR;
      return false;
    }
    if (tighten && (st.st_mode & 077) != 0) {
      kLog.warn("tightened directory mode", {{"path", path}, {"mode", "0700"}});
      ::chmod(path.c_str(), 0700);
    }
    return true;
  }

  Status sync_dir(const std::string& dir, std::string_view key) {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0 || ::fsync(fd.get()) != 0) return io_error("cannot sync the directory of", key, errno);
    return ok();
  }

  std::string dir_;
  std::mutex mu_;
};

bool key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

bool valid_storage_key(std::string_view key) {
  if (key.empty() || key.size() > 512) return false;
  std::size_t start = 0;
  while (start <= key.size()) {
    const std::size_t slash = key.find('/', start);
    const std::string_view part =
        key.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty() || part == "." || part == ".." || part.front() == '.') return false;
    for (const char c : part) {
      if (!key_char(c)) return false;
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

std::string account_storage_prefix(std::string_view directory_url) {
  auto url = boost::urls::parse_uri(directory_url);
  if (!url || url->host().empty()) return "accounts/invalid";
  std::string host;
  for (const char c : url->host_address()) {
    const char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    host += key_char(l) ? l : '_';
  }
  if (host.front() == '.') host.front() = '_';
  if (url->has_port()) host += "_" + std::string(url->port());
  return "accounts/" + host;
}

std::shared_ptr<Storage> make_file_storage(std::string dir) {
  return std::make_shared<FileStorage>(std::move(dir));
}

}  // namespace sandboxd::acme
