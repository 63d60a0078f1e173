// The files API's work on the host copy of a workspace, `<data_dir>/workspaces/<ID>`
// (SPEC §2.7.6-2.7.10, §7): path rules, resolution beneath the workspace root, list, read,
// write, append and the export walk.
//
// sandboxd is root on the host and the tenant controls every name in the tree, so no symlink
// is ever followed and no mount is crossed: every open goes through openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) from a workspace root
// handle opened per operation, or, on a kernel without openat2, a walk of O_NOFOLLOW opens
// that applies the same rules. Paths reach this file only after parse_path(); error messages
// name workspace-relative paths only.
//
// Every call here blocks on the file system: run it on a blocking pool thread, never on an
// I/O thread, inside an FsIdentity of the workspace's owner (so the kernel also applies the
// tenant's own permission checks). Errors are ready-made answers (ApiError, SPEC §2.2):
// 400 invalid_path naming the rule, 404, 400 file_too_large, 507 insufficient_storage, 500.
// Different operations may run concurrently, also on one workspace; a Workspace or an
// ExportWalker is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api_error.h"

namespace sandboxd::control::files {

// ---------------------------------------------------------------------------- paths

// How a path is used: a file to read, a file to write or append to (the `.sandboxd/` subtree
// is reserved), or a tree to list or export (empty means the root; a trailing '/' is allowed).
enum class PathUse { read, write, tree };

inline constexpr std::size_t kMaxPathBytes = 4096;
inline constexpr std::size_t kMaxComponentBytes = 255;

struct FilePath {
  std::vector<std::string> parts;  // normalized components; empty is the workspace root

  // The normalized path ("a/b"), "." for the root.
  std::string text() const;
};

// 400 invalid_path whose message starts with the rule, e.g. "symlink_refused: …".
ApiError invalid_path(std::string_view rule, std::string_view why);

// SPEC §7 path syntax. `raw` is the decoded query value; nullopt means it was not given.
ApiResult<FilePath> parse_path(const std::optional<std::string>& raw, PathUse use);

// ---------------------------------------------------------------------------- resolution

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept;
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

enum class Resolve {
  automatic,  // openat2, or the walk once the kernel answered ENOSYS
  walk,       // always the O_NOFOLLOW walk (tests)
};

// Opens `rel` ("" or "." is `dirfd` itself; components already checked by parse_path)
// beneath `dirfd`: no symlink anywhere (ELOOP), no mount crossing (EXDEV), never above
// `dirfd`. `flags` are open(2)'s; O_CLOEXEC is added. Returns the descriptor or -errno.
int open_beneath(int dirfd, const std::string& rel, int flags, mode_t mode = 0,
                 Resolve how = Resolve::automatic);

// Sets the calling thread's fsuid and fsgid for its lifetime and puts the previous ones
// back at the end. Both are per-thread credentials on Linux, so other threads keep theirs.
class FsIdentity {
 public:
  FsIdentity(uid_t uid, gid_t gid);
  ~FsIdentity();
  FsIdentity(const FsIdentity&) = delete;
  FsIdentity& operator=(const FsIdentity&) = delete;

 private:
  uid_t saved_uid_;
  gid_t saved_gid_;
};

// One workspace root, opened for one operation.
class Workspace {
 public:
  // Opens `<workspaces_dir>/<id>` with O_DIRECTORY|O_NOFOLLOW. `id` must be a canonical id.
  // A missing workspace is 404.
  static ApiResult<Workspace> open(const std::string& workspaces_dir, const std::string& id,
                                   Resolve how = Resolve::automatic);
  // A workspace root given as a directory path (tests).
  static ApiResult<Workspace> open_dir(const std::string& dir, Resolve how = Resolve::automatic);

  int fd() const { return root_.get(); }
  uid_t owner_uid() const { return uid_; }
  gid_t owner_gid() const { return gid_; }
  Resolve resolve() const { return how_; }

  // open_beneath() from the root; -errno on failure.
  int open(const FilePath& path, int flags, mode_t mode = 0) const;

 private:
  Workspace(Fd root, uid_t uid, gid_t gid, Resolve how)
      : root_(std::move(root)), uid_(uid), gid_(gid), how_(how) {}

