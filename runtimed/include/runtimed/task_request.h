// A task as `POST /tasks` submits it (SPEC §6.3) and as task.json stores it (SPEC §6.6).
//
// `parse_task_request` applies every validation rule of §6.3 and names the field in its
// error; `task_request_json` writes the normalized request back (env values included — the
// file is 0600 inside the tenant's own workspace) and reading that with
// `parse_task_request` gives the same request. Unknown fields are ignored so that an older
// runtimed accepts a newer sandboxd's requests. Pure functions.
#pragma once

#include "base/result.h"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandboxd::runtimed {

enum class Agent { opencode, claude_code, command };

std::string_view agent_name(Agent agent);
std::optional<Agent> parse_agent(std::string_view name);

struct TaskRequest {
  std::string id;  // canonical ULID
  Agent agent = Agent::command;
  std::string prompt;                // agents only
  std::vector<std::string> argv;     // command only
  std::string model;                 // agents only; empty: none
  std::vector<std::string> extra_args;
  std::vector<std::pair<std::string, std::string>> env;  // in request order
  int timeout_s = 0;
  std::string cwd;        // normalized workspace-relative directory
  bool cwd_given = false; // false: cwd is project_dir, created when missing
};

struct RequestDefaults {
  int timeout_s = 7200;
  std::string project_dir = "workspace/app";
};

// The `id` field alone, canonical; for the "repeated id returns the existing task" rule,
// which holds whatever the rest of the body says.
Result<std::string> parse_task_id(const boost::json::object& body);

Result<TaskRequest> parse_task_request(const boost::json::object& body,
                                       const RequestDefaults& defaults);

boost::json::object task_request_json(const TaskRequest& request);

// The request-env rules of SPEC §5.4 for one name (also used for dev-server overrides).
Status check_env_name(std::string_view name);

}  // namespace sandboxd::runtimed
