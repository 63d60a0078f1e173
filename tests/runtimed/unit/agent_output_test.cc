#include "runtimed/agent_output.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace sandboxd::runtimed {
namespace {

namespace json = boost::json;

struct Fed {
  std::vector<AgentEvent> events;
  Outcome outcome;
};

Fed feed(Agent agent, const std::vector<std::string>& lines, std::optional<int> exit_code) {
  auto parser = make_output_parser(agent, "/home/sandbox", "workspace/app");
  Fed f;
  for (const auto& l : lines) parser->on_line(l, f.events);
  f.outcome = parser->finish(exit_code, f.events);
  return f;
}

std::string str(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string("<none>");
}

TEST(OpencodeOutputTest, LinesBecomeEvents) {
  std::vector<std::string> lines{
      R"({"type":"step_start","part":{"type":"step-start"}})",
      R"({"type":"text","part":{"type":"text","text":"I will add the page."}})",
      R"({"type":"text","part":{"type":"text","text":""}})",
      R"({"type":"tool_use","part":{"callID":"c1","tool":"bash","state":{"status":"pending","input":{"command":"ls -la"}}}})",
      R"({"type":"tool_use","part":{"callID":"c1","tool":"bash","state":{"status":"running","input":{"command":"ls -la"}}}})",
      R"({"type":"tool_use","part":{"callID":"c1","tool":"bash","state":{"status":"completed","input":{"command":"ls -la"}}}})",
      R"({"type":"tool_use","part":{"callID":"c1","tool":"bash","state":{"status":"completed","input":{"command":"ls -la"}}}})",
      R"({"type":"tool_use","part":{"callID":"c2","tool":"write","state":{"status":"completed","input":{"filePath":"/home/sandbox/workspace/app/src/login.tsx","content":"x"}}}})",
      R"({"type":"tool_use","part":{"callID":"c3","tool":"edit","state":{"status":"completed","input":{"filePath":"src/app.tsx"}}}})",
      R"({"type":"tool_use","part":{"callID":"c4","tool":"read","state":{"status":"error","input":{"filePath":"/etc/hosts"}}}})",
      R"({"type":"step_finish","part":{"tokens":{"input":100,"output":20,"reasoning":5,"cache":{"read":7,"write":3}},"cost":0.25}})",
      R"({"type":"step_finish","part":{"tokens":{"input":1,"output":2,"reasoning":0,"cache":{"read":0,"write":0}},"cost":0.5}})",
      "plain text that is not JSON",
      R"({"type":"text","part":{"text":"Done."}})",
      R"({"type":"something_new"})",
  };
  Fed f = feed(Agent::opencode, lines, 0);
  std::vector<std::string> types;
  for (const auto& e : f.events) types.push_back(e.type);
  EXPECT_EQ(types, (std::vector<std::string>{"message", "tool", "tool", "tool", "file", "tool", "file",
                                             "tool", "stdout", "message"}));
  EXPECT_EQ(str(f.events[0].data, "role"), "assistant");
  EXPECT_EQ(str(f.events[0].data, "text"), "I will add the page.");
  EXPECT_EQ(str(f.events[1].data, "status"), "started");
  EXPECT_EQ(str(f.events[1].data, "call_id"), "c1");
  EXPECT_EQ(str(f.events[1].data, "name"), "bash");
  EXPECT_EQ(str(f.events[1].data, "summary"), "ls -la");
  EXPECT_EQ(str(f.events[2].data, "status"), "completed");
  EXPECT_EQ(str(f.events[4].data, "path"), "workspace/app/src/login.tsx");
  EXPECT_EQ(str(f.events[4].data, "op"), "write");
  EXPECT_EQ(str(f.events[6].data, "path"), "workspace/app/src/app.tsx");
  EXPECT_EQ(str(f.events[6].data, "op"), "edit");
  EXPECT_EQ(str(f.events[7].data, "status"), "error");
  EXPECT_EQ(str(f.events[7].data, "summary"), "/etc/hosts");
  EXPECT_EQ(str(f.events[8].data, "text"), "plain text that is not JSON");
  EXPECT_TRUE(f.outcome.succeeded);
  EXPECT_FALSE(f.outcome.error);
  EXPECT_EQ(f.outcome.final_message, "Done.");
  EXPECT_TRUE(f.outcome.usage.reported);
  EXPECT_EQ(f.outcome.usage.input_tokens, 101);
  EXPECT_EQ(f.outcome.usage.output_tokens, 22);
  EXPECT_EQ(f.outcome.usage.reasoning_tokens, 5);
  EXPECT_EQ(f.outcome.usage.cache_read_tokens, 7);
  EXPECT_EQ(f.outcome.usage.cache_write_tokens, 3);
  EXPECT_DOUBLE_EQ(f.outcome.usage.cost_usd, 0.75);
}

TEST(OpencodeOutputTest, ErrorLineFailsEvenOnExitZero) {
  Fed f = feed(Agent::opencode,
               {R"({"type":"text","part":{"text":"hi"}})",
                R"({"type":"error","error":{"name":"APIError","data":{"message":"invalid x-api-key"}}})"},
               0);
  ASSERT_EQ(f.events.size(), 2u);
  EXPECT_EQ(f.events[1].type, "error");
  EXPECT_EQ(str(f.events[1].data, "code"), "agent_error");
  EXPECT_EQ(str(f.events[1].data, "message"), "invalid x-api-key");
  EXPECT_FALSE(f.outcome.succeeded);
  ASSERT_TRUE(f.outcome.error);
  EXPECT_EQ(f.outcome.error->second, "invalid x-api-key");

  Fed named = feed(Agent::opencode, {R"({"type":"error","error":{"name":"ProviderAuthError"}})"}, 0);
  EXPECT_EQ(str(named.events[0].data, "message"), "ProviderAuthError");
}

TEST(OpencodeOutputTest, NoOutputOrNonZeroExitFails) {
  Fed silent = feed(Agent::opencode, {R"({"type":"step_start"})"}, 0);
  EXPECT_FALSE(silent.outcome.succeeded);
  ASSERT_EQ(silent.events.size(), 1u);
  EXPECT_EQ(str(silent.events[0].data, "message"), "agent produced no output");

  Fed crashed = feed(Agent::opencode, {R"({"type":"text","part":{"text":"hi"}})"}, 2);
  EXPECT_FALSE(crashed.outcome.succeeded);
  EXPECT_EQ(crashed.outcome.error->second, "opencode exited with code 2");
}

TEST(ClaudeOutputTest, StreamJsonBecomesEvents) {
  std::vector<std::string> lines{
      R"({"type":"system","subtype":"init","session_id":"s-1","model":"claude-sonnet-4-5","tools":[]})",
      R"({"type":"assistant","message":{"content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"Let me look."},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"npm test"}}]}})",
      R"({"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"ok","is_error":false}]}})",
      R"({"type":"assistant","message":{"content":[{"type":"tool_use","id":"t2","name":"Write","input":{"file_path":"/home/sandbox/workspace/app/a.txt","content":"x"}}]}})",
      R"({"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t2","content":"done"}]}})",
      R"({"type":"assistant","message":{"content":[{"type":"tool_use","id":"t3","name":"Edit","input":{"file_path":"/tmp/outside.txt"}}]}})",
      R"({"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t3","content":"no","is_error":true}]}})",
      R"({"type":"result","subtype":"success","is_error":false,"result":"All done.","total_cost_usd":0.12,"usage":{"input_tokens":10,"output_tokens":20,"cache_read_input_tokens":30,"cache_creation_input_tokens":40}})",
  };
  Fed f = feed(Agent::claude_code, lines, 0);
  std::vector<std::string> types;
  for (const auto& e : f.events) types.push_back(e.type);
  EXPECT_EQ(types, (std::vector<std::string>{"message", "message", "tool", "tool", "tool", "tool",
                                             "file", "tool", "tool"}));
  EXPECT_EQ(str(f.events[0].data, "role"), "system");
  EXPECT_EQ(str(f.events[0].data, "text"), "session s-1, model claude-sonnet-4-5");
  EXPECT_EQ(str(f.events[1].data, "text"), "Let me look.");
  EXPECT_EQ(str(f.events[2].data, "status"), "started");
  EXPECT_EQ(str(f.events[2].data, "summary"), "npm test");
  EXPECT_EQ(str(f.events[3].data, "status"), "completed");
  EXPECT_EQ(str(f.events[3].data, "name"), "Bash");
  EXPECT_EQ(str(f.events[6].data, "path"), "workspace/app/a.txt");
  EXPECT_EQ(str(f.events[6].data, "op"), "write");
  EXPECT_EQ(str(f.events[8].data, "status"), "error");  // failed Edit: no file event
  EXPECT_TRUE(f.outcome.succeeded);
  EXPECT_EQ(f.outcome.final_message, "All done.");
  EXPECT_EQ(f.outcome.usage.input_tokens, 10);
  EXPECT_EQ(f.outcome.usage.output_tokens, 20);
  EXPECT_EQ(f.outcome.usage.cache_read_tokens, 30);
  EXPECT_EQ(f.outcome.usage.cache_write_tokens, 40);
  EXPECT_DOUBLE_EQ(f.outcome.usage.cost_usd, 0.12);
}

