// The host side of sandbox workspaces, `<data_dir>/workspaces/<ID>` (SPEC §1.3, §5.3 step 7,
// §5.5 purge).
//
// Tenants control every name inside a workspace, so nothing here follows a symlink. The
// workspaces root is opened once (O_DIRECTORY|O_NOFOLLOW) and held for the object's life;
// every operation starts from that handle and goes one component at a time with *at calls
// and no-follow flags, never through a path string. An id must be a canonical ULID from
// base/ulid.h; one containing '/', '.' or NUL is refused with Errc::internal, since reaching
// here with it is a bug.
//
// Every call blocks on the file system: run it on a blocking pool, not on an I/O thread.
// Calls for different ids may run concurrently; calls for one id must be serialized by the
// caller (the per-id queue, SPEC §5.11). A WorkspaceRoot is move-only and closes its handle
// when destroyed. Error details name paths relative to the workspace only, except those of
// open(), which are for the operator and name the data directory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sandboxd::control {

class WorkspaceRoot {
 public:
  // Opens `<data_dir>/workspaces`. `data_dir` must be absolute and not a symlink; it is
  // created (0755) when missing. `workspaces` is created when missing, must not be a symlink,
  // and is made owned by the current uid:gid (root) with mode 0711. Workspaces made later are
  // owned by owner_uid:owner_gid (sandbox.user).
  static Result<WorkspaceRoot> open(const std::string& data_dir, uid_t owner_uid, gid_t owner_gid);

  WorkspaceRoot(WorkspaceRoot&& other) noexcept;
  WorkspaceRoot& operator=(WorkspaceRoot&& other) noexcept;
  WorkspaceRoot(const WorkspaceRoot&) = delete;
  WorkspaceRoot& operator=(const WorkspaceRoot&) = delete;
  ~WorkspaceRoot();

  // Whether `<ID>` exists as a directory (not a symlink).
  bool exists(const std::string& id) const;

  // Whether the workspace holds no entries. A missing workspace is Errc::not_found.
  Result<bool> is_empty(const std::string& id) const;

  // Makes `<ID>` (owner uid:gid, 0755). True when this call made it, false when a directory
  // was already there (left untouched). Something else under that name is Errc::conflict. On
  // failure a directory this call made is removed again.
  Result<bool> create(const std::string& id);

  // Extracts a tar archive into the workspace (SPEC §5.3 step 7). Entries outside
  // `strip_prefix` (a leading path such as "sandbox-skel") are skipped and the prefix is
  // removed from the others; the entry for the prefix itself is the workspace root, which
  // keeps its owner and mode. An absolute path or a `..` component is Errc::invalid_argument;
  // a malformed archive is Errc::corrupt. Directories and regular files are created, modes
  // kept without setuid/setgid/sticky, mtimes kept, every entry owned by the owner uid:gid.
  // Symlinks are created as symlinks and never followed: an entry whose path goes through a
  // symlink or a non-directory is skipped. Existing entries are never overwritten (skipped).
  // A hard link becomes a copy of its target when the target was extracted earlier by this
  // call, else it is skipped; devices, FIFOs and other special entries are skipped.
  // Entries extracted before an error stay; the caller removes a fresh workspace.
  Status fill_from_tar(const std::string& id, std::string_view tar_bytes,
                       std::string_view strip_prefix);

  // Copies a host directory tree (a template or sandbox.skeleton) into the workspace with
  // the rules of fill_from_tar. The source is walked with O_NOFOLLOW as well: `source_dir`
  // itself must not be a symlink, symlinks inside are copied as symlinks, hard-linked files
  // become separate copies, and a source deeper than 256 levels is Errc::invalid_argument.
  Status fill_from_dir(const std::string& id, const std::string& source_dir);

  // Deletes the workspace tree without following any symlink (unlinks relative to open
  // directory handles; directories without permission are chmod-ed first) and returns the
  // bytes freed: the sum of st_blocks * 512 over removed entries, the root included; a file
  // still linked elsewhere counts only when its last link goes. Works at any depth with a
  // bounded number of open handles (subtrees deeper than that are moved up first). A
  // missing workspace frees 0. Descending into another file system is Errc::conflict.
  Result<std::uint64_t> remove(const std::string& id);

  // Names of the directories under `workspaces`, sorted; anything else is ignored.
  std::vector<std::string> list_ids() const;

 private:
  WorkspaceRoot(int fd, uid_t owner_uid, gid_t owner_gid)
      : fd_(fd), owner_uid_(owner_uid), owner_gid_(owner_gid) {}

  int fd_ = -1;  // `<data_dir>/workspaces`, O_DIRECTORY|O_NOFOLLOW
  uid_t owner_uid_ = 0;
  gid_t owner_gid_ = 0;
};

}  // namespace sandboxd::control
