// What sandboxd needs to reach the runtimed of a sandbox (SPEC §6.2): the node key and the
// secrets derived from it, the delivery of `runtimed.json` into the sandbox's run directory,
// and the pinned opening of runtimed's socket.
//
// The tenant has runtimed's uid and may replace any entry of `<data_dir>/run/<ID>/`, so
// nothing here resolves a tenant-controlled name by path: `<data_dir>/run` is opened once at
// startup (sandboxd owns it and every component above it), `<ID>` is opened beneath it with
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, and everything inside is reached through that handle
// (O_EXCL|O_NOFOLLOW creates, renameat, O_PATH|O_NOFOLLOW + fstat for the socket).
//
// Thread safety: immutable after open(); every member may be called from any thread. The
// calls block briefly on the file system (a few small syscalls, one fsync in deliver()).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "config/config.h"
#include "store/sandbox_repo.h"

namespace sandboxd::control {

// A pinned runtimed socket: an O_PATH descriptor of the socket inode, connectable through
// path(), which the kernel resolves to that very inode.
class PinnedSocket {
 public:
  explicit PinnedSocket(int fd) : fd_(fd) {}
  PinnedSocket(PinnedSocket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  PinnedSocket& operator=(PinnedSocket&&) = delete;
  PinnedSocket(const PinnedSocket&) = delete;
  ~PinnedSocket();
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_ = -1;
};

class RuntimedLink {
 public:
  // Opens `<data_dir>/run` (which must exist and be no symlink) and loads
  // `<data_dir>/state/node.key`, making it (32 random bytes, 0600) on first start.
  static Result<std::unique_ptr<RuntimedLink>> open(const config::Config& config);
  ~RuntimedLink();
  RuntimedLink(const RuntimedLink&) = delete;
  RuntimedLink& operator=(const RuntimedLink&) = delete;

  // HMAC-SHA256(node_key, "runtimed\0" || id || "\0" || decimal(generation)) as 64 hex.
  std::string secret(const std::string& id, std::int64_t generation) const;
  static std::string secret_hash(const std::string& secret);  // hex SHA-256

  // The runtimed.json text for a start of `row` with `secret` (SPEC §6.2): the dev
  // settings are the row's, else sandbox.dev_command / sandbox.dev_port (0 = the first
  // declared port, else 3000).
  std::string settings_json(const store::SandboxRow& row, const std::string& secret) const;

  // Writes `<run>/<id>/runtimed.json`: a temp file made O_CREAT|O_EXCL|O_NOFOLLOW with mode
  // 0400, fchown'd to sandbox.user, written, fsync'd and renamed over the name.
  Status deliver(const std::string& id, const std::string& json) const;

  // Opens `<run>/<id>/runtimed.sock` as SPEC §6.2 says. Errc::not_found when there is no
  // socket (runtimed not up); Errc::conflict when the entry is not a socket owned by the
  // sandbox user with one link (the `bad_socket` runtime).
  Result<PinnedSocket> open_socket(const std::string& id) const;

 private:
  RuntimedLink(const config::Config& config, int run_fd, std::array<unsigned char, 32> key);
  // `<run>/<id>` beneath the run directory, without following symlinks; -errno on failure.
  int open_sandbox_dir(const std::string& id) const;

  const config::Config& config_;
  int run_fd_ = -1;
  std::array<unsigned char, 32> key_{};
};

}  // namespace sandboxd::control
