// Reading an agent's stdout into task events (SPEC §6.5): OpenCode's `--format json` lines
// and Claude Code's `stream-json` lines become `message`, `tool`, `file` and `error` events,
// usage is summed, and the outcome is decided when the process has ended. A line that is
// not JSON becomes a `stdout` event verbatim. For the `command` agent every line is a
// `stdout` event and the outcome is the exit code.
//
// Parsers are pure: they see complete lines, never the process, and hand back events as
// (type, data). Ids, timestamps, the output cap and persistence are the task runner's job.
// One parser per task; not thread-safe.
#pragma once

#include "runtimed/task_request.h"

#include <boost/json/object.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::runtimed {

struct AgentEvent {
  std::string type;  // stdout, message, tool, file, error
  boost::json::object data;
};

struct Usage {
  bool reported = false;
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int64_t reasoning_tokens = 0;
  std::int64_t cache_read_tokens = 0;
  std::int64_t cache_write_tokens = 0;
  double cost_usd = 0;

  boost::json::object to_json() const;
};

struct Outcome {
  bool succeeded = false;
  // The task's error when it failed for a reason of the agent's (code, message).
  std::optional<std::pair<std::string, std::string>> error;
  std::optional<std::string> final_message;
  Usage usage;
};

class OutputParser {
 public:
  virtual ~OutputParser() = default;
  // One complete stdout line, without its terminator.
  virtual void on_line(std::string_view line, std::vector<AgentEvent>& out) = 0;
  // The process ended with `exit_code` (nullopt when killed by a signal).
  virtual Outcome finish(std::optional<int> exit_code, std::vector<AgentEvent>& out) = 0;
};

// `workspace_root` (absolute) and `cwd` (workspace-relative) make `file` paths relative.
std::unique_ptr<OutputParser> make_output_parser(Agent agent, std::string workspace_root,
                                                 std::string cwd);

// The tool-call summary of SPEC §6.5: the first present input among command,
// file_path/filePath, path, pattern, url, cut to 200 characters; "" when none.
std::string tool_summary(const boost::json::object* input);

}  // namespace sandboxd::runtimed
