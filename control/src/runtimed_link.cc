#include "runtimed_link.h"

#include <fcntl.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "files.h"

namespace sandboxd::control {

namespace json = boost::json;

namespace {

constexpr const char* kNodeKey = "node.key";
constexpr const char* kSettingsName = "runtimed.json";
constexpr const char* kSocketName = "runtimed.sock";

std::string hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 15];
  }
  return out;
}

Error io_error(const std::string& what, int err) {
  return Error{Errc::io, what + ": " + std::strerror(err)};
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

// Reads the node key, or makes it when absent. The state directory belongs to the store
// (0700, no symlink, made before the control plane starts).
Result<std::array<unsigned char, 32>> load_node_key(const std::string& state_dir) {
  std::array<unsigned char, 32> key{};
  int dir = ::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) return io_error("cannot open " + state_dir, errno);
  int fd = ::openat(dir, kNodeKey, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
      ::close(dir);
      return Error{Errc::internal, "no random bytes for the node key"};
    }
    // Made under a temporary name and linked into place, so a crash never leaves a short key.
    std::string tmp = std::string(kNodeKey) + ".tmp";
    ::unlinkat(dir, tmp.c_str(), 0);
    int out =
        ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool written =
        out >= 0 &&
        write_all(out, std::string_view(reinterpret_cast<const char*>(key.data()), key.size())) &&
        ::fsync(out) == 0;
    int err = errno;
    if (out >= 0) ::close(out);
    if (!written || ::renameat(dir, tmp.c_str(), dir, kNodeKey) != 0) {
      if (written) err = errno;
      ::close(dir);
      return io_error("cannot write " + state_dir + "/" + kNodeKey, err);
    }
    ::fsync(dir);
    ::close(dir);
    return key;
  }
  int err = errno;
  ::close(dir);
  if (fd < 0) return io_error("cannot open " + state_dir + "/" + kNodeKey, err);
  struct stat st {};
  std::size_t got = 0;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 32) {
    while (got < key.size()) {
      ssize_t n = ::read(fd, key.data() + got, key.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
  }
  ::close(fd);
  if (got != key.size()) {
    return Error{Errc::corrupt, state_dir + "/" + kNodeKey +
                                    " is not a 32-byte file; move it away to make a new one "
                                    "(every sandbox then needs a restart)"};
  }
  return key;
}

}  // namespace

PinnedSocket::~PinnedSocket() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<RuntimedLink>> RuntimedLink::open(const config::Config& config) {
  std::string run_dir = config.data_dir + "/run";
  int run_fd = ::open(run_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (run_fd < 0) return io_error("cannot open " + run_dir, errno);
  auto key = load_node_key(config.data_dir + "/state");
  if (!key) {
    ::close(run_fd);
    return key.error();
  }
  return std::unique_ptr<RuntimedLink>(new RuntimedLink(config, run_fd, *key));
}

RuntimedLink::RuntimedLink(const config::Config& config, int run_fd,
                           std::array<unsigned char, 32> key)
    : config_(config), run_fd_(run_fd), key_(key) {}

RuntimedLink::~RuntimedLink() {
  if (run_fd_ >= 0) ::close(run_fd_);
}

std::string RuntimedLink::secret(const std::string& id, std::int64_t generation) const {
  std::string message = "runtimed";
  message += '\0';
  message += id;
  message += '\0';
  message += std::to_string(generation);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  return hex(mac, len);
}

std::string RuntimedLink::secret_hash(const std::string& secret) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), digest);
  return hex(digest, sizeof digest);
}

std::string RuntimedLink::settings_json(const store::SandboxRow& row,
                                        const std::string& secret) const {
  const auto& sb = config_.sandbox;
  std::string command = row.dev_command.value_or(sb.dev_command);
  std::int64_t port = 3000;
  if (row.dev_port) {
    port = *row.dev_port;
  } else if (sb.dev_port != 0) {
    port = sb.dev_port;
  } else if (!row.ports.empty()) {
    port = row.ports.front();
  }
  const auto& t = config_.tasks;
  json::object tasks;
  tasks["timeout_s"] = std::chrono::duration_cast<std::chrono::seconds>(t.timeout).count();
  tasks["max_queued"] = t.max_queued;
  tasks["cancel_grace_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.cancel_grace).count();
  tasks["max_output_bytes"] = static_cast<std::uint64_t>(t.max_output);
  json::object dev;
  dev["command"] = command;
  dev["port"] = port;
  json::object o;
  o["version"] = 1;
  o["sandbox_id"] = row.id;
  o["secret"] = secret;
  o["project_dir"] = sb.project_dir;
  o["dev"] = std::move(dev);
  o["tasks"] = std::move(tasks);
  return json::serialize(o);
}

int RuntimedLink::open_sandbox_dir(const std::string& id) const {
  // `id` is a canonical id (the parser of §1.1 made it), never a path.
  if (id.empty() || id.find('/') != std::string::npos || id.find('.') != std::string::npos) {
    return -EINVAL;
  }
  return files::open_beneath(run_fd_, id, O_RDONLY | O_DIRECTORY);
}

Status RuntimedLink::deliver(const std::string& id, const std::string& json) const {
  int dir = open_sandbox_dir(id);
  if (dir < 0) return io_error("cannot open the run directory of " + id, -dir);
  unsigned char random[8];
  RAND_bytes(random, sizeof random);
  std::string tmp = std::string(kSettingsName) + ".tmp-" + hex(random, sizeof random);
  int fd = ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
  if (fd < 0) {
    int err = errno;
    ::close(dir);
    return io_error("cannot create runtimed.json for " + id, err);
  }
  const auto& u = config_.sandbox.user;
  bool written = ::fchown(fd, u.uid, u.gid) == 0 && ::fchmod(fd, 0400) == 0 &&
                 write_all(fd, json) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (written && ::renameat(dir, tmp.c_str(), dir, kSettingsName) != 0) {
    written = false;
    err = errno;
  }
  if (!written) ::unlinkat(dir, tmp.c_str(), 0);
  if (written) ::fsync(dir);
  ::close(dir);
  if (!written) return io_error("cannot write runtimed.json for " + id, err);
  return ok();
}

Result<PinnedSocket> RuntimedLink::open_socket(const std::string& id) const {
  int dir = open_sandbox_dir(id);
  if (dir < 0) {
    if (dir == -ENOENT) return Error{Errc::not_found, "sandbox " + id + " has no run directory"};
    return io_error("cannot open the run directory of " + id, -dir);
  }
  int fd = ::openat(dir, kSocketName, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  int err = errno;
  ::close(dir);
  if (fd < 0) {
    if (err == ENOENT) return Error{Errc::not_found, "runtimed has no socket yet"};
    return io_error("cannot open runtimed's socket", err);
  }
  PinnedSocket pinned(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return io_error("cannot stat runtimed's socket", errno);
  if (!S_ISSOCK(st.st_mode) || st.st_uid != config_.sandbox.user.uid || st.st_nlink != 1) {
    return Error{Errc::conflict,
                 "runtimed.sock of " + id + " is not a socket of the sandbox user with one link"};
  }
  return pinned;
}

}  // namespace sandboxd::control
