#include "files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace sandboxd::store::detail {

namespace {

Error errno_error(const char* what, const std::filesystem::path& path, int err) {
  return Error{Errc::io, std::string(what) + " " + path.string() + ": " + std::strerror(err)};
}

}  // namespace

Status ensure_private_dir(const std::filesystem::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return errno_error("stat", dir, errno);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("mkdir", dir, errno);
    if (::lstat(dir.c_str(), &st) != 0) return errno_error("stat", dir, errno);
  }
  if (S_ISLNK(st.st_mode)) {
    return Error{
        Errc::invalid_argument,
        dir.string() + " is a symbolic link; sandboxd refuses to keep its state behind one"};
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error{Errc::invalid_argument, dir.string() + " exists and is not a directory"};
  }
  // O_NOFOLLOW|O_DIRECTORY pins the directory we checked, so the chmod cannot be redirected.
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno_error("open", dir, errno);
  Status out = ok();
  if ((st.st_mode & 07777) != 0700 && ::fchmod(fd, 0700) != 0)
    out = errno_error("chmod", dir, errno);
  ::close(fd);
  return out;
}

Status ensure_private_file(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == ELOOP) {
      return Error{Errc::invalid_argument,
                   file.string() + " is a symbolic link; sandboxd refuses to follow it"};
    }
    return errno_error("open", file, errno);
  }
  Status out = ok();
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    out = errno_error("stat", file, errno);
  } else if (!S_ISREG(st.st_mode)) {
    out = Error{Errc::invalid_argument, file.string() + " is not a regular file"};
  } else if ((st.st_mode & 07777) != 0600 && ::fchmod(fd, 0600) != 0) {
    out = errno_error("chmod", file, errno);
  }
  ::close(fd);
  return out;
}

Status sync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("open", dir, errno);
  Status out = ok();
  if (::fsync(fd) != 0) out = errno_error("fsync", dir, errno);
  ::close(fd);
  return out;
}

}  // namespace sandboxd::store::detail
