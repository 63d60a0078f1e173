// The agents of SPEC §6.5: the exact headless command line of each, the env it adds, and
// the credential check that runs before any spawn. No model is ever called here; these are
// pure functions over the request and an env lookup.
//
//   opencode     opencode run --format json [--model M] [extra_args…] -- <prompt>
//                env += OPENCODE_PERMISSION={"*":"allow"}
//   claude-code  claude -p --output-format stream-json --verbose
//                       --dangerously-skip-permissions [--model M] [extra_args…] -- <prompt>
//   command      argv exactly (execvp, no shell)
#pragma once

#include "runtimed/task_request.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandboxd::runtimed {

struct AgentCommand {
  std::vector<std::string> argv;
  // argv as events and logs show it: the prompt replaced by "<prompt>" (SPEC §6.4).
  std::vector<std::string> shown_argv;
  std::vector<std::pair<std::string, std::string>> env;  // added after the task env
};

AgentCommand build_agent_command(const TaskRequest& request);

// Looks a variable up in the env the agent will get (runtimed's env, then the task env).
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// nullopt when the agent may start; otherwise the `missing_credentials` message naming the
// variables and where to set them. `opencode_auth_file` says whether
// ~/.local/share/opencode/auth.json exists.
std::optional<std::string> missing_credentials(const TaskRequest& request, const EnvLookup& env,
                                               bool opencode_auth_file);

}  // namespace sandboxd::runtimed
