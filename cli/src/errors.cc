#include "cli/errors.h"

#include <cstring>
#include <stdexcept>
#include <utility>

#include "base/json.h"

namespace sandboxd::cli {

namespace json = boost::json;

CliError CliError::usage(std::string message) {
  CliError e;
  e.kind = ErrorKind::usage;
  e.message = std::move(message);
  e.show_usage = true;
  return e;
}

CliError CliError::local(std::string message, std::string hint) {
  CliError e;
  e.kind = ErrorKind::local;
  e.message = std::move(message);
  e.hint = std::move(hint);
  return e;
}

CliError CliError::protocol(std::string message) {
  CliError e;
  e.kind = ErrorKind::protocol;
  e.message = std::move(message);
  return e;
}

CliError CliError::deadline(std::string message) {
  CliError e;
  e.kind = ErrorKind::deadline;
  e.message = std::move(message);
  return e;
}

void throw_exception_from_error(const CliError& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

int exit_code_of(const CliError& e) {
  switch (e.kind) {
    case ErrorKind::usage:
      return exit_code::kUsage;
    case ErrorKind::unreachable:
      return exit_code::kUnavailable;
    case ErrorKind::deadline:
      return exit_code::kDeadline;
    case ErrorKind::protocol:
    case ErrorKind::local:
    case ErrorKind::failed:
      return exit_code::kError;
    case ErrorKind::broken_pipe:
      return exit_code::kBrokenPipe;
    case ErrorKind::api:
      break;
  }
  int s = e.http_status;
  if (s == 404) return exit_code::kNotFound;
  if (s == 401 || s == 403) return exit_code::kAuth;
  if (s == 409) return exit_code::kConflict;
  // A 504 is a server-side wait that passed its deadline (a start's wake.timeout).
  if (s == 504 && e.code == "timeout") return exit_code::kDeadline;
  if (s >= 500) return exit_code::kUnavailable;
  return exit_code::kError;
}

int exit_code_of(const CliError& e, bool remote_exit_passthrough) {
  if (!remote_exit_passthrough || e.kind == ErrorKind::broken_pipe) return exit_code_of(e);
  return exit_code::kExecFailure;
}

int exit_code_of_signal(int signal_number) { return 128 + signal_number; }

std::optional<int> signal_number(std::string_view name) {
  static constexpr std::pair<std::string_view, int> kSignals[] = {
      {"HUP", 1},   {"INT", 2},   {"QUIT", 3},  {"ILL", 4},   {"TRAP", 5},  {"ABRT", 6},
      {"BUS", 7},   {"FPE", 8},   {"KILL", 9},  {"USR1", 10}, {"SEGV", 11}, {"USR2", 12},
      {"PIPE", 13}, {"ALRM", 14}, {"TERM", 15}, {"XCPU", 24}, {"XFSZ", 25}};
  if (name.starts_with("SIG")) name.remove_prefix(3);
  for (const auto& [n, number] : kSignals) {
    if (n == name) return number;
  }
  return std::nullopt;
}

namespace {

std::string status_text(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 409:
      return "conflict";
    case 413:
      return "payload too large";
    case 415:
      return "unsupported media type";
    case 429:
      return "too many requests";
    case 500:
      return "internal server error";
    case 501:
      return "not implemented";
    case 502:
      return "bad gateway";
    case 503:
      return "service unavailable";
    case 504:
      return "gateway timeout";
    case 507:
      return "insufficient storage";
    default:
      return "an error";
  }
}

}  // namespace

CliError api_error(int status, std::string_view body, bool token_sent, std::string_view route) {
  CliError e;
  e.kind = ErrorKind::api;
  e.http_status = status;
  // The envelope of either family (SPEC §2.2); anything else is described by its status.
  if (auto v = parse_json(body); v && v->is_object()) {
    const json::object& o = v->get_object();
    if (auto it = o.find("error"); it != o.end()) {
      if (it->value().is_object()) {
        const json::object& err = it->value().get_object();
        if (auto c = err.find("code"); c != err.end() && c->value().is_string()) {
          e.code = std::string(c->value().get_string());
        }
        if (auto m = err.find("message"); m != err.end() && m->value().is_string()) {
          e.message = std::string(m->value().get_string());
        }
      } else if (it->value().is_string()) {
        e.message = std::string(it->value().get_string());
        if (auto c = o.find("code"); c != o.end() && c->value().is_string()) {
          e.code = std::string(c->value().get_string());
        }
      }
    }
  }
  if (status == 401) {
    e.code = e.code.empty() ? "unauthorized" : e.code;
    if (token_sent) {
      e.message = "the server did not accept the token";
      e.hint = "check --token or SANDBOXD_TOKEN";
    } else {
      e.message = "the server requires a token";
      e.hint = "set --token or SANDBOXD_TOKEN";
    }
    return e;
  }
  if (e.message.empty()) e.message = "the server answered " + status_text(status);
  std::string suffix = " (";
  if (!e.code.empty()) suffix += e.code + ", ";
  suffix += "HTTP " + std::to_string(status) + ")";
  // An unknown route reads "not found" (or 405): an older server than this client.
  bool unknown_route = (status == 404 && e.message == "not found") || status == 405;
  e.message += suffix;
  if (unknown_route && !route.empty()) {
    e.hint =
        "this sandboxd does not serve " + std::string(route) + "; it may be older than sandboxctl";
  }
  return e;
}

std::string format_error(const CliError& e) {
  if (e.kind == ErrorKind::broken_pipe) return "";
  std::string out = "sandboxctl: " + e.message + "\n";
  if (!e.hint.empty()) out += "hint: " + e.hint + "\n";
  return out;
}

CliError unreachable(std::string_view server, std::string_view reason) {
  CliError e;
  e.kind = ErrorKind::unreachable;
  e.message = "cannot reach sandboxd at " + std::string(server) + ": " + std::string(reason);
  e.hint = "is sandboxd running? set --server or SANDBOXD_URL";
  return e;
}

std::string errno_text(int err) {
  std::string s = std::strerror(err);
  // "Connection refused" → "connection refused"; keep acronyms such as "TLS" as they are.
  if (s.size() >= 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'a' && s[1] <= 'z') {
    s[0] = static_cast<char>(s[0] - 'A' + 'a');
  }
  return s;
}

}  // namespace sandboxd::cli
