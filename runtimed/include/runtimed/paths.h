// Workspace-relative path syntax (SPEC §7), as runtimed applies it to `project_dir` and a
// task's `cwd`: UTF-8, `/`-separated, relative, at most 4096 bytes with components of at
// most 255, no NUL and no `..`; empty and `.` components are dropped. Resolution on disk
// (no symlink followed) is the caller's job. Pure functions.
#pragma once

#include "base/result.h"

#include <string>
#include <string_view>

namespace sandboxd::runtimed {

// The normalized form ("workspace/app", or "." for the root itself). Errors name `field`
// and the rule: "cwd: must be relative to the workspace".
Result<std::string> normalize_relative_path(std::string_view path, std::string_view field);

// `path` (from an agent's tool call) as a workspace-relative path when it lies inside the
// workspace, else unchanged. `workspace_root` is absolute; `cwd` is the task's normalized
// workspace-relative directory, against which a relative `path` is read.
std::string workspace_relative(std::string_view path, std::string_view workspace_root,
                               std::string_view cwd);

}  // namespace sandboxd::runtimed
