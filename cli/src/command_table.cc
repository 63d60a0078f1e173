// The commands of sandboxctl as data (SPEC §12): synopsis, flags and help text. The parser
// (args.cc) and the help output read this table; the behaviour lives in the command files.
#include "cli/args.h"

namespace sandboxd::cli {

namespace {

const FlagSpec kEnv{"env", 0, "K=V", true,
                    "an environment variable (repeatable; split at the first '=')"};

std::vector<CommandSpec> make_commands() {
  std::vector<CommandSpec> c;
  c.push_back(
      {"create",
       "[--port N]… [--env K=V]… [--private] [--idle-policy sleep|always_on] [--memory SIZE] "
       "[--cpus N] [--dev-command CMD] [--dev-port N] [--user-id X] [--project-id X] [--wait]",
       "Create a sandbox",
       "Creates a sandbox and prints its id on line 1, then one preview URL per port.\n"
       "Without --project-id a fresh project id is made, so every create makes a new\n"
       "sandbox; the same --user-id and --project-id give back the live sandbox that has\n"
       "them. --wait waits until the sandbox runs and its dev port answers (bounded by\n"
       "--timeout).",
       {{"port", 0, "N", true,
         "a preview port to declare (repeatable; the first is primary; default 3000)"},
        kEnv,
        {"private", 0, "", false, "previews need a token or cookie (visibility private)"},
        {"idle-policy", 0, "POLICY", false, "sleep (default) or always_on"},
        {"memory", 0, "SIZE", false, "memory limit, e.g. 2GiB"},
        {"cpus", 0, "N", false, "CPU limit, e.g. 1.5"},
        {"dev-command", 0, "CMD", false, "the dev server's command"},
        {"dev-port", 0, "N", false, "the dev server's port"},
        {"user-id", 0, "X", false, "external user id (default local)"},
        {"project-id", 0, "X", false, "external project id (default: a new one)"},
        {"wait", 0, "", false, "wait until running and the dev port answers"}},
       0,
       0,
       false});
  c.push_back({"ls",
               "[--status S] [--user X] [--project X] [-q]",
               "List sandboxes",
               "Lists sandboxes, newest first: ID  STATUS  PORTS  VISIBILITY  IDLE-POLICY  "
               "LAST-ACTIVE  AGE.",
               {{"status", 0, "S", false, "only these states (comma list, e.g. running,stopped)"},
                {"user", 0, "X", false, "only this external user id"},
                {"project", 0, "X", false, "only this external project id"},
                {"quiet", 'q', "", false, "print ids only"}},
               0,
               0,
               false});
  c.push_back(
      {"get",
       "ID",
       "Show one sandbox",
       "Shows one sandbox as key: value lines, with RFC 3339 times, the dev-server state and\n"
       "the runtime state.",
       {},
       1,
       1,
       false});
  c.push_back(
      {"start",
       "ID [--wait]",
       "Start or wake a sandbox",
       "Starts (wakes) a sandbox and prints the new status. --wait waits until it runs and\n"
       "its dev port answers (bounded by --timeout).",
       {{"wait", 0, "", false, "wait until running and the dev port answers"}},
       1,
       1,
       false});
  c.push_back(
      {"stop",
       "ID [--force]",
       "Stop a sandbox",
       "Stops a sandbox and prints the new status. A running task makes the stop fail (exit\n"
       "5) unless --force, which cancels it first.",
       {{"force", 0, "", false, "cancel running tasks first"}},
       1,
       1,
       false});
  c.push_back({"rm",
               "ID",
               "Destroy a sandbox's container, keep its workspace",
               "Removes the sandbox's container and keeps its workspace; a later start re-creates\n"
               "the container.",
               {},
               1,
               1,
               false});
  c.push_back({"purge",
               "ID [--yes]",
               "Delete a sandbox and its workspace",
               "Deletes the sandbox, its container and its workspace. Without --yes you must type\n"
               "the id to confirm, which needs a terminal; without a terminal --yes is required.",
               {{"yes", 'y', "", false, "do not ask"}},
               1,
               1,
               false});
  c.push_back(
      {"exec",
       "ID [--timeout D] [--workdir DIR] [--env K=V]… [--detach] -- CMD…",
       "Run a command in a sandbox",
       "Runs CMD in the sandbox (waking it if needed). Its stdout and stderr arrive on the\n"
       "local stdout and stderr as it writes them, and sandboxctl exits with its exit code\n"
       "(128+N when a signal N killed it). sandboxctl's own failures, bad flags included,\n"
       "exit 125. --detach prints the exec id and exits 0. With --json, output is\n"
       "{\"stream\":\"stdout|stderr\",\"data\"} lines and a final {\"exit_code\":N}.",
       {{"timeout", 0, "D", false, "kill the command after D (e.g. 90s, 5m)"},
        {"workdir", 'w', "DIR", false,
         "absolute working directory (default /home/sandbox/workspace)"},
        kEnv,
        {"detach", 'd', "", false, "run in the background, print the exec id"}},
       1,
       1,
       true});
  c.push_back({"logs",
               "ID [-f] [--tail N]",
               "Show the dev server's log",
               "Prints the dev server's log, the last 200 lines unless --tail says otherwise. -f\n"
               "follows it until Ctrl-C.",
               {{"follow", 'f', "", false, "keep printing new lines"},
                {"tail", 'n', "N", false, "lines from the end (0 to 10000; default 200)"}},
               1,
               1,
               false});
  c.push_back(
      {"task run",
       "ID [--agent A] (--prompt P | --prompt-file F | -- ARGV…) [--model M] [--env K=V]… "
       "[--timeout D] [--follow]",
       "Submit a task",
       "Submits a task and prints its id. `-- ARGV…` runs a plain command (agent command).\n"
       "--follow prints its events like `task watch`; it then exits with the command's exit\n"
       "code (agent command; 125 on sandboxctl's own failure), or 1 when an agent's task\n"
       "fails or is cancelled.",
       {{"agent", 0, "A", false, "opencode, claude-code or command (default: the server's)"},
        {"prompt", 'p', "P", false, "the prompt"},
        {"prompt-file", 0, "F", false, "read the prompt from F (- for stdin)"},
        {"model", 'm', "M", false, "the agent's model"},
        kEnv,
        {"timeout", 0, "D", false, "the task's time limit (e.g. 30m)"},
        {"follow", 'f', "", false, "stream the task's events until it ends"}},
       1,
       1,
       true});
  c.push_back({"task ls",
               "ID",
               "List a sandbox's tasks",
               "Lists tasks, newest first: TASK  AGENT  STATUS  CREATED  DURATION  EXIT.",
               {},
               1,
               1,
               false});
  c.push_back({"task watch",
               "ID TASK [--since N]",
               "Stream a task's events",
               "Prints a task's events until it is done, reconnecting after a dropped connection\n"
               "(1 s, 2 s, … up to 10 s apart). Exits 1 when the task failed or was cancelled.",
               {{"since", 0, "N", false, "start at event id N"}},
               2,
               2,
               false});
  c.push_back({"task cancel",
               "ID TASK",
               "Cancel a task",
               "Requests cancellation and prints the resulting status.",
               {},
               2,
               2,
               false});
  c.push_back(
      {"files ls",
       "ID [PATH] [-r]",
       "List workspace files",
       "Lists files under PATH (relative to /home/sandbox; default .): TYPE  SIZE  MTIME  PATH.",
       {{"recursive", 'r', "", false, "descend into directories"},
        {"all", 'a', "", false, "do not skip node_modules, .git and the like"}},
       1,
       2,
       false});
  c.push_back({"files get",
               "ID PATH [-o FILE]",
               "Download a file",
               "Writes the file to stdout, or to FILE (through a temporary file and a rename).",
               {{"output", 'o', "FILE", false, "write to FILE instead of stdout"}},
               2,
               2,
               false});
  c.push_back(
      {"files put",
       "ID PATH [FILE|-] [--append]",
       "Upload a file",
       "Uploads FILE (or stdin, when FILE is - or absent) to PATH, creating directories as\n"
       "needed, and prints `wrote N bytes to PATH`.",
       {{"append", 0, "", false, "append instead of replacing"}},
       2,
       3,
       false});
  c.push_back(
      {"files export",
       "ID [PATH] [-o FILE.tar] [--exclude P]… [--all]",
       "Download a tar of the workspace",
       "Writes a tar archive of PATH (default: the whole workspace) to stdout or FILE; a name\n"
       "ending in .tar.gz or .tgz gets a gzipped archive. It will not write to a terminal.",
       {{"output", 'o', "FILE", false, "write to FILE instead of stdout"},
        {"exclude", 0, "P", true, "leave out paths matching P (repeatable)"},
        {"all", 0, "", false, "do not apply the server's default excludes"}},
       1,
       2,
       false});
  c.push_back(
      {"url",
       "ID [--port N]",
       "Print a preview URL",
       "Prints the preview URL as the server computes it. The default port is the dev port,\n"
       "else the first declared port.",
       {{"port", 0, "N", false, "a declared port"}},
       1,
       1,
       false});
  c.push_back({"certs",
               "",
               "List TLS certificates",
               "Lists certificates: NAMES  NOT-AFTER  NEXT-RENEWAL  STATUS  LAST-ERROR.",
               {},
               0,
               0,
               false});
  c.push_back({"version",
               "",
               "Print client and server versions",
               "Prints the version of sandboxctl, then the version of the server it talks to.",
               {},
               0,
               0,
               false});
  return c;
}

}  // namespace

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> kCommands = make_commands();
  return kCommands;
}

}  // namespace sandboxd::cli
