// Processes runtimed starts and ends (SPEC §6.5, §6.6, §6.7): spawning a child in its own
// session and process group with stdout and stderr on pipes and stdin on /dev/null, and the
// /proc scans that find what must be killed. Blocking calls; the scans belong on the
// blocking pool. Every fd made here is close-on-exec.
#pragma once

#include "base/result.h"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace sandboxd::runtimed {

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in the child's PATH (execvp)
  std::vector<std::string> env;   // "NAME=value"
  int cwd_fd = -1;                // directory to fchdir into; -1 keeps runtimed's
};

struct Spawned {
  pid_t pid = -1;  // also the process group and session id
  int out_fd = -1;  // read ends, non-blocking
  int err_fd = -1;
};

// On failure the error detail is the exec error's text and `*exec_errno` its errno (the
// child has been reaped). ENOENT means the program was not found.
Result<Spawned> spawn_process(const SpawnSpec& spec, int* exec_errno);

// True while any process of group `pgid` exists (zombies included).
bool group_alive(pid_t pgid);

// True when `pid` is gone: no such process, or only its zombie is left.
bool pid_gone(pid_t pid);

// Processes whose /proc/<pid>/environ holds exactly the entry `marker` ("K=V").
std::vector<pid_t> find_marked(const std::string& marker);

// Every live descendant of `root` (by parent links in /proc).
std::vector<pid_t> find_descendants(pid_t root);

// A process's exit status from waitpid as (code, signal): exactly one is set.
struct ExitStatus {
  std::optional<int> code;
  std::optional<int> signal;
};
ExitStatus decode_wait_status(int status);

}  // namespace sandboxd::runtimed
