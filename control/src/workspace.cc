#include "workspace.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <utility>

#include "base/log.h"
#include "tar_reader.h"

namespace sandboxd::control {
namespace {

constexpr log::Logger kLog{"workspace"};

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
// Directory handles remove() holds at once; deeper subtrees are moved up to the root first.
constexpr std::size_t kMaxRemoveHandles = 64;
constexpr std::size_t kMaxCopyDepth = 256;
constexpr mode_t kWorkspaceMode = 0755;
constexpr mode_t kRootMode = 0711;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// An open directory stream; owns its descriptor.
class Dir {
 public:
  Dir() = default;
  explicit Dir(DIR* dir) : dir_(dir) {}
  Dir(Dir&& other) noexcept : dir_(std::exchange(other.dir_, nullptr)) {}
  Dir& operator=(Dir&& other) noexcept {
    if (this != &other) {
      if (dir_ != nullptr) ::closedir(dir_);
      dir_ = std::exchange(other.dir_, nullptr);
    }
    return *this;
  }
  Dir(const Dir&) = delete;
  Dir& operator=(const Dir&) = delete;
  ~Dir() {
    if (dir_ != nullptr) ::closedir(dir_);
  }

  DIR* get() const { return dir_; }
  int fd() const { return ::dirfd(dir_); }

 private:
  DIR* dir_ = nullptr;
};

Error sys_error(std::string_view what, std::string_view path, int err) {
  std::string detail(what);
  if (!path.empty()) {
    detail += " ";
    detail += path;
  }
  detail += ": ";
  detail += std::strerror(err);
  return Error{Errc::io, std::move(detail)};
}

bool is_dot_or_dotdot(const char* name) {
  return std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0;
}

// Defence in depth: the id is a canonical ULID, so it is a single harmless name.
Status check_id(const std::string& id) {
  if (id.empty() || id.size() > 255 ||
      id.find_first_of(std::string_view("/.\0", 3)) != std::string::npos) {
    return Error{Errc::internal, "workspace id is not a canonical id"};
  }
  return ok();
}

// Turns a Dir around a descriptor; takes ownership of `fd` either way.
Result<Dir> make_dir(Fd fd, std::string_view path) {
  DIR* dir = ::fdopendir(fd.get());
  if (dir == nullptr) return sys_error("read directory", path, errno);
  fd.release();
  return Dir(dir);
}

Status write_all(int fd, std::string_view data, std::string_view path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("write", path, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok();
}

using Components = std::vector<std::string>;

std::string join(const Components& path, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count && i < path.size(); ++i) {
    if (i != 0) out += '/';
    out += path[i];
  }
  return out;
}

std::string join(const Components& path) { return join(path, path.size()); }

// Splits a relative path into components, dropping empty and `.` ones. Refuses an absolute
// path and `..`.
Result<Components> split_relative(std::string_view path) {
  if (!path.empty() && path.front() == '/') {
    return Error{Errc::invalid_argument, "absolute path in archive: " + std::string(path)};
  }
  Components out;
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return Error{Errc::invalid_argument, "path with a .. component in archive"};
    }
    out.emplace_back(part);
  }
  return out;
}

timespec to_timespec(std::int64_t seconds) {
  timespec ts{};
  ts.tv_sec = seconds;
  ts.tv_nsec = 0;
  return ts;
}

// Creates entries under a workspace directory from relative paths, walking each path one
// component at a time from the root handle. It never follows a symlink and never replaces
// an existing entry: those cases are skipped. Directory modes and mtimes are applied in
// finish(), children first, so a read-only directory can still be filled.
class TreeWriter {
 public:
  TreeWriter(int root_fd, uid_t uid, gid_t gid) : root_fd_(root_fd), uid_(uid), gid_(gid) {}

  std::size_t skipped() const { return skipped_; }

