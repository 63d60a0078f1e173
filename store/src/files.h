// File-system preparation for the store: the private state directory and database files.
// Nothing here follows a symlink. Plain functions; safe from any thread.
#pragma once

#include <filesystem>

#include "base/result.h"

namespace sandboxd::store::detail {

// Makes `dir` a directory of mode 0700: creates it if missing, tightens the mode if
// needed, refuses a symlink or a non-directory (Errc::invalid_argument).
Status ensure_private_dir(const std::filesystem::path& dir);

// Creates `file` with mode 0600 if missing, tightens the mode of an existing one, refuses a
// symlink. Called before SQLite opens a file, so SQLite (which gives -wal and -shm the mode
// of the database) never creates anything wider, whatever the umask.
Status ensure_private_file(const std::filesystem::path& file);

// fsync of a directory, so a created or removed entry survives power loss.
Status sync_dir(const std::filesystem::path& dir);

}  // namespace sandboxd::store::detail
