#include "files.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/fsuid.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "base/json_escape.h"
#include "tar_encoder.h"

namespace sandboxd::control::files {
namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
constexpr mode_t kNewDirMode = 0755;
constexpr mode_t kNewFileMode = 0644;
constexpr std::size_t kCopyBlock = 64 * 1024;
// Directory handles a recursive listing holds at most, whatever files.list_max_depth says.
constexpr std::uint32_t kMaxListHandles = 256;

// Set once the kernel answered ENOSYS to openat2: later opens go straight to the walk.
std::atomic<bool> g_no_openat2{false};

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

std::string child_of(const std::string& rel, const std::string& name) {
  return rel.empty() ? name : rel + "/" + name;
}

bool is_symlink_at(int dirfd, const std::string& name) {
  struct stat st {};
  return ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

// The no-openat2 resolution of SPEC §7: intermediate components with
// O_PATH|O_NOFOLLOW|O_DIRECTORY, the leaf with O_NOFOLLOW, no device change on the way.
int open_walk(int dirfd, const std::string& rel, int flags, mode_t mode) {
  struct stat root {};
  if (::fstat(dirfd, &root) != 0) return -errno;
  std::vector<std::string> parts;
  std::size_t pos = 0;
  while (pos <= rel.size()) {
    std::size_t slash = rel.find('/', pos);
    if (slash == std::string::npos) slash = rel.size();
    std::string part = rel.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return -EXDEV;  // parse_path refuses it; never climb regardless
    parts.push_back(std::move(part));
  }
  if (parts.empty()) parts.emplace_back(".");
  Fd current;
  int at = dirfd;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    Fd next(::openat(at, parts[i].c_str(), O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC));
    if (!next.valid()) {
      const int err = errno;
      return -(err == ENOTDIR && is_symlink_at(at, parts[i]) ? ELOOP : err);
    }
    struct stat st {};
    if (::fstat(next.get(), &st) != 0) return -errno;
    if (st.st_dev != root.st_dev) return -EXDEV;
    current = std::move(next);
    at = current.get();
  }
  const std::string& leaf = parts.back();
  Fd fd(::openat(at, leaf.c_str(), flags | O_NOFOLLOW, mode));
  if (!fd.valid()) {
    const int err = errno;
    return -(err == ENOTDIR && is_symlink_at(at, leaf) ? ELOOP : err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return -errno;
  if (S_ISLNK(st.st_mode)) return -ELOOP;  // O_PATH|O_NOFOLLOW opens a link itself
  if (st.st_dev != root.st_dev) return -EXDEV;
  return fd.release();
}

// The names in a directory (not . and ..), sorted bytewise. -errno on failure.
int read_names(int dirfd, std::vector<std::string>& names) {
  // A fresh open file description: fdopendir takes over the descriptor and its offset.
  const int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    const int err = errno;
    ::close(fd);
    return -err;
  }
  names.clear();
  int result = 0;
  for (;;) {
    errno = 0;
    const dirent* ent = ::readdir(dir);
    if (ent == nullptr) {
      if (errno != 0) result = -errno;
      break;
    }
    if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
    names.emplace_back(ent->d_name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return result;
}

int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

// Makes a new entry owned by the workspace owner. Under an FsIdentity of that owner it
// already is, and the call is skipped; as root it is a chown.
int give_to_owner(int fd, const Workspace& ws) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno;
  if (st.st_uid == ws.owner_uid() && st.st_gid == ws.owner_gid()) return 0;
  return ::fchown(fd, ws.owner_uid(), ws.owner_gid()) == 0 ? 0 : errno;
}

std::string random_hex(std::size_t bytes) {
  std::array<unsigned char, 16> raw{};
  bytes = std::min(bytes, raw.size());
  std::size_t got = 0;
  while (got < bytes) {
    const ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // the name only has to be unlikely to clash; O_EXCL catches a clash
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    out += kHex[raw[i] >> 4];
    out += kHex[raw[i] & 0xf];
  }
  return out;
}

// The directory that holds the last component of `path`, as a readable handle (it is
// fsynced after a rename). With `create`, missing directories are made one at a time
// (0755, owned by the workspace owner) and each is opened again without following links.
ApiResult<Fd> open_parent(const Workspace& ws, const FilePath& path, bool create) {
  Fd current(::openat(ws.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!current.valid()) return errno_answer(errno, "open", ".");
  const std::size_t depth = path.parts.size() - 1;
  if (depth == 0) return current;
  std::vector<std::string> parents(path.parts.begin(),
                                   path.parts.begin() + static_cast<std::ptrdiff_t>(depth));
  const std::string parent_rel = join(parents);
  int fd = open_beneath(ws.fd(), parent_rel, O_RDONLY | O_DIRECTORY, 0, ws.resolve());
  if (fd >= 0) return Fd(fd);
  if (fd != -ENOENT || !create) return errno_answer(-fd, "open", parent_rel);
  std::string rel;
  for (const std::string& name : parents) {
    rel = child_of(rel, name);
    fd = open_beneath(current.get(), name, O_RDONLY | O_DIRECTORY, 0, ws.resolve());
    if (fd == -ENOENT) {
      const bool made = ::mkdirat(current.get(), name.c_str(), kNewDirMode) == 0;
      if (!made && errno != EEXIST) return errno_answer(errno, "create directory", rel);
      fd = open_beneath(current.get(), name, O_RDONLY | O_DIRECTORY, 0, ws.resolve());
      if (fd >= 0 && made) {
        int err = give_to_owner(fd, ws);
        if (err == 0 && ::fchmod(fd, kNewDirMode) != 0) err = errno;
        if (err != 0) {
          ::close(fd);
          return errno_answer(err, "set up directory", rel);
        }
      }
    }
    if (fd < 0) return errno_answer(-fd, "open", rel);
    current = Fd(fd);
  }
  return current;
}

ApiResult<WriteResult> replace_file(const Workspace& ws, const FilePath& path, int parent,
                                    std::string_view data) {
  const std::string rel = path.text();
  const std::string& leaf = path.parts.back();
  bool created = false;
  mode_t mode = kNewFileMode;
  struct stat st {};
  if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) return errno_answer(errno, "stat", rel);
    created = true;
  } else if (S_ISLNK(st.st_mode)) {
    return errno_answer(ELOOP, "open", rel);
  } else if (S_ISDIR(st.st_mode)) {
    return errno_answer(EISDIR, "open", rel);
  } else if (!S_ISREG(st.st_mode)) {
    return invalid_path("not_a_file", rel + " is not a regular file");
  } else {
    mode = st.st_mode & 0777;  // setuid, setgid and sticky are dropped
  }

  std::string temp;
  Fd fd;
  for (int attempt = 0; attempt < 8 && !fd.valid(); ++attempt) {
    temp = ".sandboxd-put-" + random_hex(8) + ".tmp";
    fd = Fd(
        ::openat(parent, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid() && errno != EEXIST)
      return errno_answer(errno, "create a temporary file in", rel);
  }
  if (!fd.valid()) return ApiError::internal("cannot pick a temporary file name in " + rel);
  int err = write_all(fd.get(), data);
  if (err == 0) err = give_to_owner(fd.get(), ws);
  if (err == 0 && ::fchmod(fd.get(), mode) != 0) err = errno;
  if (err == 0 && ::fsync(fd.get()) != 0) err = errno;
  if (err == 0 && ::renameat(parent, temp.c_str(), parent, leaf.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlinkat(parent, temp.c_str(), 0);
    return errno_answer(err, "write", rel);
  }
  ::fsync(parent);  // the rename is done; a failed directory sync does not undo it
  return WriteResult{data.size(), data.size(), created};
}

ApiResult<WriteResult> append_file(const Workspace& ws, const FilePath& path, int parent,
                                   std::string_view data) {
  const std::string rel = path.text();
  const std::string& leaf = path.parts.back();
  constexpr int kFlags = O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY;
  bool created = false;
  Fd fd;
  for (int attempt = 0; attempt < 8 && !fd.valid(); ++attempt) {
    int opened = open_beneath(parent, leaf, kFlags, 0, ws.resolve());
    if (opened == -ENOENT) {
      opened = open_beneath(parent, leaf, kFlags | O_CREAT | O_EXCL, kNewFileMode, ws.resolve());
      if (opened == -EEXIST) continue;  // made meanwhile: open it again
      created = opened >= 0;
    }
    if (opened == -ENXIO) return invalid_path("not_a_file", rel + " is not a regular file");
    if (opened < 0) return errno_answer(-opened, "open", rel);
    fd = Fd(opened);
  }
  if (!fd.valid()) return ApiError::internal("cannot open " + rel + " for appending");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_answer(errno, "stat", rel);
  if (!S_ISREG(st.st_mode)) return invalid_path("not_a_file", rel + " is not a regular file");
  if (st.st_nlink > 1) {
    return invalid_path("hard_link_refused",
                        rel + " has more than one hard link; appending is refused");
  }
  int err = 0;
  if (created) {
    err = give_to_owner(fd.get(), ws);
    if (err == 0 && ::fchmod(fd.get(), kNewFileMode) != 0) err = errno;
  }
  if (err == 0) err = write_all(fd.get(), data);
  if (err == 0 && ::fsync(fd.get()) != 0) err = errno;
  if (err == 0 && ::fstat(fd.get(), &st) != 0) err = errno;
  if (err != 0) return errno_answer(err, "append to", rel);
  return WriteResult{data.size(), static_cast<std::uint64_t>(st.st_size), created};
}

EntryType type_of(mode_t mode) {
  if (S_ISREG(mode)) return EntryType::file;
  if (S_ISDIR(mode)) return EntryType::dir;
  if (S_ISLNK(mode)) return EntryType::symlink;
  return EntryType::other;
}

// A symlink's text; empty when it cannot be read.
std::string read_link(int dirfd, const std::string& name) {
  std::vector<char> buffer(4096);
  for (;;) {
    const ssize_t n = ::readlinkat(dirfd, name.c_str(), buffer.data(), buffer.size());
    if (n < 0) return {};
    if (static_cast<std::size_t>(n) < buffer.size()) {
      return std::string(buffer.data(), static_cast<std::size_t>(n));
    }
    if (buffer.size() >= 1 << 20) return {};
    buffer.resize(buffer.size() * 2);
  }
}

}  // namespace

// ---------------------------------------------------------------------------- paths

std::string FilePath::text() const { return parts.empty() ? "." : join(parts); }

ApiError invalid_path(std::string_view rule, std::string_view why) {
  std::string message(rule);
  message += ": ";
  message += why;
  return ApiError{400, "invalid_path", std::move(message), {}};
}

ApiResult<FilePath> parse_path(const std::optional<std::string>& raw, PathUse use) {
  const bool tree = use == PathUse::tree;
  if (!raw) {
    if (tree) return FilePath{};
    return invalid_path("missing", "the query parameter path is required");
  }
  std::string_view p = *raw;
  if (p.empty()) {
    if (tree) return FilePath{};
    return invalid_path("empty", "the path is empty");
  }
  if (p.size() > kMaxPathBytes) {
    return invalid_path("too_long",
                        "the path is longer than " + std::to_string(kMaxPathBytes) + " bytes");
  }
  if (p.find('\0') != std::string_view::npos)
    return invalid_path("nul", "the path contains a NUL byte");
  for (std::size_t i = 0; i < p.size();) {
    const std::size_t n = utf8_sequence(p, i);
    if (n == 0) return invalid_path("not_utf8", "the path is not valid UTF-8");
    i += n;
  }
  if (p.front() == '/')
    return invalid_path("absolute", "the path must be relative to the workspace root");
  FilePath out;
  std::string_view last;
  while (true) {
    const std::size_t slash = p.find('/');
    const std::string_view part = p.substr(0, slash);
    last = part;
    if (part == "..") return invalid_path("dot_dot", "a .. component is not allowed");
    if (part.size() > kMaxComponentBytes) {
      return invalid_path("component_too_long", "a path component is longer than " +
                                                    std::to_string(kMaxComponentBytes) + " bytes");
    }
    if (!part.empty() && part != ".") out.parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    p.remove_prefix(slash + 1);
  }
  if (!tree) {
    if (last.empty())
      return invalid_path("trailing_slash", "a trailing / is allowed only for list and export");
    if (last == "." || out.parts.empty())
      return invalid_path("not_a_file", "the path names a directory, not a file");
  }
  if (use == PathUse::write && out.parts.front() == ".sandboxd") {
    return invalid_path("reserved_path",
                        ".sandboxd/ is reserved for sandboxd; it cannot be written");
  }
  return out;
}

// ---------------------------------------------------------------------------- resolution

Fd::Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) reset(std::exchange(other.fd_, -1));
  return *this;
}

Fd::~Fd() { reset(); }

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

int open_beneath(int dirfd, const std::string& rel, int flags, mode_t mode, Resolve how) {
  const std::string path = rel.empty() ? "." : rel;
  flags |= O_CLOEXEC;
  if (how == Resolve::automatic && !g_no_openat2.load(std::memory_order_relaxed)) {
    open_how request{};
    request.flags = static_cast<std::uint64_t>(flags);
    request.mode = (flags & O_CREAT) != 0 ? mode : 0;
    request.resolve =
        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    for (int attempt = 0;; ++attempt) {
      const long fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &request, sizeof request);
      if (fd >= 0) return static_cast<int>(fd);
      const int err = errno;
      // EAGAIN: a concurrent rename or mount raced the lookup; the kernel asks for a retry.
      if ((err == EINTR || err == EAGAIN) && attempt < 16) continue;
      if (err != ENOSYS) return -err;
      g_no_openat2.store(true, std::memory_order_relaxed);
      break;
    }
  }
  return open_walk(dirfd, path, flags, mode);
}

