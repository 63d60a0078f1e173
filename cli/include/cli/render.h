// Human renderings of control API objects (SPEC §2.4, §2.7, §12): the `ls`, `task ls`,
// `files ls` and `certs` tables, `get`'s key: value lines, `create`'s URL lines, the preview
// URL `url` picks, and one line per task event for `task watch`. Pure functions over parsed
// JSON; a field that is missing or of the wrong type renders as "-" rather than failing, so
// a newer server's objects still print.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/errors.h"
#include "cli/format.h"

namespace sandboxd::cli {

// ID  STATUS  PORTS  VISIBILITY  IDLE-POLICY  LAST-ACTIVE  AGE
std::string render_sandbox_table(const boost::json::array& sandboxes, WallTime now);
// `get`: key: value lines.
std::string render_sandbox_fields(const boost::json::object& sandbox);
// `create`: the id, then one preview URL per declared port, in port order.
std::string render_created(const boost::json::object& sandbox);

// The preview URL for `port`, or by default for the dev port when it is declared, else the
// first port. An error when the port is not declared or there is none.
CliResult<std::string> pick_preview_url(const boost::json::object& sandbox,
                                        std::optional<int> port);
// The port `create --wait` / `start --wait` waits on: the dev port when declared, else the
// first port; nullopt when no port is declared.
std::optional<int> dev_or_first_port(const boost::json::object& sandbox);

// TASK  AGENT  STATUS  CREATED  DURATION  EXIT
std::string render_task_table(const boost::json::array& tasks, WallTime now);
// TYPE  SIZE  MTIME  PATH
std::string render_files_table(const boost::json::array& entries, WallTime now);
// NAMES  NOT-AFTER  NEXT-RENEWAL  STATUS  LAST-ERROR
std::string render_certs_table(const boost::json::array& certificates, WallTime now);

// One task event (the §6.4 envelope `{"id","type","ts","data"}`) as `task watch` prints it.
struct EventOutput {
  std::string out;  // for stdout
  std::string err;  // for stderr (the task's stderr text)
  bool done = false;
  std::string status;            // done: succeeded, failed, cancelled
  std::optional<int> exit_code;  // done (agent command): the command's exit code
  std::string signal;            // exit: the signal that ended the process ("SIGKILL")
};
EventOutput render_task_event(const boost::json::object& envelope);

// The `version` label of `sandboxd_build_info` in a Prometheus text answer (GET /metrics,
// SPEC §11); nullopt when the metric or the label is not there.
std::optional<std::string> build_info_version(std::string_view metrics_text);

// A string field, or "" when absent or not a string.
std::string str_field(const boost::json::object& o, std::string_view key);

}  // namespace sandboxd::cli
