#include "local_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace sandboxd::cli {

CliResult<std::string> read_small_file(const std::string& path, std::size_t limit) {
  int fd = path == "-" ? 0 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::string shown = path == "-" ? "stdin" : path;
  if (fd < 0) return CliError::local("cannot open " + shown + ": " + errno_text(errno));
  std::string out;
  char buf[64 * 1024];
  CliResult<std::string> result = out;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = CliError::local("cannot read " + shown + ": " + errno_text(errno));
      break;
    }
    if (n == 0) {
      result = std::move(out);
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > limit) {
      result = CliError::local(shown + " is larger than " + std::to_string(limit) + " bytes");
      break;
    }
  }
  if (fd != 0) ::close(fd);
  return result;
}

AtomicOutput::~AtomicOutput() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

CliStatus AtomicOutput::open(const std::string& path) {
  path_ = path;
  std::size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty()) return CliError::local(path + " names a directory, not a file");
  std::string tmpl =
      (slash == std::string::npos ? std::string() : dir) + "." + base + ".sandboxctl-XXXXXX";
  fd_ = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd_ < 0)
    return CliError::local("cannot create a file next to " + path + ": " + errno_text(errno));
  temp_ = tmpl;
  // mkostemp makes 0600; a download gets what a new file would get (0666 less the umask).
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd_, 0666 & ~mask);
  return {};
}

CliStatus AtomicOutput::write(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return CliError::local("writing " + path_ + " failed: " + errno_text(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

CliStatus AtomicOutput::commit() {
  if (::fsync(fd_) != 0)
    return CliError::local("writing " + path_ + " failed: " + errno_text(errno));
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    return CliError::local("cannot rename the download to " + path_ + ": " + errno_text(errno));
  }
  temp_.clear();
  return {};
}

}  // namespace sandboxd::cli
