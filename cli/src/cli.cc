#include "cli/cli.h"

#include <csignal>
#include <cstdlib>
#include <utility>

#include "commands.h"

namespace sandboxd::cli {

namespace {

const std::vector<std::pair<std::string_view, CommandFn>>& dispatch() {
  static const std::vector<std::pair<std::string_view, CommandFn>> kTable{
      {"create", cmd_create},
      {"ls", cmd_ls},
      {"get", cmd_get},
      {"start", cmd_start},
      {"stop", cmd_stop},
      {"rm", cmd_rm},
      {"purge", cmd_purge},
      {"url", cmd_url},
      {"exec", cmd_exec},
      {"logs", cmd_logs},
      {"task run", cmd_task_run},
      {"task ls", cmd_task_ls},
      {"task watch", cmd_task_watch},
      {"task cancel", cmd_task_cancel},
      {"files ls", cmd_files_ls},
      {"files get", cmd_files_get},
      {"files put", cmd_files_put},
      {"files export", cmd_files_export},
      {"certs", cmd_certs},
      {"version", cmd_version},
  };
  return kTable;
}

std::string usage_footer(const CliError& e) {
  if (!e.show_usage) return "";
  const CommandSpec* c = e.command.empty() ? nullptr : find_command(e.command);
  if (!c) return "run 'sandboxctl --help' for usage\n";
  return usage_line(*c) + "run 'sandboxctl " + std::string(c->name) + " -h' for help\n";
}

int fail(const CliError& e, bool passthrough) {
  (void)write_fd(2, format_error(e) + usage_footer(e));
  return exit_code_of(e, passthrough);
}

}  // namespace

int run_cli(const std::vector<std::string>& args) {
  // Writes to a closed socket or pipe come back as EPIPE, handled where they happen.
  std::signal(SIGPIPE, SIG_IGN);
  EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  auto inv = parse_command_line(args, env);
  if (!inv) return fail(inv.error(), inv.error().command == "exec");
  if (inv->help) {
    std::string text = inv->command ? command_help(*inv->command) : top_level_help();
    auto st = write_fd(1, text);
    return st ? 0 : exit_code_of(st.error());
  }
  CommandFn fn = nullptr;
  for (const auto& [name, f] : dispatch()) {
    if (name == inv->command->name) fn = f;
  }
  if (!fn) return fail(CliError::local("command not implemented"), false);
  ApiClient api(inv->global);
  Context ctx(*inv, api);
  auto code = fn(ctx);
  if (!code) {
    CliError e = code.error();
    if (e.kind == ErrorKind::usage && e.command.empty())
      e.command = std::string(inv->command->name);
    return fail(e, passes_remote_exit(*inv));
  }
  return *code;
}

}  // namespace sandboxd::cli
