#include "cli/args.h"

#include <algorithm>
#include <cctype>
#include <limits>

namespace sandboxd::cli {

namespace {

constexpr std::string_view kDefaultServer = "http://127.0.0.1:9090";

const std::vector<FlagSpec>& global_flags() {
  static const std::vector<FlagSpec> kFlags{
      {"server", 0, "URL", false,
       "the control API (env SANDBOXD_URL; default http://127.0.0.1:9090)"},
      {"token", 0, "T", false, "bearer token (env SANDBOXD_TOKEN); never printed"},
      {"cacert", 0, "FILE", false, "extra CA certificates (PEM) for an https:// server"},
      {"json", 0, "", false, "machine output: the API's JSON, NDJSON for streams"},
      {"timeout", 0, "D", false, "deadline of non-streaming calls (default 30s)"},
      {"verbose", 'v', "", false, "print method, URL, status and timing to stderr"},
      {"help", 'h', "", false, "help for sandboxctl or a command"},
  };
  return kFlags;
}

const FlagSpec* find_in(const std::vector<FlagSpec>& flags, std::string_view name) {
  for (const auto& f : flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const FlagSpec* find_in(const std::vector<FlagSpec>& flags, char short_name) {
  for (const auto& f : flags) {
    if (f.short_name != 0 && f.short_name == short_name) return &f;
  }
  return nullptr;
}

std::string flag_label(const FlagSpec& f) { return "--" + std::string(f.name); }

bool looks_like_flag(std::string_view tok) { return tok.size() > 1 && tok[0] == '-'; }

// The names of a synopsis' positionals: "ID [PATH] [-r]" → ID, PATH.
std::vector<std::string> positional_names(std::string_view synopsis) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < synopsis.size()) {
    std::size_t end = synopsis.find(' ', i);
    if (end == std::string_view::npos) end = synopsis.size();
    std::string_view word = synopsis.substr(i, end - i);
    i = end + 1;
    while (!word.empty() && (word.front() == '[' || word.front() == '(')) word.remove_prefix(1);
    while (!word.empty() && (word.back() == ']' || word.back() == ')')) word.remove_suffix(1);
    if (word.empty() || word[0] == '-' || word == "|") continue;
    if (!std::isupper(static_cast<unsigned char>(word[0]))) continue;
    out.emplace_back(word);
  }
  return out;
}

// Records one flag occurrence; `value` is nullopt for a boolean.
CliStatus record(std::map<std::string, std::vector<std::string>, std::less<>>& into,
                 const FlagSpec& f, std::optional<std::string> value) {
  auto& list = into[std::string(f.name)];
  if (!list.empty() && !f.repeatable)
    return CliError::usage(flag_label(f) + " given more than once");
  list.push_back(value.value_or(""));
  return {};
}

// Reads the flag at args[i] (which looks like a flag) from `primary` or, failing that,
// `fallback`; advances i past its value. `where` receives the spec that matched.
CliStatus read_flag(const std::vector<std::string>& args, std::size_t& i,
                    const std::vector<FlagSpec>* primary, const std::vector<FlagSpec>& fallback,
                    std::map<std::string, std::vector<std::string>, std::less<>>& primary_out,
                    std::map<std::string, std::vector<std::string>, std::less<>>& fallback_out) {
  const std::string& tok = args[i];
  const FlagSpec* spec = nullptr;
  bool in_primary = false;
  std::optional<std::string> attached;
  std::string shown;
  if (tok.starts_with("--")) {
    std::string_view body = std::string_view(tok).substr(2);
    std::size_t eq = body.find('=');
    std::string_view name = body.substr(0, eq);
    if (eq != std::string_view::npos) attached = std::string(body.substr(eq + 1));
    shown = "--" + std::string(name);
    if (primary) spec = find_in(*primary, name);
    in_primary = spec != nullptr;
    if (!spec) spec = find_in(fallback, name);
  } else {
    char c = tok[1];
    shown = std::string("-") + c;
    if (primary) spec = find_in(*primary, c);
    in_primary = spec != nullptr;
    if (!spec) spec = find_in(fallback, c);
    if (spec && tok.size() > 2) {
      if (spec->value.empty()) return CliError::usage("unknown flag " + tok);
      attached = tok.substr(2);
    }
  }
  if (!spec) return CliError::usage("unknown flag " + shown);
  auto& out = in_primary ? primary_out : fallback_out;
  ++i;
  if (spec->value.empty()) {
    if (attached) return CliError::usage(flag_label(*spec) + " does not take a value");
    return record(out, *spec, std::nullopt);
  }
  if (!attached) {
    if (i >= args.size()) {
      return CliError::usage(flag_label(*spec) + " needs a value (" + std::string(spec->value) +
                             ")");
    }
    attached = args[i++];
  }
  return record(out, *spec, std::move(attached));
}

bool token_ok(std::string_view t) {
  if (t.empty() || t.size() > 512) return false;
  return std::all_of(t.begin(), t.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

CliStatus resolve_globals(const std::map<std::string, std::vector<std::string>, std::less<>>& g,
                          const EnvLookup& env, GlobalOptions& out) {
  auto last = [&](std::string_view name) -> std::optional<std::string> {
    auto it = g.find(name);
    if (it == g.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
  };
  auto from_env = [&](std::string_view name) -> std::optional<std::string> {
    auto v = env ? env(name) : std::nullopt;
    if (v && v->empty()) return std::nullopt;  // an empty variable reads as unset
    return v;
  };
  std::string where = "--server";
  std::optional<std::string> server = last("server");
  if (!server) {
    server = from_env("SANDBOXD_URL");
    where = "SANDBOXD_URL";
  }
  if (!server) server = std::string(kDefaultServer);
  ParsedServer parsed = parse_server_url(*server);
  if (!parsed.url) {
    return CliError::usage("invalid " + where + " \"" + *server + "\": " + parsed.problem);
  }
  out.server = *parsed.url;
  out.server_text = *server;
  while (out.server_text.size() > 1 && out.server_text.back() == '/') out.server_text.pop_back();

  std::optional<std::string> token = last("token");
  where = "--token";
  if (!token) {
    token = from_env("SANDBOXD_TOKEN");
    where = "SANDBOXD_TOKEN";
  }
  if (token && !token_ok(*token)) {
    // The value is never echoed: it may be a secret with a typo.
    return CliError::usage(where + ": a token is 1 to 512 visible ASCII characters");
  }
  out.token = token;
  if (auto ca = last("cacert")) {
    if (ca->empty()) return CliError::usage("--cacert needs a file name");
    out.cacert = *ca;
  }
  out.json = g.contains("json");
  out.verbose = g.contains("verbose");
  if (auto t = last("timeout")) {
    auto d = parse_duration(*t);
    if (!d)
      return CliError::usage("invalid --timeout \"" + *t +
                             "\": expected a duration like 30s or 2m");
    out.timeout = *d;
  }
  return {};
}

}  // namespace

const FlagSpec* CommandSpec::flag(std::string_view long_name) const {
  return find_in(flags, long_name);
}
const FlagSpec* CommandSpec::flag(char short_name) const { return find_in(flags, short_name); }

const CommandSpec* find_command(std::string_view name) {
  for (const auto& c : commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

bool passes_remote_exit(const Invocation& inv) {
  if (!inv.command) return false;
  if (inv.command->name == "exec") return true;
  return inv.command->name == "task run" && inv.has("follow") && !inv.argv.empty();
}

bool Invocation::has(std::string_view flag) const { return flags.contains(flag); }

std::optional<std::string> Invocation::value(std::string_view flag) const {
  auto it = flags.find(flag);
  if (it == flags.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Invocation::values(std::string_view flag) const {
  auto it = flags.find(flag);
  return it == flags.end() ? std::vector<std::string>{} : it->second;
}

namespace {

CliResult<Invocation> parse_strict(const std::vector<std::string>& args, const EnvLookup& env);

}  // namespace

CliResult<Invocation> parse_command_line(const std::vector<std::string>& args,
                                         const EnvLookup& env) {
  auto inv = parse_strict(args, env);
  if (inv) return inv;
  // `-h` wins over the mistakes around it: `sandboxctl create --bogus -h` shows the help.
  bool help = false;
  for (const auto& a : args) {
    if (a == "--") break;
    help = help || a == "-h" || a == "--help";
  }
  if (!help) return inv;
  Invocation h;
  h.help = true;
  h.command = inv.error().command.empty() ? nullptr : find_command(inv.error().command);
  return h;
}

namespace {

CliResult<Invocation> parse_strict(const std::vector<std::string>& args, const EnvLookup& env) {
  Invocation inv;
  std::map<std::string, std::vector<std::string>, std::less<>> globals;
  std::map<std::string, std::vector<std::string>, std::less<>> unused;
  std::size_t i = 0;
  // Global flags before the command.
  std::string word;
  while (i < args.size()) {
    const std::string& tok = args[i];
    if (tok == "--") return CliError::usage("expected a command before --");
    if (!looks_like_flag(tok)) {
      word = tok;
      ++i;
      break;
    }
    if (auto st = read_flag(args, i, nullptr, global_flags(), unused, globals); !st)
      return st.error();
  }
  bool help_word = false;
  if (word == "help") {  // `sandboxctl help [command…]`
    help_word = true;
    word.clear();
    if (i < args.size() && !looks_like_flag(args[i])) word = args[i++];
  }
  if (word == "task" || word == "files") {
    if (i < args.size() && !looks_like_flag(args[i])) {
      word += " " + args[i++];
    } else {
      inv.help = true;  // `sandboxctl task` alone: the command list
      word.clear();
    }
  }
  if (!word.empty()) {
    inv.command = find_command(word);
    if (!inv.command) {
      CliError e = CliError::usage("unknown command \"" + word + "\"");
      e.hint = "run 'sandboxctl --help' for the list of commands";
      e.show_usage = false;
      return e;
    }
  }
  if (help_word) inv.help = true;
  const CommandSpec* cmd = inv.command;
  auto tagged = [cmd](CliError e) {
    if (cmd) e.command = std::string(cmd->name);
    return e;
  };
  // The command's flags, globals anywhere, positionals, then `--` and the remote argv.
  while (cmd && i < args.size()) {
    const std::string& tok = args[i];
    if (inv.dashdash) {
      inv.argv.push_back(tok);
      ++i;
      continue;
    }
    if (tok == "--") {
      inv.dashdash = true;
      ++i;
      continue;
    }
    if (looks_like_flag(tok)) {
      if (auto st = read_flag(args, i, &cmd->flags, global_flags(), inv.flags, globals); !st) {
        return tagged(st.error());
      }
      continue;
    }
    if (cmd->takes_argv && inv.args.size() == cmd->max_args) {
      // `exec ID ls -la`: the first word after the last positional starts the argv.
      inv.dashdash = true;
      continue;
    }
    inv.args.push_back(tok);
    ++i;
  }
  if (!cmd && i < args.size()) {
    // Only `help` leaves words here (`sandboxctl help foo bar`), or flags after a lone group.
    for (; i < args.size(); ++i) {
      if (args[i] == "-h" || args[i] == "--help") inv.help = true;
    }
  }
  if (globals.contains("help")) inv.help = true;
  if (!cmd && !inv.help) {
    CliError e = CliError::usage("no command given");
    return e;
  }
  if (auto st = resolve_globals(globals, env, inv.global); !st) return tagged(st.error());
  if (inv.help) return inv;
  if (!cmd->takes_argv && inv.dashdash) {
    // `files put ID -- -odd-name`: after `--` words are positionals.
    for (auto& a : inv.argv) inv.args.push_back(std::move(a));
    inv.argv.clear();
  }
  std::vector<std::string> names = positional_names(cmd->args);
  if (inv.args.size() < cmd->min_args) {
    std::string missing = inv.args.size() < names.size() ? names[inv.args.size()] : "an argument";
    return tagged(CliError::usage("missing " + missing));
  }
  if (inv.args.size() > cmd->max_args) {
    return tagged(CliError::usage("unexpected argument \"" + inv.args[cmd->max_args] + "\""));
  }
  return inv;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  // A bare number is seconds.
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    auto s = parse_int(text, 1, 100LL * 365 * 86400);
    if (!s) return std::nullopt;
    return std::chrono::milliseconds(*s * 1000);
  }
  long long total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start || i - start > 12) return std::nullopt;
    long long n = std::stoll(std::string(text.substr(start, i - start)));
    std::size_t ustart = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    long long factor = 0;
    if (unit == "ms")
      factor = 1;
    else if (unit == "s")
      factor = 1000;
    else if (unit == "m")
      factor = 60'000;
    else if (unit == "h")
      factor = 3'600'000;
    else if (unit == "d")
      factor = 86'400'000;
    else
      return std::nullopt;
    total += n * factor;
    if (total > 100LL * 365 * 86'400'000) return std::nullopt;
  }
  if (total <= 0) return std::nullopt;
  return std::chrono::milliseconds(total);
}

std::optional<long long> parse_int(std::string_view text, long long min, long long max) {
  bool negative = false;
  if (!text.empty() && text[0] == '-' && min < 0) {
    negative = true;
    text.remove_prefix(1);
  }
  if (text.empty() || text.size() > 18) return std::nullopt;
  long long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (negative) v = -v;
  if (v < min || v > max) return std::nullopt;
  return v;
}

std::optional<std::pair<std::string, std::string>> parse_env_pair(std::string_view text) {
  std::size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) return std::nullopt;
  return std::pair{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

std::string usage_line(const CommandSpec& c) {
  std::string out = "usage: sandboxctl " + std::string(c.name);
  if (!c.args.empty()) out += " " + std::string(c.args);
  return out + "\n";
}

namespace {

std::string flag_lines(const std::vector<FlagSpec>& flags) {
  std::vector<std::pair<std::string, std::string>> rows;
  std::size_t width = 0;
  for (const auto& f : flags) {
    std::string left =
        f.short_name ? std::string("  -") + f.short_name + ", " : std::string("      ");
    left += "--" + std::string(f.name);
    if (!f.value.empty()) left += " " + std::string(f.value);
    width = std::max(width, left.size());
    rows.emplace_back(left, std::string(f.help));
  }
  std::string out;
  for (const auto& [left, help] : rows) {
    out += left + std::string(width - left.size() + 2, ' ') + help + "\n";
  }
  return out;
}

}  // namespace

std::string command_help(const CommandSpec& c) {
  std::string out = usage_line(c) + "\n" + std::string(c.details) + "\n";
  if (!c.flags.empty()) out += "\nflags:\n" + flag_lines(c.flags);
  out += "\nglobal flags:\n" + flag_lines(global_flags());
  return out;
}

std::string top_level_help() {
  std::string out =
      "usage: sandboxctl [global flags] COMMAND [flags] [args]\n"
      "\n"
      "sandboxctl talks to sandboxd's control API.\n"
      "\n"
      "commands:\n";
  std::size_t width = 0;
  for (const auto& c : commands()) width = std::max(width, c.name.size());
  for (const auto& c : commands()) {
    out += "  " + std::string(c.name) + std::string(width - c.name.size() + 2, ' ') +
           std::string(c.summary) + "\n";
  }
  out += "\nglobal flags:\n" + flag_lines(global_flags());
  out +=
      "\nexit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 auth, 5 conflict, 6 server\n"
      "unreachable or 5xx, 7 deadline; exec passes the command's code through (125: its own\n"
      "failure).\n"
      "Run 'sandboxctl COMMAND -h' for a command's flags.\n";
  return out;
}

}  // namespace sandboxd::cli
