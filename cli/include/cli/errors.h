// sandboxctl's errors and exit codes (SPEC §12, "Errors" and "Exit codes").
//
// Every failure of sandboxctl is a `CliError` value: what kind of failure it is (which fixes
// the exit code), the message printed after "sandboxctl: ", and an optional hint line. API
// errors keep the HTTP status and the envelope's code. The mapping from a failure to an exit
// code lives here and nowhere else; commands never pick exit codes by hand, except that
// `exec` (and `task run --follow` with agent `command`) pass the remote exit code through
// and turn their own failures into 125. Pure functions and plain values, no I/O.
#pragma once

#include <boost/system/result.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::cli {

enum class ErrorKind {
  usage,        // bad flags or arguments: exit 2
  api,          // the server answered an HTTP error: exit by status
  unreachable,  // connect, DNS or TLS failure before an answer: exit 6
  deadline,     // --timeout or --wait passed: exit 7
  protocol,     // the server's answer could not be read: exit 1
  local,        // a local file, terminal or output problem: exit 1
  failed,       // the operation ran and failed (a task ended failed or cancelled): exit 1
  broken_pipe,  // stdout was closed by its reader (`| head`): exit 141, nothing printed
};

struct CliError {
  ErrorKind kind = ErrorKind::local;
  std::string message;      // without the "sandboxctl: " prefix
  std::string hint;         // printed as "hint: <hint>" when not empty
  int http_status = 0;      // api errors
  std::string code;         // api errors: the envelope's code, e.g. "not_found"
  bool show_usage = false;  // usage errors: the command's usage follows the message
  std::string command;      // usage errors: the command they belong to ("exec"), if known

  static CliError usage(std::string message);
  static CliError local(std::string message, std::string hint = "");
  static CliError protocol(std::string message);
  static CliError deadline(std::string message);
};

[[noreturn]] void throw_exception_from_error(const CliError& e, const boost::source_location& loc);

template <class T>
using CliResult = boost::system::result<T, CliError>;
using CliStatus = CliResult<void>;

namespace exit_code {
inline constexpr int kOk = 0;
inline constexpr int kError = 1;
inline constexpr int kUsage = 2;
inline constexpr int kNotFound = 3;
inline constexpr int kAuth = 4;
inline constexpr int kConflict = 5;
inline constexpr int kUnavailable = 6;
inline constexpr int kDeadline = 7;
inline constexpr int kExecFailure = 125;  // exec's own failure, as `docker run`
inline constexpr int kBrokenPipe = 141;   // 128 + SIGPIPE, what the signal would have given
}  // namespace exit_code

// The exit code of a failure (SPEC §12 table). HTTP: 404 → 3, 401/403 → 4, 409 → 5, a 504
// `timeout` (a server-side wait deadline) → 7, other 5xx → 6, other 4xx → 1.
int exit_code_of(const CliError& e);

// The same for a command that passes a remote exit code through (exec): every failure of
// its own is 125, bad flags included, as with `docker run`; a broken stdout stays 141.
int exit_code_of(const CliError& e, bool remote_exit_passthrough);

// The exit code for a remote process's status as `docker run` reports it: the code itself,
// or 128+N for death by signal N.
int exit_code_of_signal(int signal_number);

// "SIGTERM" or "TERM" → 15, for the common signals; nullopt for others.
std::optional<int> signal_number(std::string_view name);

// An HTTP error answer turned into a CliError. `body` is the answer's body (v1 envelope
// `{"error":{"code","message"}}`, legacy `{"error":"…","code":"…"}`, or anything else);
// `token_sent` tells a 401 for a missing token from one for a refused token; `route` names
// the request ("GET /v1/…") for the hint when the server does not know the route.
CliError api_error(int status, std::string_view body, bool token_sent, std::string_view route);

// The lines written to stderr for an error: "sandboxctl: <message>\n" and
// "hint: <hint>\n" when there is one.
std::string format_error(const CliError& e);

// A connect failure: "cannot reach sandboxd at <server>: <reason>" with the SPEC's hint.
CliError unreachable(std::string_view server, std::string_view reason);

// strerror(errno) in the lower case SPEC §12 writes ("connection refused").
std::string errno_text(int err);

}  // namespace sandboxd::cli
