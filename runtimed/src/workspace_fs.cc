#include "workspace_fs.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace sandboxd::runtimed {

namespace {

std::vector<std::string> components(const std::string& rel) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= rel.size()) {
    std::size_t slash = rel.find('/', start);
    if (slash == std::string::npos) slash = rel.size();
    std::string part = rel.substr(start, slash - start);
    if (!part.empty() && part != ".") parts.push_back(part);
    start = slash + 1;
  }
  return parts;
}

Error open_error(const std::string& rel, int err) {
  if (err == ENOENT) return Error{Errc::not_found, rel + ": no such directory"};
  if (err == ELOOP || err == EXDEV) {
    return Error{Errc::invalid_argument,
                 rel + ": a component of the path is a symbolic link; symlinks are never followed"};
  }
  if (err == ENOTDIR) return Error{Errc::invalid_argument, rel + ": not a directory"};
  return Error{Errc::io, rel + ": " + std::strerror(err)};
}

// One component at a time, each opened with O_NOFOLLOW.
Result<int> walk(int root_fd, const std::string& rel) {
  int fd = ::dup(root_fd);
  if (fd < 0) return open_error(rel, errno);
  for (const std::string& part : components(rel)) {
    int next = ::openat(fd, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    ::close(fd);
    if (next < 0) return open_error(rel, err);
    fd = next;
  }
  return fd;
}

}  // namespace

Result<int> open_dir_beneath(const std::string& root, const std::string& rel) {
  int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) return open_error(".", errno);
  if (rel == "." || rel.empty()) return root_fd;
  open_how how{};
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
  if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
    auto walked = walk(root_fd, rel);
    ::close(root_fd);
    return walked;
  }
  int err = errno;
  ::close(root_fd);
  if (fd < 0) return open_error(rel, err);
  return static_cast<int>(fd);
}

Status make_dirs_beneath(const std::string& root, const std::string& rel) {
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return open_error(".", errno);
  for (const std::string& part : components(rel)) {
    if (::mkdirat(fd, part.c_str(), 0755) != 0 && errno != EEXIST) {
      int err = errno;
      ::close(fd);
      return open_error(rel, err);
    }
    int next = ::openat(fd, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    ::close(fd);
    if (next < 0) return open_error(rel, err);
    fd = next;
  }
  ::close(fd);
  return ok();
}

}  // namespace sandboxd::runtimed
