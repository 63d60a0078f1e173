// The decisions of dev-server supervision (SPEC §6.7) that need no process: which command
// runs when none is configured, how long to wait before the next start, and the words the
// `hint` field uses. Pure functions.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::runtimed {

// What the project directory holds, as far as detection cares.
struct ProjectFiles {
  std::optional<std::string> package_json;  // its text when present
  bool pnpm_lock = false;                    // pnpm-lock.yaml
  bool bun_lock = false;                     // bun.lock or bun.lockb
};

// `pnpm run dev`, `bun run dev` or `npm run dev` when package.json has scripts.dev;
// nullopt otherwise (including an unreadable package.json).
std::optional<std::string> detect_dev_command(const ProjectFiles& files);

// Restart delays: 1, 2, 4, 8, 16 s, then 30 s for every further attempt; a run of at least
// 30 s starts the sequence again.
class RestartBackoff {
 public:
  static constexpr std::chrono::seconds kHealthyRun{30};

  // The delay before the next start after a run that lasted `ran`.
  std::chrono::seconds next(std::chrono::milliseconds ran);
  void reset() { attempt_ = 0; }

 private:
  int attempt_ = 0;
};

inline constexpr std::string_view kLoopbackOnlyHint =
    "the dev server listens only on localhost, so previews cannot reach it; bind it to 0.0.0.0 "
    "(Vite: --host 0.0.0.0, Next.js: -H 0.0.0.0)";

std::string waiting_hint(std::string_view project_dir, bool project_dir_exists);
std::string port_taken_hint(int port);

}  // namespace sandboxd::runtimed