FsIdentity::FsIdentity(uid_t uid, gid_t gid) {
  // The group first, while the fs capabilities that a non-zero fsuid drops are still there.
  saved_gid_ = static_cast<gid_t>(::setfsgid(gid));
  saved_uid_ = static_cast<uid_t>(::setfsuid(uid));
}

FsIdentity::~FsIdentity() {
  ::setfsuid(saved_uid_);
  ::setfsgid(saved_gid_);
}

ApiResult<Workspace> Workspace::open(const std::string& workspaces_dir, const std::string& id,
                                     Resolve how) {
  if (id.empty() || id.size() > 255 ||
      id.find_first_of(std::string_view("/.\0", 3)) != std::string::npos) {
    return ApiError::internal("workspace id is not a canonical id");
  }
  Fd dir(::open(workspaces_dir.c_str(), kDirFlags));
  if (!dir.valid()) return ApiError::internal("cannot open the workspaces directory");
  Fd root(::openat(dir.get(), id.c_str(), kDirFlags));
  if (!root.valid()) {
    if (errno == ENOENT) return ApiError::not_found("sandbox " + id + " has no workspace");
    return ApiError::internal("cannot open the workspace of " + id + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(root.get(), &st) != 0)
    return ApiError::internal("cannot stat the workspace of " + id);
  return Workspace(std::move(root), st.st_uid, st.st_gid, how);
}

ApiResult<Workspace> Workspace::open_dir(const std::string& dir, Resolve how) {
  Fd root(::open(dir.c_str(), kDirFlags));
  if (!root.valid()) return ApiError::not_found("no such workspace directory");
  struct stat st {};
  if (::fstat(root.get(), &st) != 0) return ApiError::internal("cannot stat the workspace");
  return Workspace(std::move(root), st.st_uid, st.st_gid, how);
}

int Workspace::open(const FilePath& path, int flags, mode_t mode) const {
  return open_beneath(root_.get(), join(path.parts), flags, mode, how_);
}

ApiError errno_answer(int err, std::string_view what, std::string_view rel) {
  const std::string where = rel.empty() ? std::string(".") : std::string(rel);
  switch (err) {
    case ENOENT:
      return ApiError::not_found("no such file or directory: " + where);
    case ELOOP:
      return invalid_path(
          "symlink_refused",
          "a component of the path is a symbolic link; symlinks are never followed");
    case ENOTDIR:
      return invalid_path("not_a_directory", where + " or one of its parents is not a directory");
    case EISDIR:
      return invalid_path("is_a_directory", where + " is a directory");
    case EXDEV:
      return invalid_path("crosses_mount", "the path crosses a mount point");
    case EACCES:
    case EPERM:
      return invalid_path("permission_denied", "permission denied: " + where);
    case ENAMETOOLONG:
      return invalid_path("too_long", "the path is too long");
    case ENOSPC:
    case EDQUOT:
      return ApiError{507,
                      "insufficient_storage",
                      "the disk is full (" + std::string(what) + " " + where + ")",
                      {}};
    case EMFILE:
    case ENFILE:
      return ApiError::unavailable("too many open files; retry later");
    default:
      return ApiError::internal(std::string(what) + " " + where + ": " + std::strerror(err));
  }
}

// ---------------------------------------------------------------------------- operations

std::string_view entry_type_name(EntryType type) {
  switch (type) {
    case EntryType::file:
      return "file";
    case EntryType::dir:
      return "dir";
    case EntryType::symlink:
      return "symlink";
    case EntryType::other:
      return "other";
  }
  return "other";
}

ApiResult<ListResult> list(const Workspace& ws, const FilePath& path, const ListOptions& options) {
  struct Frame {
    Fd dir;
    std::string rel;
    std::uint32_t depth;  // of the entries in this directory; 1 for the listed one
    std::vector<std::string> names;
    std::size_t next = 0;
  };
  const int fd = ws.open(path, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return errno_answer(-fd, "open", path.text());
  std::vector<Frame> stack;
  stack.push_back(Frame{Fd(fd), join(path.parts), 1, {}, 0});
  if (int err = read_names(stack.back().dir.get(), stack.back().names); err < 0) {
    return errno_answer(-err, "read directory", path.text());
  }
  const std::uint32_t max_depth = std::min(options.max_depth, kMaxListHandles);
  // One entry past the limit tells that the listing is truncated.
  const std::size_t keep = options.limit;
  ListResult result;
  while (!stack.empty() && result.entries.size() <= keep) {
    Frame& top = stack.back();
    if (top.next == top.names.size()) {
      stack.pop_back();
      continue;
    }
    const std::string name = top.names[top.next++];
    const int dirfd = top.dir.get();
    const std::uint32_t depth = top.depth;
    ListEntry entry;
    entry.path = child_of(top.rel, name);
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed while we list
      entry.error = std::strerror(errno);
      result.entries.push_back(std::move(entry));
      continue;
    }
    entry.type = type_of(st.st_mode);
    entry.mode = st.st_mode & 07777;
    entry.mtime = st.st_mtim.tv_sec;
    if (entry.type == EntryType::file) entry.size = static_cast<std::uint64_t>(st.st_size);
    if (entry.type == EntryType::symlink) entry.target = read_link(dirfd, name);
    std::optional<Frame> child;
    if (entry.type == EntryType::dir && options.recursive) {
      const bool skip = !options.all && std::find(options.skip.begin(), options.skip.end(), name) !=
                                            options.skip.end();
      if (skip) {
        entry.skipped = true;
      } else if (depth < max_depth) {
        Fd sub(::openat(dirfd, name.c_str(), kDirFlags));
        int err = sub.valid() ? 0 : errno;
        std::vector<std::string> names;
        if (err == 0) err = -read_names(sub.get(), names);
        if (err != 0) {
          entry.error = std::strerror(err);
        } else {
          child = Frame{std::move(sub), entry.path, depth + 1, std::move(names), 0};
        }
      }
    }
    result.entries.push_back(std::move(entry));
    if (child) stack.push_back(std::move(*child));  // `top` is not used after this
  }
  std::sort(result.entries.begin(), result.entries.end(),
            [](const ListEntry& a, const ListEntry& b) { return a.path < b.path; });
  if (result.entries.size() > keep) {
    result.entries.resize(keep);
    result.truncated = true;
  }
  return result;
}

ApiResult<std::string> read_file(const Workspace& ws, const FilePath& path,
                                 std::uint64_t read_max) {
  const std::string rel = path.text();
  Fd fd(ws.open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) return errno_answer(-fd.get(), "open", rel);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_answer(errno, "stat", rel);
  if (S_ISDIR(st.st_mode)) return errno_answer(EISDIR, "read", rel);
  if (!S_ISREG(st.st_mode)) return invalid_path("not_a_file", rel + " is not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > read_max) {
    return ApiError{400,
                    "file_too_large",
                    "file is " + human_size(size) + "; the read limit is " + human_size(read_max) +
                        " (files.read_max); use export",
                    {}};
  }
  std::string data(static_cast<std::size_t>(size), '\0');
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_answer(errno, "read", rel);
    }
    if (n == 0) break;  // shrank since the fstat: serve what is there
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  return data;
}

