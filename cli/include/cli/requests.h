// From a parsed command line to the control API request it makes (SPEC §2.6, §2.7, §12):
// request bodies, query strings and the checks on flag values that the server would
// otherwise refuse with a less helpful 400. Pure functions: no network, no files (the
// prompt of `task run --prompt-file` is read by the caller and passed in). Problems are
// usage errors naming the flag.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cli/args.h"
#include "cli/errors.h"

namespace sandboxd::cli {

// A sandbox or task id from the command line: any case in, canonical upper case out.
CliResult<std::string> id_arg(std::string_view text, std::string_view what = "sandbox id");

// `create`: the POST /v1/sandboxes body. `fresh_project_id` is used when --project-id is
// absent (a new id per create, so a plain `create` never returns an existing sandbox).
CliResult<boost::json::object> create_body(const Invocation& inv,
                                           std::string_view fresh_project_id);

// `ls`: the query of GET /v1/sandboxes (without cursor and limit).
CliResult<std::vector<std::pair<std::string, std::string>>> list_params(const Invocation& inv);

// `exec`: the POST /v1/sandboxes/{id}/exec body (stream or detach set).
CliResult<boost::json::object> exec_body(const Invocation& inv);

// `task run`: the POST /v1/sandboxes/{id}/tasks body. `prompt_from_file` is the content of
// --prompt-file when it was given.
CliResult<boost::json::object> task_body(const Invocation& inv,
                                         const std::optional<std::string>& prompt_from_file);

// `logs`: the query of GET /v1/sandboxes/{id}/logs.
CliResult<std::vector<std::pair<std::string, std::string>>> logs_params(const Invocation& inv);

// `files export`: the query of GET /v1/sandboxes/{id}/export.
CliResult<std::vector<std::pair<std::string, std::string>>> export_params(const Invocation& inv);

// `url --port` / `task watch --since`: checked integer flags; nullopt when absent.
CliResult<std::optional<int>> port_flag(const Invocation& inv, std::string_view flag);

}  // namespace sandboxd::cli
