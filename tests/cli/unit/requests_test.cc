// From flags to control API requests (SPEC §2.6, §2.7, §12).
#include "cli/requests.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

namespace sandboxd::cli {
namespace {

namespace json = boost::json;

Invocation inv(const std::vector<std::string>& args) {
  auto r = parse_command_line(args, [](std::string_view) { return std::nullopt; });
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? *r : Invocation{};
}

std::string usage_message(const CliResult<json::object>& r) {
  EXPECT_FALSE(r);
  if (r) return "";
  EXPECT_EQ(r.error().kind, ErrorKind::usage);
  return r.error().message;
}

TEST(Requests, Ids) {
  EXPECT_EQ(id_arg("01arz3ndektsv4rrffq69g5fav").value(), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
  for (const char* bad :
       {"", "x", "01ARZ3NDEKTSV4RRFFQ69G5FA", "01ARZ3NDEKTSV4RRFFQ69G5FAVX",
        "81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAI", "../../etc/passwd"}) {
    auto r = id_arg(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(exit_code_of(r.error()), 2) << bad;
  }
  EXPECT_EQ(id_arg("nope", "task id").error().message,
            "invalid task id \"nope\": expected 26 characters of Crockford base32 (a ULID)");
}

TEST(Requests, CreateMinimal) {
  auto b = create_body(inv({"create"}), "01J00000000000000000000000");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(json::serialize(*b),
            R"({"project":{"id":"01J00000000000000000000000","user_id":"local"}})");
}

TEST(Requests, CreateEverything) {
  auto b = create_body(
      inv({"create",        "--port",      "3000",       "--port", "5173",      "--env",
           "A=1=2",         "--env",       "B=",         "--env",  "A=3",       "--private",
           "--idle-policy", "always_on",   "--memory",   "2GiB",   "--cpus",    "1.5",
           "--dev-command", "npm run dev", "--dev-port", "5173",   "--user-id", "u1",
           "--project-id",  "p1",          "--wait"}),
      "unused");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(
      json::serialize(*b),
      R"({"project":{"id":"p1","user_id":"u1"},"ports":[3000,5173],"env":{"A":"3","B":""},)"
      R"("visibility":"private","idle_policy":"always_on","resources":{"memory":"2GiB","cpus":1.5E0},)"
      R"("dev":{"command":"npm run dev","port":5173}})");
  auto whole = create_body(inv({"create", "--cpus", "2"}), "p");
  ASSERT_TRUE(whole);
  EXPECT_EQ(json::serialize(whole->at("resources")), R"({"cpus":2})");
}

TEST(Requests, CreateRefusals) {
  EXPECT_EQ(usage_message(create_body(inv({"create", "--port", "0"}), "p")),
            "--port expects a port from 1 to 65535, got \"0\"");
  EXPECT_EQ(usage_message(create_body(inv({"create", "--port", "http"}), "p")),
            "--port expects a port from 1 to 65535, got \"http\"");
  EXPECT_EQ(usage_message(create_body(inv({"create", "--port", "80", "--port", "80"}), "p")),
            "--port 80 given twice");
  EXPECT_EQ(usage_message(create_body(inv({"create", "--env", "NOVALUE"}), "p")),
            "--env expects K=V, got \"NOVALUE\"");
  EXPECT_EQ(usage_message(create_body(inv({"create", "--idle-policy", "never"}), "p")),
            "--idle-policy must be sleep or always_on, got \"never\"");
  EXPECT_EQ(usage_message(create_body(inv({"create", "--cpus", "0"}), "p")),
            "--cpus expects a number above 0, got \"0\"");
  EXPECT_EQ(usage_message(create_body(inv({"create", "--cpus", "1.2.3"}), "p")),
            "--cpus expects a number above 0, got \"1.2.3\"");
  EXPECT_EQ(usage_message(create_body(inv({"create", "--dev-port", "70000"}), "p")),
            "--dev-port expects a port from 1 to 65535, got \"70000\"");
  EXPECT_EQ(usage_message(create_body(inv({"create", "--user-id", ""}), "p")),
            "--user-id must not be empty");
}

TEST(Requests, Exec) {
  auto b = exec_body(inv({"exec", "X", "--workdir", "/tmp", "--env", "A=1", "--timeout", "1500ms",
                          "--", "sh", "-c", "echo hi"}));
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(
      json::serialize(*b),
      R"({"cmd":["sh","-c","echo hi"],"env":{"A":"1"},"cwd":"/tmp","timeout_s":2,"stream":true})");
  auto d = exec_body(inv({"exec", "X", "--detach", "--", "sleep", "100"}));
  ASSERT_TRUE(d);
  EXPECT_EQ(json::serialize(*d), R"({"cmd":["sleep","100"],"detach":true})");
  EXPECT_EQ(usage_message(exec_body(inv({"exec", "X"}))), "missing CMD (after --)");
  EXPECT_EQ(usage_message(exec_body(inv({"exec", "X", "-w", "tmp", "--", "ls"}))),
            "--workdir must be an absolute path");
  EXPECT_EQ(usage_message(exec_body(inv({"exec", "X", "--timeout", "forever", "--", "ls"}))),
            "invalid --timeout \"forever\": expected a duration like 90s or 5m");
}

TEST(Requests, Tasks) {
  auto p = task_body(inv({"task", "run", "X", "--prompt", "fix it", "--agent", "claude-code",
                          "--model", "m1", "--timeout", "30m"}),
                     std::nullopt);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(json::serialize(*p),
            R"({"agent":"claude-code","prompt":"fix it","model":"m1","timeout_s":1800})");
  auto f = task_body(inv({"task", "run", "X", "--prompt-file", "p.txt"}), std::string("from file"));
  ASSERT_TRUE(f);
  EXPECT_EQ(json::serialize(*f), R"({"prompt":"from file"})");
  auto c = task_body(inv({"task", "run", "X", "--", "make", "test"}), std::nullopt);
  ASSERT_TRUE(c);
  EXPECT_EQ(json::serialize(*c), R"({"agent":"command","command":["make","test"]})");
  std::string one_of = "give exactly one of --prompt, --prompt-file or -- ARGV…";
  EXPECT_EQ(usage_message(task_body(inv({"task", "run", "X"}), std::nullopt)), one_of);
  EXPECT_EQ(usage_message(
                task_body(inv({"task", "run", "X", "--prompt", "a", "--", "ls"}), std::nullopt)),
            one_of);
  EXPECT_EQ(usage_message(task_body(inv({"task", "run", "X", "--agent", "opencode", "--", "ls"}),
                                    std::nullopt)),
            "-- ARGV… runs a command: it goes with --agent command");
  EXPECT_EQ(usage_message(task_body(inv({"task", "run", "X", "--agent", "command", "-p", "x"}),
                                    std::nullopt)),
            "--agent command needs -- ARGV…");
  EXPECT_EQ(usage_message(
                task_body(inv({"task", "run", "X", "--agent", "gpt", "-p", "x"}), std::nullopt)),
            "--agent must be opencode, claude-code or command, got \"gpt\"");
  EXPECT_EQ(usage_message(task_body(inv({"task", "run", "X", "--prompt", ""}), std::nullopt)),
            "the prompt is empty");
}

TEST(Requests, QueryParameters) {
  using Q = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(list_params(inv({"ls", "--status", "running,stopped", "--user", "u", "--project", "p"}))
                .value(),
            (Q{{"status", "running,stopped"}, {"user_id", "u"}, {"project_id", "p"}}));
  EXPECT_EQ(logs_params(inv({"logs", "X"})).value(),
            (Q{{"source", "dev_server"}, {"tail", "200"}}));
  EXPECT_EQ(logs_params(inv({"--json", "logs", "X", "-f", "--tail", "0"})).value(),
            (Q{{"source", "dev_server"}, {"tail", "0"}, {"follow", "true"}, {"format", "ndjson"}}));
  EXPECT_FALSE(logs_params(inv({"logs", "X", "--tail", "10001"})));
  EXPECT_EQ(export_params(inv({"files", "export", "X", "src", "-o", "a.tgz", "--exclude", "*.log",
                               "--exclude", "tmp", "--all"}))
                .value(),
            (Q{{"path", "src"},
               {"all", "true"},
               {"gzip", "true"},
               {"exclude", "*.log"},
               {"exclude", "tmp"}}));
  EXPECT_EQ(port_flag(inv({"url", "X", "--port", "8080"}), "port").value(), 8080);
  EXPECT_EQ(port_flag(inv({"url", "X"}), "port").value(), std::nullopt);
  EXPECT_FALSE(port_flag(inv({"url", "X", "--port", "x"}), "port"));
}

}  // namespace
}  // namespace sandboxd::cli