  Fd root_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  Resolve how_ = Resolve::automatic;
};

// The answer for an errno from opening or changing `rel` (SPEC §7 refusals, §2.2 codes).
ApiError errno_answer(int err, std::string_view what, std::string_view rel);

// ---------------------------------------------------------------------------- operations

struct ListOptions {
  bool recursive = false;
  bool all = false;  // descend into `skip` names too
  std::size_t limit = 10000;
  std::uint32_t max_depth = 32;
  std::vector<std::string> skip{"node_modules", ".git"};
};

enum class EntryType { file, dir, symlink, other };
std::string_view entry_type_name(EntryType type);

struct ListEntry {
  std::string path;  // workspace-relative
  EntryType type = EntryType::other;
  std::uint64_t size = 0;  // regular files only
  std::uint32_t mode = 0;  // permission bits, 07777
  std::int64_t mtime = 0;  // unix seconds
  std::string target;      // symlinks: readlink text
  bool skipped = false;    // a list_skip directory the walk did not enter
  std::string error;       // a directory the walk could not read
};

struct ListResult {
  std::vector<ListEntry> entries;  // sorted bytewise by path
  bool truncated = false;
};

// Lists the directory `path` (SPEC §2.7.7). Not a directory is 400 invalid_path.
ApiResult<ListResult> list(const Workspace& ws, const FilePath& path, const ListOptions& options);

// The content of the regular file `path` (SPEC §2.7.8); over `read_max` is 400
// file_too_large, a directory or a special file 400 invalid_path.
ApiResult<std::string> read_file(const Workspace& ws, const FilePath& path, std::uint64_t read_max);

struct WriteResult {
  std::uint64_t size = 0;       // bytes received
  std::uint64_t file_size = 0;  // after the write
  bool created = false;
};

// Writes (temp file, fsync, rename over) or appends `data` to `path` (SPEC §2.7.9, §7);
// missing parent directories are made 0755. New entries are owned by the workspace owner.
ApiResult<WriteResult> write_file(const Workspace& ws, const FilePath& path, std::string_view data,
                                  bool append);

// Human-readable size for messages: "8 MiB", "12.5 MiB", "700 bytes".
std::string human_size(std::uint64_t bytes);

// ---------------------------------------------------------------------------- export

// The exclude rules of SPEC §7: a pattern without '/' matches an entry's name at any depth,
// one with '/' the path relative to the export root; fnmatch(3) globs, FNM_PATHNAME for
// the latter. A leading "./" and leading or trailing '/' are ignored.
class ExcludeSet {
 public:
  ExcludeSet() = default;
  explicit ExcludeSet(const std::vector<std::string>& patterns);
  bool excluded(std::string_view rel, std::string_view name) const;

 private:
  std::vector<std::string> names_;
  std::vector<std::string> paths_;
};

struct ExportOptions {
  ExcludeSet excludes;
  std::uint64_t uid = 0;  // stored in every header: sandbox.user
  std::uint64_t gid = 0;
  std::size_t max_depth = 256;  // deeper directories are not entered (logged)
};

// Walks a directory and produces its POSIX tar, piece by piece (SPEC §2.7.10, §7).
// Directories, regular files and symlinks (as links) are stored with paths relative to the
// export root, which itself is not an entry; everything else is skipped.
class ExportWalker {
 public:
  // Opens the export root (a directory; errors as list()).
  static ApiResult<std::unique_ptr<ExportWalker>> open(Workspace ws, const FilePath& path,
                                                       ExportOptions options);
  ~ExportWalker();

  // Appends archive bytes to `out` until it grew by at least `target` bytes or the archive
  // is complete (the end marker included). True once complete. An Error means the archive
  // cannot be completed correctly (a read error, a file that shrank while read): the
  // caller must end the response as truncated.
  Result<bool> next(std::string& out, std::size_t target);

  std::size_t skipped() const { return skipped_; }

 private:
  struct Frame;
  ExportWalker(Workspace ws, ExportOptions options);
  Status add_entry(Frame& parent, const std::string& name, std::string& out);

  Workspace ws_;
  ExportOptions options_;
  std::vector<Frame> stack_;
  Fd file_;  // the regular file being copied, if any
  std::string file_rel_;
  std::uint64_t file_left_ = 0;  // content bytes still owed for it
  std::uint64_t file_size_ = 0;
  bool done_ = false;
  std::size_t skipped_ = 0;
};

}  // namespace sandboxd::control::files
