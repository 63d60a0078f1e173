// sandboxctl's command line (SPEC §12): commands, flags anywhere, env vars, usage errors.
#include "cli/args.h"

#include <gtest/gtest.h>

#include <map>

namespace sandboxd::cli {
namespace {

using Env = std::map<std::string, std::string>;

CliResult<Invocation> parse(const std::vector<std::string>& args, const Env& env = {}) {
  return parse_command_line(args, [env](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

TEST(Args, FindsCommandsAndSubcommands) {
  auto ls = parse({"ls"});
  ASSERT_TRUE(ls) << ls.error().message;
  EXPECT_EQ(ls->command->name, "ls");
  auto run = parse({"task", "run", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--prompt", "hi"});
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_EQ(run->command->name, "task run");
  EXPECT_EQ(run->value("prompt"), "hi");
  auto files = parse({"files", "put", "X", "a.txt", "-"});
  ASSERT_TRUE(files) << files.error().message;
  EXPECT_EQ(files->command->name, "files put");
  EXPECT_EQ(files->args, (std::vector<std::string>{"X", "a.txt", "-"}));
  // Every command of the table parses with -h.
  for (const auto& c : commands()) {
    std::vector<std::string> args;
    std::string name(c.name);
    if (auto sp = name.find(' '); sp != std::string::npos) {
      args = {name.substr(0, sp), name.substr(sp + 1), "-h"};
    } else {
      args = {name, "-h"};
    }
    auto inv = parse(args);
    ASSERT_TRUE(inv) << name << ": " << inv.error().message;
    EXPECT_TRUE(inv->help) << name;
    EXPECT_EQ(inv->command, &c) << name;
    EXPECT_NE(command_help(c).find("usage: sandboxctl " + name), std::string::npos) << name;
  }
}

TEST(Args, DefaultsAndPrecedence) {
  auto d = parse({"ls"});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->global.server_text, "http://127.0.0.1:9090");
  EXPECT_EQ(d->global.server.port, 9090);
  EXPECT_FALSE(d->global.token);
  EXPECT_EQ(d->global.timeout, std::chrono::seconds(30));
  EXPECT_FALSE(d->global.json);
  EXPECT_FALSE(d->global.verbose);

  // The env beats the default, a flag beats the env.
  Env env{{"SANDBOXD_URL", "https://api.example.com/"}, {"SANDBOXD_TOKEN", "env-token"}};
  auto e = parse({"ls"}, env);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->global.server_text, "https://api.example.com");
  EXPECT_TRUE(e->global.server.tls);
  EXPECT_EQ(e->global.server.port, 443);
  EXPECT_EQ(e->global.token, "env-token");
  auto f = parse({"--server", "http://10.0.0.1:1234", "ls", "--token=flag-token"}, env);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->global.server_text, "http://10.0.0.1:1234");
  EXPECT_EQ(f->global.token, "flag-token");
  // An empty variable reads as unset.
  auto empty = parse({"ls"}, {{"SANDBOXD_URL", ""}, {"SANDBOXD_TOKEN", ""}});
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->global.server_text, "http://127.0.0.1:9090");
  EXPECT_FALSE(empty->global.token);
}

TEST(Args, GlobalFlagsGoAnywhereButCommandFlagsWinAfterTheCommand) {
  auto a = parse({"--json", "ls", "-v", "--timeout", "5s", "-q"});
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_TRUE(a->global.json);
  EXPECT_TRUE(a->global.verbose);
  EXPECT_EQ(a->global.timeout, std::chrono::seconds(5));
  EXPECT_TRUE(a->has("quiet"));

  // exec --timeout is the command's deadline; before the command it is the HTTP one.
  auto e = parse(
      {"--timeout", "10s", "exec", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--timeout", "90s", "--", "ls"});
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->global.timeout, std::chrono::seconds(10));
  EXPECT_EQ(e->value("timeout"), "90s");
  EXPECT_EQ(e->argv, (std::vector<std::string>{"ls"}));
}

TEST(Args, FlagSyntaxes) {
  auto a =
      parse({"create", "--port", "3000", "--port=5173", "--env", "A=1=2", "--env=B=", "--wait"});
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->values("port"), (std::vector<std::string>{"3000", "5173"}));
  EXPECT_EQ(a->values("env"), (std::vector<std::string>{"A=1=2", "B="}));
  EXPECT_TRUE(a->has("wait"));
  auto o = parse({"files", "get", "X", "p", "-oout.txt"});
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->value("output"), "out.txt");
  auto o2 = parse({"files", "get", "X", "p", "-o", "-"});
  ASSERT_TRUE(o2) << o2.error().message;
  EXPECT_EQ(o2->value("output"), "-");
  // A value that looks like a flag is still the value.
  auto neg = parse({"logs", "X", "--tail", "-1"});
  ASSERT_TRUE(neg);
  EXPECT_EQ(neg->value("tail"), "-1");
}

TEST(Args, ExecArgvStartsAfterTheIdOrAfterDashDash) {
  auto plain = parse({"exec", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "ls", "-la", "--json"});
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain->argv, (std::vector<std::string>{"ls", "-la", "--json"}));
  EXPECT_FALSE(plain->global.json);  // it belongs to the remote command
  auto dashed = parse({"exec", "--json", "X", "--env", "A=1", "--", "sh", "-c", "echo --hi"});
  ASSERT_TRUE(dashed) << dashed.error().message;
  EXPECT_TRUE(dashed->global.json);
  EXPECT_EQ(dashed->values("env"), (std::vector<std::string>{"A=1"}));
  EXPECT_EQ(dashed->argv, (std::vector<std::string>{"sh", "-c", "echo --hi"}));
  // Where a command takes no argv, words after -- are positionals.
  auto put = parse({"files", "put", "X", "--", "-odd-name"});
  ASSERT_TRUE(put) << put.error().message;
  EXPECT_EQ(put->args, (std::vector<std::string>{"X", "-odd-name"}));
}

TEST(Args, HelpWins) {
  for (auto args : std::vector<std::vector<std::string>>{{"-h"},
                                                         {"--help"},
                                                         {"help"},
                                                         {"help", "create"},
                                                         {"create", "--bogus", "-h"},
                                                         {"task"}}) {
    auto inv = parse(args);
    ASSERT_TRUE(inv) << args[0];
    EXPECT_TRUE(inv->help) << args[0];
  }
  EXPECT_EQ(parse({"help", "exec"})->command->name, "exec");
  EXPECT_NE(top_level_help().find("task watch"), std::string::npos);
}

struct UsageCase {
  std::vector<std::string> args;
  std::string message;
  Env env = {};
};

class UsageErrors : public ::testing::TestWithParam<UsageCase> {};

TEST_P(UsageErrors, ExitTwoWithAMessage) {
  auto inv = parse(GetParam().args, GetParam().env);
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().kind, ErrorKind::usage);
  EXPECT_EQ(inv.error().message, GetParam().message);
  EXPECT_EQ(exit_code_of(inv.error()), 2);
}