ApiResult<WriteResult> write_file(const Workspace& ws, const FilePath& path, std::string_view data,
                                  bool append) {
  if (path.parts.empty())
    return invalid_path("not_a_file", "the path names a directory, not a file");
  auto parent = open_parent(ws, path, true);
  if (!parent) return parent.error();
  return append ? append_file(ws, path, parent->get(), data)
                : replace_file(ws, path, parent->get(), data);
}

std::string human_size(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  static constexpr std::array<const char*, 5> kUnits{"KiB", "MiB", "GiB", "TiB", "PiB"};
  std::size_t unit = 0;
  std::uint64_t scale = 1024;
  while (unit + 1 < kUnits.size() && bytes / scale >= 1024) {
    scale *= 1024;
    ++unit;
  }
  if (bytes % scale == 0) return std::to_string(bytes / scale) + " " + kUnits[unit];
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s",
                static_cast<double>(bytes) / static_cast<double>(scale), kUnits[unit]);
  return text;
}

// ---------------------------------------------------------------------------- export

ExcludeSet::ExcludeSet(const std::vector<std::string>& patterns) {
  for (std::string p : patterns) {
    while (p.starts_with("./")) p.erase(0, 2);
    while (!p.empty() && p.front() == '/') p.erase(0, 1);
    while (!p.empty() && p.back() == '/') p.pop_back();
    if (p.empty()) continue;
    (p.find('/') == std::string::npos ? names_ : paths_).push_back(std::move(p));
  }
}

