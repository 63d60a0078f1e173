// The commands of sandboxctl and what they share: the parsed invocation, the API client,
// and output to fds 1 and 2. Each command returns the process exit code on success (0, or
// the remote command's code for exec) and a CliError otherwise; run_cli maps the error.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <string_view>

#include "api_client.h"
#include "cli/args.h"
#include "cli/errors.h"
#include "cli/format.h"

namespace sandboxd::cli {

class Context {
 public:
  Context(const Invocation& inv, ApiClient& api) : inv(inv), api(api) {}

  const Invocation& inv;
  ApiClient& api;

  bool json() const { return inv.global.json; }
  WallTime now() const { return std::chrono::system_clock::now(); }

  // Writes everything to fd 1 / fd 2. A closed stdout is a broken_pipe error.
  CliStatus out(std::string_view text) const;
  CliStatus err(std::string_view text) const;
  // `--json` output: the API's body unchanged, as one line-terminated document.
  CliStatus out_document(std::string_view body) const;

  // The positional at `i` as a canonical id (usage error when it is not one).
  CliResult<std::string> id(std::size_t i, std::string_view what = "sandbox id") const;
  // A JSON object answer, or a protocol error saying what was expected.
  CliResult<boost::json::object> object_of(const ApiReply& reply) const;
};

// Writes all of `text` to `fd`; EPIPE on fd 1 gives broken_pipe.
CliStatus write_fd(int fd, std::string_view text);

using CommandFn = CliResult<int> (*)(Context&);

CliResult<int> cmd_create(Context& c);
CliResult<int> cmd_ls(Context& c);
CliResult<int> cmd_get(Context& c);
CliResult<int> cmd_start(Context& c);
CliResult<int> cmd_stop(Context& c);
CliResult<int> cmd_rm(Context& c);
CliResult<int> cmd_purge(Context& c);
CliResult<int> cmd_url(Context& c);
CliResult<int> cmd_exec(Context& c);
CliResult<int> cmd_logs(Context& c);
CliResult<int> cmd_task_run(Context& c);
CliResult<int> cmd_task_ls(Context& c);
CliResult<int> cmd_task_watch(Context& c);
CliResult<int> cmd_task_cancel(Context& c);
CliResult<int> cmd_files_ls(Context& c);
CliResult<int> cmd_files_get(Context& c);
CliResult<int> cmd_files_put(Context& c);
CliResult<int> cmd_files_export(Context& c);
CliResult<int> cmd_certs(Context& c);
CliResult<int> cmd_version(Context& c);

}  // namespace sandboxd::cli