  // Each add_* returns true when it created the entry, false when it skipped it.
  Result<bool> add_dir(const Components& path, mode_t mode, std::optional<timespec> mtime) {
    if (path.empty()) return skip();  // the workspace root keeps its owner and mode
    auto parent = open_parent(path);
    if (!parent) return parent.error();
    if (*parent < 0) return skip();
    const std::string& name = path.back();
    const std::string rel = join(path);
    if (::mkdirat(*parent, name.c_str(), 0700) != 0) {
      if (errno != EEXIST) return sys_error("mkdir", rel, errno);
      // A directory this writer made (perhaps as an implicit parent) takes the entry's mode.
      auto made = created_dirs_.find(rel);
      if (made == created_dirs_.end()) return skip();
      deferred_[made->second].mode = mode;
      deferred_[made->second].mtime = mtime;
      return false;
    }
    Fd fd(::openat(*parent, name.c_str(), kDirFlags));
    if (!fd.valid()) return sys_error("open", rel, errno);
    if (::fchown(fd.get(), uid_, gid_) != 0) return sys_error("chown", rel, errno);
    created_dirs_.emplace(rel, deferred_.size());
    deferred_.push_back({path, mode, mtime});
    return true;
  }

  // `fill` writes the content into the new file's descriptor.
  Result<bool> add_file(const Components& path, mode_t mode, timespec mtime,
                        const std::function<Status(int fd, const std::string& rel)>& fill) {
    if (path.empty()) return skip();
    auto parent = open_parent(path);
    if (!parent) return parent.error();
    if (*parent < 0) return skip();
    const std::string rel = join(path);
    Fd fd(::openat(*parent, path.back().c_str(),
                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) {
      if (errno == EEXIST) return skip();
      return sys_error("create", rel, errno);
    }
    if (::fchown(fd.get(), uid_, gid_) != 0) return sys_error("chown", rel, errno);
    if (auto filled = fill(fd.get(), rel); !filled) return filled.error();
    if (::fchmod(fd.get(), mode & 0777) != 0) return sys_error("chmod", rel, errno);
    const timespec times[2] = {mtime, mtime};
    if (::futimens(fd.get(), times) != 0) return sys_error("set times of", rel, errno);
    return true;
  }

  Result<bool> add_symlink(const Components& path, const std::string& target, timespec mtime) {
    if (path.empty() || target.empty()) return skip();
    auto parent = open_parent(path);
    if (!parent) return parent.error();
    if (*parent < 0) return skip();
    const char* name = path.back().c_str();
    const std::string rel = join(path);
    if (::symlinkat(target.c_str(), *parent, name) != 0) {
      if (errno == EEXIST) return skip();
      return sys_error("symlink", rel, errno);
    }
    if (::fchownat(*parent, name, uid_, gid_, AT_SYMLINK_NOFOLLOW) != 0) {
      return sys_error("chown", rel, errno);
    }
    const timespec times[2] = {mtime, mtime};
    if (::utimensat(*parent, name, times, AT_SYMLINK_NOFOLLOW) != 0) {
      return sys_error("set times of", rel, errno);
    }
    return true;
  }

  // Applies the deferred directory modes and mtimes, deepest first.
  Status finish() {
    cached_parent_.reset();
    cached_path_.reset();
    for (auto it = deferred_.rbegin(); it != deferred_.rend(); ++it) {
      const std::string rel = join(it->path);
      Fd dir;
      int at = root_fd_;
      for (const std::string& part : it->path) {
        Fd next(::openat(at, part.c_str(), kDirFlags));
        if (!next.valid()) return sys_error("open", rel, errno);
        dir = std::move(next);
        at = dir.get();
      }
      if (::fchmod(dir.get(), it->mode & 0777) != 0) return sys_error("chmod", rel, errno);
      if (it->mtime) {
        const timespec times[2] = {*it->mtime, *it->mtime};
        if (::futimens(dir.get(), times) != 0) return sys_error("set times of", rel, errno);
      }
    }
    deferred_.clear();
    created_dirs_.clear();
    return ok();
  }

 private:
  struct DeferredDir {
    Components path;
    mode_t mode;
    std::optional<timespec> mtime;  // none for implicit parents
  };

  bool skip() {
    ++skipped_;
    return false;
  }

  // The directory that holds the last component of `path`, with missing directories created
  // on the way (0755, owned by uid:gid). -1 when a component is a symlink or not a
  // directory: the entry must be skipped. The handle stays owned by the writer.
  Result<int> open_parent(const Components& path) {
    const std::size_t depth = path.size() - 1;
    if (cached_path_ && cached_path_->size() == depth &&
        std::equal(cached_path_->begin(), cached_path_->end(), path.begin())) {
      return cached_parent_.valid() ? cached_parent_.get() : root_fd_;
    }
    cached_parent_.reset();
    cached_path_.reset();
    Fd dir;
    int at = root_fd_;
    for (std::size_t i = 0; i < depth; ++i) {
      const char* name = path[i].c_str();
      Fd next(::openat(at, name, kDirFlags));
      if (!next.valid() && errno == ENOENT) {
        bool made = ::mkdirat(at, name, 0700) == 0;
        if (!made && errno != EEXIST) return sys_error("mkdir", join(path, i + 1), errno);
        next = Fd(::openat(at, name, kDirFlags));
        if (made && next.valid()) {
          if (::fchown(next.get(), uid_, gid_) != 0) {
            return sys_error("chown", join(path, i + 1), errno);
          }
          const Components prefix(path.begin(), path.begin() + static_cast<std::ptrdiff_t>(i + 1));
          created_dirs_.emplace(join(prefix), deferred_.size());
          deferred_.push_back({prefix, kWorkspaceMode, std::nullopt});
        }
      }
      if (!next.valid()) {
        if (errno == ELOOP || errno == ENOTDIR) return -1;
        return sys_error("open", join(path, i + 1), errno);
      }
      dir = std::move(next);
      at = dir.get();
    }
    cached_parent_ = std::move(dir);
    cached_path_.emplace(path.begin(), path.begin() + static_cast<std::ptrdiff_t>(depth));
    return cached_parent_.valid() ? cached_parent_.get() : root_fd_;
  }

  int root_fd_;
  uid_t uid_;
  gid_t gid_;
  std::size_t skipped_ = 0;
  Fd cached_parent_;                       // the parent directory of the last entry
  std::optional<Components> cached_path_;  // its path; empty means the root
  std::vector<DeferredDir> deferred_;
  std::map<std::string, std::size_t> created_dirs_;  // path -> index in deferred_
};

Status copy_fd(int from, int to, const std::string& rel) {
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    const ssize_t n = ::read(from, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("read source of", rel, errno);
    }
    if (n == 0) return ok();
    if (auto written =
            write_all(to, std::string_view(buffer.data(), static_cast<std::size_t>(n)), rel);
        !written) {
      return written;
    }
  }
}