bool ExcludeSet::excluded(std::string_view rel, std::string_view name) const {
  const std::string r(rel), n(name);
  for (const auto& p : names_) {
    if (::fnmatch(p.c_str(), n.c_str(), 0) == 0) return true;
  }
  for (const auto& p : paths_) {
    if (::fnmatch(p.c_str(), r.c_str(), FNM_PATHNAME) == 0) return true;
  }
  return false;
}

struct ExportWalker::Frame {
  Fd dir;
  std::string rel;  // relative to the export root
  std::size_t depth = 1;
  std::vector<std::string> names;
  std::size_t next = 0;
};

ExportWalker::ExportWalker(Workspace ws, ExportOptions options)
    : ws_(std::move(ws)), options_(std::move(options)) {}

ExportWalker::~ExportWalker() = default;

ApiResult<std::unique_ptr<ExportWalker>> ExportWalker::open(Workspace ws, const FilePath& path,
                                                            ExportOptions options) {
  const int fd = ws.open(path, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return errno_answer(-fd, "open", path.text());
  Frame root;
  root.dir = Fd(fd);
  if (int err = read_names(root.dir.get(), root.names); err < 0) {
    return errno_answer(-err, "read directory", path.text());
  }
  std::unique_ptr<ExportWalker> walker(new ExportWalker(std::move(ws), std::move(options)));
  walker->stack_.push_back(std::move(root));
  return walker;
}

Result<bool> ExportWalker::next(std::string& out, std::size_t target) {
  const std::size_t start = out.size();
  while (!done_ && out.size() - start < target) {
    if (file_.valid()) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(file_left_, kCopyBlock));
      const std::size_t at = out.size();
      out.resize(at + want);
      const ssize_t n = ::read(file_.get(), out.data() + at, want);
      if (n < 0 && errno == EINTR) {
        out.resize(at);
        continue;
      }
      if (n <= 0) {
        out.resize(at);
        return Error{Errc::io, n == 0 ? file_rel_ + " shrank while it was archived"
                                      : "read " + file_rel_ + ": " + std::strerror(errno)};
      }
      out.resize(at + static_cast<std::size_t>(n));
      file_left_ -= static_cast<std::uint64_t>(n);
      if (file_left_ == 0) {
        out += tar_padding(file_size_);
        file_.reset();
      }
      continue;
    }
    if (stack_.empty()) {
      out += tar_end();
      done_ = true;
      break;
    }
    Frame& top = stack_.back();
    if (top.next == top.names.size()) {
      stack_.pop_back();
      continue;
    }
    const std::string name = top.names[top.next++];
    if (auto added = add_entry(top, name, out); !added) return added.error();
  }
  return done_;
}