TEST(ClaudeOutputTest, OutcomeRules) {
  Fed none = feed(Agent::claude_code, {R"({"type":"assistant","message":{"content":[]}})"}, 0);
  EXPECT_FALSE(none.outcome.succeeded);
  EXPECT_EQ(none.outcome.error->second, "agent ended without a result (exit 0)");
  EXPECT_EQ(none.events.back().type, "error");

  Fed err = feed(Agent::claude_code,
                 {R"({"type":"result","subtype":"error_max_turns","is_error":true})"}, 1);
  EXPECT_FALSE(err.outcome.succeeded);
  EXPECT_EQ(err.outcome.error->second, "error_max_turns");

  Fed bad_exit = feed(Agent::claude_code,
                      {R"({"type":"result","subtype":"success","is_error":false,"result":"ok"})"}, 3);
  EXPECT_FALSE(bad_exit.outcome.succeeded);
}

TEST(CommandOutputTest, LinesAreStdoutAndExitDecides) {
  Fed ok = feed(Agent::command, {"{\"type\":\"text\"}", "x"}, 0);
  ASSERT_EQ(ok.events.size(), 2u);
  EXPECT_EQ(ok.events[0].type, "stdout");
  EXPECT_EQ(str(ok.events[0].data, "text"), "{\"type\":\"text\"}");
  EXPECT_TRUE(ok.outcome.succeeded);
  EXPECT_FALSE(feed(Agent::command, {}, 1).outcome.succeeded);
  EXPECT_FALSE(feed(Agent::command, {}, std::nullopt).outcome.succeeded);
}

TEST(ToolSummaryTest, FirstPresentInputCutTo200Characters) {
  json::object input;
  input["url"] = "https://example.com";
  input["pattern"] = "*.ts";
  EXPECT_EQ(tool_summary(&input), "*.ts");
  input["command"] = std::string(300, 'c');
  EXPECT_EQ(tool_summary(&input), std::string(200, 'c'));
  EXPECT_EQ(tool_summary(nullptr), "");
  json::object empty;
  EXPECT_EQ(tool_summary(&empty), "");
}

}  // namespace
}  // namespace sandboxd::runtimed