// Opens a directory that is about to be emptied and removed, making sure its owner may list
// it and unlink inside it (a tenant may have left it 000).
Result<Dir> open_for_removal(int parent, const char* name) {
  Fd fd(::openat(parent, name, kDirFlags));
  if (!fd.valid() && errno == EACCES) {
    // Without CAP_DAC_OVERRIDE the directory cannot even be opened; glibc implements the
    // no-follow chmod race-free (O_PATH and /proc/self/fd).
    if (::fchmodat(parent, name, 0700, AT_SYMLINK_NOFOLLOW) != 0) {
      return sys_error("chmod directory", name, errno);
    }
    fd = Fd(::openat(parent, name, kDirFlags));
  }
  if (!fd.valid()) return sys_error("open directory", name, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return sys_error("stat directory", name, errno);
  if ((st.st_mode & 0700) != 0700 || (st.st_mode & S_ISVTX) != 0) {
    if (::fchmod(fd.get(), 0700) != 0) return sys_error("chmod directory", name, errno);
  }
  return make_dir(std::move(fd), name);
}

}  // namespace

Result<WorkspaceRoot> WorkspaceRoot::open(const std::string& data_dir, uid_t owner_uid,
                                          gid_t owner_gid) {
  if (data_dir.empty() || data_dir.front() != '/') {
    return Error{Errc::invalid_argument, "data_dir must be an absolute path: " + data_dir};
  }
  struct stat st {};
  bool made = false;
  if (::lstat(data_dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return sys_error("stat", data_dir, errno);
    if (::mkdir(data_dir.c_str(), kWorkspaceMode) != 0 && errno != EEXIST) {
      return sys_error("create data_dir", data_dir, errno);
    }
    made = true;
    if (::lstat(data_dir.c_str(), &st) != 0) return sys_error("stat", data_dir, errno);
  }
  if (S_ISLNK(st.st_mode)) {
    return Error{Errc::invalid_argument, "data_dir is a symlink; refusing it: " + data_dir};
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error{Errc::invalid_argument, "data_dir is not a directory: " + data_dir};
  }
  Fd data(::open(data_dir.c_str(), kDirFlags));
  if (!data.valid()) return sys_error("open data_dir", data_dir, errno);
  if (made && ::fchmod(data.get(), kWorkspaceMode) != 0) {
    return sys_error("chmod data_dir", data_dir, errno);
  }

  const std::string where = data_dir + "/workspaces";
  if (::mkdirat(data.get(), "workspaces", 0700) != 0 && errno != EEXIST) {
    return sys_error("create", where, errno);
  }
  if (::fstatat(data.get(), "workspaces", &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return sys_error("stat", where, errno);
  }
  if (S_ISLNK(st.st_mode)) {
    return Error{Errc::invalid_argument, where + " is a symlink; refusing it"};
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error{Errc::invalid_argument, where + " is not a directory"};
  }
  Fd root(::openat(data.get(), "workspaces", kDirFlags));
  if (!root.valid()) return sys_error("open", where, errno);
  if (::fstat(root.get(), &st) != 0) return sys_error("stat", where, errno);
  if (st.st_uid != ::geteuid() || st.st_gid != ::getegid()) {
    if (::fchown(root.get(), ::geteuid(), ::getegid()) != 0)
      return sys_error("chown", where, errno);
  }
  if ((st.st_mode & 07777) != kRootMode && ::fchmod(root.get(), kRootMode) != 0) {
    return sys_error("chmod", where, errno);
  }
  return WorkspaceRoot(root.release(), owner_uid, owner_gid);
}

WorkspaceRoot::WorkspaceRoot(WorkspaceRoot&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      owner_uid_(other.owner_uid_),
      owner_gid_(other.owner_gid_) {}

WorkspaceRoot& WorkspaceRoot::operator=(WorkspaceRoot&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    owner_uid_ = other.owner_uid_;
    owner_gid_ = other.owner_gid_;
  }
  return *this;
}

WorkspaceRoot::~WorkspaceRoot() {
  if (fd_ >= 0) ::close(fd_);
}

bool WorkspaceRoot::exists(const std::string& id) const {
  if (!check_id(id)) return false;
  struct stat st {};
  return ::fstatat(fd_, id.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

Result<bool> WorkspaceRoot::is_empty(const std::string& id) const {
  if (auto valid = check_id(id); !valid) return valid.error();
  Fd fd(::openat(fd_, id.c_str(), kDirFlags));
  if (!fd.valid()) {
    if (errno == ENOENT) return Error{Errc::not_found, "no workspace for this id"};
    return sys_error("open workspace", "", errno);
  }
  auto dir = make_dir(std::move(fd), "");
  if (!dir) return dir.error();
  for (;;) {
    errno = 0;
    const dirent* ent = ::readdir(dir->get());
    if (ent == nullptr) {
      if (errno != 0) return sys_error("read workspace", "", errno);
      return true;
    }
    if (!is_dot_or_dotdot(ent->d_name)) return false;
  }
}

Result<bool> WorkspaceRoot::create(const std::string& id) {
  if (auto valid = check_id(id); !valid) return valid.error();
  if (::mkdirat(fd_, id.c_str(), 0700) != 0) {
    if (errno != EEXIST) return sys_error("create workspace", "", errno);
    if (!exists(id)) {
      return Error{Errc::conflict, "the workspace name is taken by something not a directory"};
    }
    return false;
  }
  Fd fd(::openat(fd_, id.c_str(), kDirFlags));
  Status status = ok();
  if (!fd.valid()) {
    status = sys_error("open workspace", "", errno);
  } else if (::fchown(fd.get(), owner_uid_, owner_gid_) != 0) {
    status = sys_error("chown workspace", "", errno);
  } else if (::fchmod(fd.get(), kWorkspaceMode) != 0) {
    status = sys_error("chmod workspace", "", errno);
  }
  if (!status) {
    ::unlinkat(fd_, id.c_str(), AT_REMOVEDIR);
    return status.error();
  }
  return true;
}

Status WorkspaceRoot::fill_from_tar(const std::string& id, std::string_view tar_bytes,
                                    std::string_view strip_prefix) {
  if (auto valid = check_id(id); !valid) return valid;
  auto strip = split_relative(strip_prefix);
  if (!strip) return Error{Errc::invalid_argument, "strip prefix must be a relative path"};
  Fd root(::openat(fd_, id.c_str(), kDirFlags));
  if (!root.valid()) {
    if (errno == ENOENT) return Error{Errc::not_found, "no workspace for this id"};
    return sys_error("open workspace", "", errno);
  }

  // Where an archive path lands in the workspace; nullopt when it is outside the prefix.
  auto place = [&](std::string_view path) -> Result<std::optional<Components>> {
    auto parts = split_relative(path);
    if (!parts) return parts.error();
    if (parts->size() < strip->size() ||
        !std::equal(strip->begin(), strip->end(), parts->begin())) {
      return std::optional<Components>();
    }
    parts->erase(parts->begin(), parts->begin() + static_cast<std::ptrdiff_t>(strip->size()));
    return std::optional<Components>(std::move(*parts));
  };

  struct Extracted {
    std::string_view data;
    mode_t mode;
    std::int64_t mtime;
  };
  std::map<std::string, Extracted> files;  // regular files made by this call, for hard links
  TreeWriter writer(root.get(), owner_uid_, owner_gid_);
  TarReader reader(tar_bytes);
  std::size_t skipped = 0;
  auto write_data = [](std::string_view data) {
    return [data](int fd, const std::string& rel) { return write_all(fd, data, rel); };
  };

  for (;;) {
    auto next = reader.next();
    if (!next) return next.error();
    if (!*next) break;
    const TarEntry& entry = **next;
    auto placed = place(entry.path);
    if (!placed) return placed.error();
    if (!*placed) {
      ++skipped;
      continue;
    }
    const Components& path = **placed;
    const timespec mtime = to_timespec(entry.mtime);
    Result<bool> made = false;
    switch (entry.type) {
      case TarEntryType::dir:
        made = writer.add_dir(path, entry.mode, mtime);
        break;
      case TarEntryType::file:
        made = writer.add_file(path, entry.mode, mtime, write_data(entry.data));
        if (made && *made) files[join(path)] = {entry.data, entry.mode, entry.mtime};
        break;
      case TarEntryType::symlink:
        made = writer.add_symlink(path, entry.link_target, mtime);
        break;
      case TarEntryType::hardlink: {
        auto target = place(entry.link_target);
        auto found = target && *target ? files.find(join(**target)) : files.end();
        if (found == files.end()) {
          ++skipped;
          break;
        }
        const Extracted copy = found->second;
        made = writer.add_file(path, copy.mode, to_timespec(copy.mtime), write_data(copy.data));
        if (made && *made) files[join(path)] = copy;
        break;
      }
      case TarEntryType::other:
        ++skipped;
        break;
    }
    if (!made) return made.error();
  }
  if (auto finished = writer.finish(); !finished) return finished;
  skipped += writer.skipped();
  if (skipped != 0) kLog.info("workspace fill skipped entries", {{"id", id}, {"skipped", skipped}});
  return ok();
}

Status WorkspaceRoot::fill_from_dir(const std::string& id, const std::string& source_dir) {
  if (auto valid = check_id(id); !valid) return valid;
  Fd source(::open(source_dir.c_str(), kDirFlags));
  if (!source.valid()) {
    // O_NOFOLLOW|O_DIRECTORY on a symlink fails with ELOOP or ENOTDIR.
    if (errno == ELOOP || errno == ENOTDIR) {
      return Error{Errc::invalid_argument,
                   "the workspace source is a symlink or not a directory; refusing it"};
    }
    if (errno == ENOENT) return Error{Errc::not_found, "the workspace source does not exist"};
    return sys_error("open workspace source", "", errno);
  }
  Fd root(::openat(fd_, id.c_str(), kDirFlags));
  if (!root.valid()) {
    if (errno == ENOENT) return Error{Errc::not_found, "no workspace for this id"};
    return sys_error("open workspace", "", errno);
  }

  struct Frame {
    Dir dir;
    Components path;
  };
  std::vector<Frame> stack;
  {
    auto dir = make_dir(std::move(source), "");
    if (!dir) return dir.error();
    stack.push_back({std::move(*dir), {}});
  }
  TreeWriter writer(root.get(), owner_uid_, owner_gid_);
  std::size_t skipped = 0;
  std::vector<char> link_buffer(PATH_MAX + 1);

  while (!stack.empty()) {
    errno = 0;
    const dirent* ent = ::readdir(stack.back().dir.get());
    if (ent == nullptr) {
      if (errno != 0) return sys_error("read source directory", join(stack.back().path), errno);
      stack.pop_back();
      continue;
    }
    if (is_dot_or_dotdot(ent->d_name)) continue;
    const std::string name = ent->d_name;
    const int at = stack.back().dir.fd();
    Components path = stack.back().path;
    path.push_back(name);
    const std::string rel = join(path);

    struct stat st {};
    if (::fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed while we copy
      return sys_error("stat source", rel, errno);
    }
    Result<bool> made = false;
    if (S_ISDIR(st.st_mode)) {
      if (path.size() > kMaxCopyDepth) {
        return Error{Errc::invalid_argument, "the workspace source is deeper than " +
                                                 std::to_string(kMaxCopyDepth) + " levels"};
      }
      made = writer.add_dir(path, st.st_mode & 0777, st.st_mtim);
      if (!made) return made.error();
      Fd sub(::openat(at, name.c_str(), kDirFlags));
      if (!sub.valid()) return sys_error("open source", rel, errno);
      auto dir = make_dir(std::move(sub), rel);
      if (!dir) return dir.error();
      stack.push_back({std::move(*dir), std::move(path)});
      continue;
    }
    if (S_ISREG(st.st_mode)) {
      // O_NONBLOCK: if the entry was swapped for a FIFO, opening it must not hang.
      Fd from(
          ::openat(at, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
      if (!from.valid()) return sys_error("open source", rel, errno);
      struct stat opened {};
      if (::fstat(from.get(), &opened) != 0) return sys_error("stat source", rel, errno);
      if (!S_ISREG(opened.st_mode)) {
        ++skipped;
        continue;
      }
      made = writer.add_file(
          path, opened.st_mode & 0777, opened.st_mtim,
          [&from](int fd, const std::string& file) { return copy_fd(from.get(), fd, file); });
    } else if (S_ISLNK(st.st_mode)) {
      const ssize_t n = ::readlinkat(at, name.c_str(), link_buffer.data(), link_buffer.size());
      if (n < 0) return sys_error("read link", rel, errno);
      if (static_cast<std::size_t>(n) >= link_buffer.size()) {
        return Error{Errc::io, "symlink target too long: " + rel};
      }
      made = writer.add_symlink(path, std::string(link_buffer.data(), static_cast<std::size_t>(n)),
                                st.st_mtim);
    } else {
      ++skipped;  // devices, FIFOs, sockets
    }
    if (!made) return made.error();
  }
  if (auto finished = writer.finish(); !finished) return finished;
  skipped += writer.skipped();
  if (skipped != 0) kLog.info("workspace fill skipped entries", {{"id", id}, {"skipped", skipped}});
  return ok();
}

Result<std::uint64_t> WorkspaceRoot::remove(const std::string& id) {
  if (auto valid = check_id(id); !valid) return valid.error();
  struct stat st {};
  if (::fstatat(fd_, id.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::uint64_t{0};
    return sys_error("stat workspace", "", errno);
  }
  const auto blocks_of = [](const struct stat& s) {
    return static_cast<std::uint64_t>(s.st_blocks) * 512;
  };
  if (!S_ISDIR(st.st_mode)) {
    // Not made by create(); remove the entry itself, never what it points to.
    if (::unlinkat(fd_, id.c_str(), 0) != 0) return sys_error("remove workspace", "", errno);
    return blocks_of(st);
  }
  const dev_t device = st.st_dev;

  struct Frame {
    Dir dir;
    std::string name;        // in the parent frame (or in the workspaces root)
    bool saw_entry = false;  // this pass over the directory found something
  };
  std::vector<Frame> stack;
  {
    auto dir = open_for_removal(fd_, id.c_str());
    if (!dir) return dir.error();
    stack.push_back({std::move(*dir), id});
  }
  std::uint64_t freed = 0;
  std::uint64_t moved = 0;  // subtrees moved up to bound the open handles

  while (!stack.empty()) {
    Frame& top = stack.back();
    const int at = top.dir.fd();
    errno = 0;
    const dirent* ent = ::readdir(top.dir.get());
    if (ent == nullptr) {
      if (errno != 0) return sys_error("read directory", "", errno);
      if (top.saw_entry) {
        // Entries can land behind the read position (a moved-up subtree); look again until a
        // whole pass finds the directory empty.
        top.saw_entry = false;
        ::rewinddir(top.dir.get());
        continue;
      }
      if (::fstat(at, &st) != 0) return sys_error("stat directory", "", errno);
      const std::string name = std::move(top.name);
      stack.pop_back();
      const int parent = stack.empty() ? fd_ : stack.back().dir.fd();
      if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0) {
        return sys_error("remove directory", name, errno);
      }
      freed += blocks_of(st);
      continue;
    }
    if (is_dot_or_dotdot(ent->d_name)) continue;
    top.saw_entry = true;
    const std::string name = ent->d_name;
    if (::fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return sys_error("stat", name, errno);
    }
    if (!S_ISDIR(st.st_mode)) {
      if (::unlinkat(at, name.c_str(), 0) != 0) {
        if (errno == ENOENT) continue;
        return sys_error("remove", name, errno);
      }
      if (st.st_nlink <= 1) freed += blocks_of(st);
      continue;
    }
    if (st.st_dev != device) {
      return Error{Errc::conflict, "the workspace contains another file system; not removing it"};
    }
    if (stack.size() >= kMaxRemoveHandles) {
      // Move the subtree to the workspace root and let the root's next pass handle it, so
      // the open handles stay bounded at any depth.
      const int workspace = stack.front().dir.fd();
      for (;;) {
        const std::string to = ".sandboxd-purge-" + std::to_string(moved++);
        if (::renameat2(at, name.c_str(), workspace, to.c_str(), RENAME_NOREPLACE) == 0) break;
        if (errno != EEXIST) return sys_error("move up directory", name, errno);
      }
      continue;
    }
    auto dir = open_for_removal(at, name.c_str());
    if (!dir) return dir.error();
    stack.push_back({std::move(*dir), name});
  }
  return freed;
}

std::vector<std::string> WorkspaceRoot::list_ids() const {
  std::vector<std::string> ids;
  // A fresh open file description, so concurrent listings do not share a read offset.
  auto dir = make_dir(Fd(::openat(fd_, ".", kDirFlags)), "");
  if (!dir) return ids;
  while (const dirent* ent = ::readdir(dir->get())) {
    if (is_dot_or_dotdot(ent->d_name)) continue;
    struct stat st {};
    if (::fstatat(dir->fd(), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
      ids.emplace_back(ent->d_name);
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace sandboxd::control