// Appends the header of one entry; a regular file's content follows through file_, a
// directory becomes the new top of the stack. `parent` may dangle after the call.
Status ExportWalker::add_entry(Frame& parent, const std::string& name, std::string& out) {
  const std::string rel = child_of(parent.rel, name);
  if (options_.excludes.excluded(rel, name)) return ok();
  const int dirfd = parent.dir.get();
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) ++skipped_;
    return ok();
  }
  TarMember member;
  member.path = rel;
  member.uid = options_.uid;
  member.gid = options_.gid;
  member.mtime = st.st_mtim.tv_sec;
  if (S_ISDIR(st.st_mode)) {
    member.type = TarMemberType::dir;
    member.mode = st.st_mode & 0777;
    if (parent.depth >= options_.max_depth) {
      ++skipped_;
      return ok();
    }
    Frame child;
    child.dir = Fd(::openat(dirfd, name.c_str(), kDirFlags));
    child.rel = rel;
    child.depth = parent.depth + 1;
    if (!child.dir.valid() || read_names(child.dir.get(), child.names) < 0) {
      ++skipped_;  // unreadable: stored empty
      out += tar_header(member);
      return ok();
    }
    out += tar_header(member);
    stack_.push_back(std::move(child));
    return ok();
  }
  if (S_ISLNK(st.st_mode)) {
    member.type = TarMemberType::symlink;
    member.mode = 0777;
    member.link_target = read_link(dirfd, name);
    if (member.link_target.empty()) {
      ++skipped_;
      return ok();
    }
    out += tar_header(member);
    return ok();
  }
  if (!S_ISREG(st.st_mode)) {
    ++skipped_;  // FIFOs, sockets, devices
    return ok();
  }
  // O_NONBLOCK: an entry swapped for a FIFO since the fstatat must not hang the open.
  Fd file(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  struct stat opened {};
  if (!file.valid() || ::fstat(file.get(), &opened) != 0 || !S_ISREG(opened.st_mode)) {
    ++skipped_;
    return ok();
  }
  member.type = TarMemberType::file;
  member.mode = opened.st_mode & 0777;
  member.mtime = opened.st_mtim.tv_sec;
  member.size = static_cast<std::uint64_t>(opened.st_size);
  out += tar_header(member);
  if (member.size > 0) {
    file_ = std::move(file);
    file_rel_ = rel;
    file_left_ = member.size;
    file_size_ = member.size;
  }
  return ok();
}

}  // namespace sandboxd::control::files
