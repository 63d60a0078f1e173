// The pure parts of the task routes (SPEC §2.4, §2.7.1): body validation with the tasks.*
// defaults, the task object, and the event-envelope times.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "base/json.h"
#include "task_service.h"
#include "tasks_api.h"

namespace sandboxd::control {
namespace {

namespace json = boost::json;

ApiResult<TaskSubmit> parse(std::string_view body, const config::Config& config = {}) {
  auto obj = parse_json_object(body);
  EXPECT_TRUE(obj) << body;
  return parse_task_submit(*obj, config);
}

TEST(TaskSubmitParse, AppliesTheConfiguredDefaults) {
  config::Config c;
  c.tasks.default_agent = config::Agent::claude_code;
  c.tasks.timeout = std::chrono::minutes(3);
  c.tasks.agents.claude_code.model = "claude-x";
  c.tasks.agents.claude_code.extra_args = {"--max-turns", "2"};
  auto t = parse(R"({"prompt":"hi"})", c);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->agent, "claude-code");
  EXPECT_EQ(t->prompt, "hi");
  EXPECT_EQ(t->model, "claude-x");
  EXPECT_EQ(t->extra_args, (std::vector<std::string>{"--max-turns", "2"}));
  EXPECT_EQ(t->timeout_s, 180);
  auto own = parse(R"({"prompt":"hi","model":"mine","timeout_s":5,"env":{"K":"v"}})", c);
  ASSERT_TRUE(own);
  EXPECT_EQ(own->model, "mine");
  EXPECT_EQ(own->timeout_s, 5);
  EXPECT_EQ(own->env.at("K"), "v");
  auto cmd = parse(R"({"agent":"command","command":["echo","a b"]})", c);
  ASSERT_TRUE(cmd);
  EXPECT_EQ(cmd->argv, (std::vector<std::string>{"echo", "a b"}));
  EXPECT_FALSE(cmd->model);
  EXPECT_TRUE(cmd->extra_args.empty()) << "agent settings are for agents";
}

TEST(TaskSubmitParse, RefusesWhatSpecRefusesNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"agent":"command"})", "command"},
      {R"({"agent":"command","command":[]})", "command"},
      {R"({"agent":"command","command":[1]})", "command[0]"},
      {R"({"agent":"command","command":["a\u0000b"]})", "command[0]"},
      {R"({"agent":"command","command":["true"],"prompt":"x"})", "prompt"},
      {R"({"agent":"command","command":["true"],"model":"m"})", "model"},
      {R"({"agent":"opencode"})", "prompt"},
      {R"({"agent":"opencode","prompt":""})", "prompt"},
      {R"({"agent":"opencode","prompt":"x","command":["a"]})", "command"},
      {R"({"agent":"claude","prompt":"x"})", "agent"},
      {R"({"agent":1,"prompt":"x"})", "agent"},
      {R"({"prompt":"x","timeout_s":0})", "timeout_s"},
      {R"({"prompt":"x","timeout_s":86401})", "timeout_s"},
      {R"({"prompt":"x","timeout_s":"5"})", "timeout_s"},
      {R"({"prompt":"x","env":{"SANDBOX_ID":"y"}})", "env"},
      {R"({"prompt":"x","env":{"K":1}})", "env.K"},
      {R"({"prompt":"x","env":[]})", "env"},
      {R"({"prompt":"x","extra":1})", "extra"},
  };
  for (const auto& [body, field] : cases) {
    auto t = parse(body);
    ASSERT_FALSE(t) << body;
    EXPECT_EQ(t.error().status, 400) << body;
    EXPECT_EQ(t.error().message.rfind(field, 0), 0u) << body << ": " << t.error().message;
  }
  std::string big = R"({"prompt":")" + std::string(256 * 1024 + 1, 'p') + R"("})";
  EXPECT_FALSE(parse(big));
  std::string argv = R"({"agent":"command","command":[)";
  for (int i = 0; i < 257; ++i) argv += std::string(i ? "," : "") + R"("a")";
  EXPECT_FALSE(parse(argv + "]}"));
}

TEST(TaskObject, ShowsTheOutcomeOfTheDoneEvent) {
  store::TaskRow t;
  t.id = "01KZ3NDEKTSV4RRFFQ69G5FAVB";
  t.sandbox_id = "01KZ3NDEKTSV4RRFFQ69G5FAVC";
  t.agent = "command";
  t.status = "running";
  t.created_at = 1767225600000;
  json::object running = task_object(t, false);
  EXPECT_EQ(running.at("phase"), json::value("starting"));
  EXPECT_EQ(running.at("created_at"), json::value("2026-01-01T00:00:00Z"));
  EXPECT_FALSE(running.contains("started_at"));
  t.started_at = 1767225601000;
  EXPECT_EQ(task_object(t, false).at("phase"), json::value("agent_running"));

  t.status = "failed";
  t.exit_code = 2;
  t.error_code = "agent_error";
  t.error_message = "it broke";
  t.finished_at = 1767225605000;
  t.result =
      R"({"status":"failed","exit_code":2,"duration_ms":4000,"final_message":"bye",)"
      R"("devserver":{"state":"ready"},"usage":{"input_tokens":10,"output_tokens":5,)"
      R"("reasoning_tokens":1,"cache_read_tokens":2,"cache_write_tokens":3,"cost_usd":0.5}})";
  json::object full = task_object(t, false, {"src/a.ts"});
  EXPECT_FALSE(full.contains("phase"));
  EXPECT_EQ(full.at("failure_reason"), json::value("agent_error"));
  EXPECT_EQ(full.at("error_message"), json::value("it broke"));
  EXPECT_EQ(full.at("agent_message_final"), json::value("bye"));
  EXPECT_EQ(json::serialize(full.at("files_changed")), R"(["src/a.ts"])");
  EXPECT_EQ(full.at("preview_status_after"), json::value("ready"));
  EXPECT_EQ(full.at("exit_code"), json::value(2));
  EXPECT_EQ(full.at("duration_ms"), json::value(4000));
  EXPECT_EQ(
      json::serialize(full.at("tokens")),
      R"({"input":10,"output":5,"reasoning":1,"cache_read":2,"cache_write":3,"total":21,"cost":5E-1})");
  json::object item = task_object(t, true);
  EXPECT_EQ(item.at("finished_at"), json::value("2026-01-01T00:00:05Z"));
  EXPECT_FALSE(item.contains("exit_code")) << "list items stop at finished_at";
  EXPECT_FALSE(item.contains("error_message"));

  t.agent = "opencode";
  EXPECT_FALSE(task_object(t, false).contains("exit_code")) << "command only";
  t.status = "cancelled";
  EXPECT_EQ(task_object(t, false).at("failure_reason"), json::value("cancelled"));
}

TEST(TaskTimes, MillisecondsRoundTrip) {
  EXPECT_EQ(format_time_ms(1767225600123), "2026-01-01T00:00:00.123Z");
  EXPECT_EQ(format_time_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(parse_time_ms("2026-01-01T00:00:00.123Z"), 1767225600123);
  EXPECT_EQ(parse_time_ms("2026-01-01T00:00:00Z"), 1767225600000);
  EXPECT_EQ(parse_time_ms("2026-01-01T00:00:00.1Z"), 1767225600100);
  for (const char* bad :
       {"", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00.12aZ", "2026-01-01 00:00:00Z", "x026-01-01T00:00:00Z"}) {
    EXPECT_FALSE(parse_time_ms(bad)) << bad;
  }
}

}  // namespace
}  // namespace sandboxd::control
