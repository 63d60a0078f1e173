// Directories beneath the workspace root, opened without following any symlink
// (SPEC §7: openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or a component walk with
// O_NOFOLLOW where the kernel lacks openat2). Blocking, but only metadata calls.
#pragma once

#include "base/result.h"

#include <string>

namespace sandboxd::runtimed {

// An O_DIRECTORY fd of `rel` ("." for the root) beneath `root`; the caller closes it.
// Errors: not_found when it does not exist, invalid_argument for a symlink or a
// non-directory on the way.
Result<int> open_dir_beneath(const std::string& root, const std::string& rel);

// Creates the missing directories of `rel` beneath `root` (mode 0755), never following a
// symlink.
Status make_dirs_beneath(const std::string& root, const std::string& rel);

}  // namespace sandboxd::runtimed