INSTANTIATE_TEST_SUITE_P(
    Args, UsageErrors,
    ::testing::Values(
        UsageCase{{}, "no command given"}, UsageCase{{"--json"}, "no command given"},
        UsageCase{{"frobnicate"}, "unknown command \"frobnicate\""},
        UsageCase{{"task", "frob"}, "unknown command \"task frob\""},
        UsageCase{{"ls", "--bogus"}, "unknown flag --bogus"},
        UsageCase{{"ls", "-x"}, "unknown flag -x"}, UsageCase{{"ls", "-qv"}, "unknown flag -qv"},
        UsageCase{{"ls", "--json=yes"}, "--json does not take a value"},
        UsageCase{{"ls", "--status"}, "--status needs a value (S)"},
        UsageCase{{"ls", "--status", "a", "--status", "b"}, "--status given more than once"},
        UsageCase{{"get"}, "missing ID"}, UsageCase{{"task", "watch", "X"}, "missing TASK"},
        UsageCase{{"get", "A", "B"}, "unexpected argument \"B\""},
        UsageCase{{"ls", "stray"}, "unexpected argument \"stray\""},
        UsageCase{{"--", "ls"}, "expected a command before --"},
        UsageCase{{"ls", "--server", "ftp://x"},
                  "invalid --server \"ftp://x\": the scheme must be http:// or https://"},
        UsageCase{{"ls"},
                  "invalid SANDBOXD_URL \"localhost:9090\": the scheme must be http:// or https://",
                  {{"SANDBOXD_URL", "localhost:9090"}}},
        UsageCase{{"ls", "--timeout", "soon"},
                  "invalid --timeout \"soon\": expected a duration like 30s or 2m"},
        UsageCase{{"ls", "--timeout", "0s"},
                  "invalid --timeout \"0s\": expected a duration like 30s or 2m"},
        UsageCase{{"ls", "--token", "has space"},
                  "--token: a token is 1 to 512 visible ASCII characters"},
        UsageCase{{"ls"},
                  "SANDBOXD_TOKEN: a token is 1 to 512 visible ASCII characters",
                  {{"SANDBOXD_TOKEN", "tab\there"}}}));

TEST(Args, ATokenIsNeverEchoedInAnError) {
  auto inv = parse({"ls", "--token", "s3cret value"});
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().message.find("s3cret"), std::string::npos);
}

TEST(Args, ExecUsageErrorsExit125) {
  auto inv = parse({"exec"});
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().command, "exec");
  EXPECT_EQ(exit_code_of(inv.error(), true), 125);
  EXPECT_EQ(exit_code_of(inv.error(), false), 2);
  auto ok = parse({"exec", "X", "--", "true"});
  ASSERT_TRUE(ok);
  EXPECT_TRUE(passes_remote_exit(*ok));
  EXPECT_TRUE(passes_remote_exit(*parse({"task", "run", "X", "--follow", "--", "make"})));
  EXPECT_FALSE(passes_remote_exit(*parse({"task", "run", "X", "--", "make"})));
  EXPECT_FALSE(passes_remote_exit(*parse({"task", "run", "X", "-f", "--prompt", "p"})));
  EXPECT_FALSE(passes_remote_exit(*parse({"ls"})));
}

TEST(Args, Durations) {
  using std::chrono::milliseconds;
  EXPECT_EQ(parse_duration("30s"), milliseconds(30'000));
  EXPECT_EQ(parse_duration("45"), milliseconds(45'000));
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("1h30m"), milliseconds(5'400'000));
  EXPECT_EQ(parse_duration("2d"), milliseconds(172'800'000));
  for (const char* bad :
       {"", "0", "0s", "s", "10x", "-5s", "1.5s", "5 s", "99999999999999999999s", "1h-2m"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
}

TEST(Args, IntsAndEnvPairs) {
  EXPECT_EQ(parse_int("42", 0, 100), 42);
  EXPECT_EQ(parse_int("-3", -10, 10), -3);
  EXPECT_FALSE(parse_int("-3", 0, 10));
  EXPECT_FALSE(parse_int("101", 0, 100));
  EXPECT_FALSE(parse_int("", 0, 100));
  EXPECT_FALSE(parse_int("1e3", 0, 10000));
  EXPECT_FALSE(parse_int("9999999999999999999999", 0, 100));
  EXPECT_EQ(parse_env_pair("A=b=c"), (std::pair<std::string, std::string>{"A", "b=c"}));
  EXPECT_EQ(parse_env_pair("A="), (std::pair<std::string, std::string>{"A", ""}));
  EXPECT_FALSE(parse_env_pair("A"));
  EXPECT_FALSE(parse_env_pair("=x"));
}

TEST(Args, ServerUrls) {
  auto v6 = parse_server_url("http://[::1]:8080/base/");
  ASSERT_TRUE(v6.url) << v6.problem;
  EXPECT_EQ(v6.url->host, "::1");
  EXPECT_EQ(v6.url->port, 8080);
  EXPECT_EQ(v6.url->prefix, "/base");
  EXPECT_EQ(v6.url->host_header(), "[::1]:8080");
  auto plain = parse_server_url("https://api.example.com");
  ASSERT_TRUE(plain.url);
  EXPECT_EQ(plain.url->host_header(), "api.example.com");
  for (const char* bad :
       {"", "http://", "http://:80", "http://h:0", "http://h:99999", "http://u:p@h", "http://h/?q",
        "http://[::1", "http://h h", "HTTP://h", "http://h:", "http://[zz]"}) {
    EXPECT_FALSE(parse_server_url(bad).url) << bad;
  }
  EXPECT_EQ(query_string({{"path", "a b/ü"}, {"x", "1"}}), "?path=a%20b%2F%C3%BC&x=1");
  EXPECT_EQ(query_string({}), "");
}

}  // namespace
}  // namespace sandboxd::cli
