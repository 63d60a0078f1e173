// The agents' command lines and credential checks (SPEC §6.5) through the real runtimed.
// Stand-in `opencode` and `claude` scripts on PATH record the argv and env they were given
// and print what the real CLIs print; no model is ever called.
#include "harness.h"

#include "base/json.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

namespace sandboxd::runtimed::testing {
namespace {

namespace json = boost::json;
using Argv = std::vector<std::string>;

constexpr const char* kFakeOpencode = R"SH(#!/bin/bash
printf '%s\0' "$(basename "$0")" "$@" > "$FAKE_OUT/opencode.argv"
printf '%s|%s|%s|%s\n' "$OPENCODE_PERMISSION" "$SANDBOXD_TASK_ID" "$HOME" "$TERM" > "$FAKE_OUT/opencode.env"
echo '{"type":"step_start","part":{}}'
echo '{"type":"text","part":{"text":"Working on it."}}'
echo '{"type":"tool_use","part":{"callID":"c1","tool":"write","state":{"status":"completed","input":{"filePath":"'"$PWD"'/index.html"}}}}'
echo '{"type":"step_finish","part":{"tokens":{"input":10,"output":5,"reasoning":1,"cache":{"read":2,"write":3}},"cost":0.01}}'
echo 'not json'
echo 'a warning' >&2
)SH";

constexpr const char* kFakeClaude = R"SH(#!/bin/bash
printf '%s\0' "$(basename "$0")" "$@" > "$FAKE_OUT/claude.argv"
echo '{"type":"system","subtype":"init","session_id":"sess-1","model":"claude-test"}'
echo '{"type":"assistant","message":{"content":[{"type":"text","text":"Hi"},{"type":"tool_use","id":"t1","name":"Edit","input":{"file_path":"'"$PWD"'/a.ts"}}]}}'
echo '{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}}'
echo '{"type":"result","subtype":"success","is_error":false,"result":"Finished.","total_cost_usd":0.5,"usage":{"input_tokens":1,"output_tokens":2,"cache_read_input_tokens":3,"cache_creation_input_tokens":4}}'
)SH";

class FakeAgents {
 public:
  FakeAgents() {
    bin_ = dir_.path() + "/bin";
    out_ = dir_.path() + "/out";
    ::mkdir(bin_.c_str(), 0755);
    ::mkdir(out_.c_str(), 0755);
    write_file(bin_ + "/opencode", kFakeOpencode, 0755);
    write_file(bin_ + "/claude", kFakeClaude, 0755);
  }
  const std::string& bin() const { return bin_; }
  const std::string& out() const { return out_; }
  Argv argv(const std::string& name) const {
    std::string raw = read_file(out_ + "/" + name + ".argv");
    Argv args;
    std::size_t pos = 0;
    while (pos < raw.size()) {
      std::size_t nul = raw.find('\0', pos);
      args.push_back(raw.substr(pos, nul - pos));
      pos = nul + 1;
    }
    return args;
  }

 private:
  TempDir dir_;
  std::string bin_;
  std::string out_;
};

Argv shown_argv(const json::object& started) {
  Argv out;
  for (const auto& a : started.at("data").as_object().at("argv").as_array()) {
    out.emplace_back(a.as_string());
  }
  return out;
}

std::vector<std::string> types(const std::vector<json::object>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.emplace_back(e.at("type").as_string());
  return out;
}

std::string submit(Runtimed& rt, const std::string& fields) {
  std::string id = new_task_id();
  auto r = rt.post("/tasks", R"({"id":")" + id + "\"," + fields + "}");
  EXPECT_EQ(r.status, 202) << r.body;
  return id;
}

TEST(RuntimedAgents, OpencodeRunsWithTheExactCommandLine) {
  FakeAgents fake;
  Runtimed rt({.env = {"FAKE_OUT=" + fake.out(), "ANTHROPIC_API_KEY=test-key"},
               .path_prefix = fake.bin()});
  ASSERT_TRUE(rt.start());
  std::string id = submit(rt, R"("agent":"opencode","prompt":"-fix the build","model":"anthropic/claude-sonnet-4-5","extra_args":["--agent","build"])");
  json::object t = rt.wait_final(id);
  EXPECT_EQ(t["status"].as_string(), "succeeded") << json::serialize(t);

  Argv expected{"opencode", "run", "--format", "json", "--model", "anthropic/claude-sonnet-4-5",
                "--agent", "build", "--", "-fix the build"};
  EXPECT_EQ(fake.argv("opencode"), expected);
  expected.back() = "<prompt>";
  auto events = rt.events(id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(shown_argv(events.front()), expected);
  EXPECT_EQ(read_file(fake.out() + "/opencode.env"),
            R"({"*":"allow"})" "|" + id + "|" + rt.workspace() + "|dumb\n");

  auto seen = types(events);
  for (const char* type : {"message", "tool", "file", "stdout", "stderr", "exit", "done"}) {
    EXPECT_NE(std::find(seen.begin(), seen.end(), type), seen.end()) << type;
  }
  for (const auto& e : events) {
    if (e.at("type").as_string() == "file") {
      EXPECT_EQ(e.at("data").as_object().at("path").as_string(), "workspace/app/index.html");
      EXPECT_EQ(e.at("data").as_object().at("op").as_string(), "write");
    }
  }
  const json::object& done = events.back().at("data").as_object();
  EXPECT_EQ(done.at("final_message").as_string(), "Working on it.");
  EXPECT_EQ(done.at("usage").as_object().at("input_tokens").as_int64(), 10);
  EXPECT_EQ(done.at("usage").as_object().at("cache_write_tokens").as_int64(), 3);
}

TEST(RuntimedAgents, ClaudeCodeRunsWithTheExactCommandLine) {
  FakeAgents fake;
  Runtimed rt({.env = {"FAKE_OUT=" + fake.out(), "CLAUDE_CODE_OAUTH_TOKEN=t"},
               .path_prefix = fake.bin()});
  ASSERT_TRUE(rt.start());
  std::string id = submit(rt, R"("agent":"claude-code","prompt":"add tests","model":"sonnet")");
  json::object t = rt.wait_final(id);
  EXPECT_EQ(t["status"].as_string(), "succeeded") << json::serialize(t);
  Argv expected{"claude", "-p", "--output-format", "stream-json", "--verbose",
                "--dangerously-skip-permissions", "--model", "sonnet", "--", "add tests"};
  EXPECT_EQ(fake.argv("claude"), expected);
  auto events = rt.events(id);
  expected.back() = "<prompt>";
  EXPECT_EQ(shown_argv(events.front()), expected);
  EXPECT_EQ(types(events), (std::vector<std::string>{"started", "message", "message", "tool",
                                                     "tool", "file", "exit", "done"}));
  EXPECT_EQ(events[1]["data"].as_object()["text"].as_string(), "session sess-1, model claude-test");
  EXPECT_EQ(events[5]["data"].as_object()["path"].as_string(), "workspace/app/a.ts");
  const json::object& done = events.back().at("data").as_object();
  EXPECT_EQ(done.at("final_message").as_string(), "Finished.");
  EXPECT_DOUBLE_EQ(done.at("usage").as_object().at("cost_usd").as_double(), 0.5);
}

TEST(RuntimedAgents, MissingCredentialsFailBeforeAnySpawn) {
  FakeAgents fake;
  Runtimed rt({.env = {"FAKE_OUT=" + fake.out()}, .path_prefix = fake.bin()});
  ASSERT_TRUE(rt.start());

  std::string claude = submit(rt, R"("agent":"claude-code","prompt":"hi")");
  json::object t = rt.wait_final(claude);
  EXPECT_EQ(t["status"].as_string(), "failed");
  EXPECT_EQ(t["error"].as_object()["code"].as_string(), "missing_credentials");
  std::string message(t["error"].as_object()["message"].as_string());
  for (const char* name : {"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
                           "sandbox env or the task env"}) {
    EXPECT_NE(message.find(name), std::string::npos) << message;
  }
  auto events = rt.events(claude);
  EXPECT_EQ(types(events), (std::vector<std::string>{"error", "done"}));
  EXPECT_EQ(events[0]["data"].as_object()["code"].as_string(), "missing_credentials");
  EXPECT_EQ(events[1]["data"].as_object()["status"].as_string(), "failed");
  EXPECT_FALSE(exists(fake.out() + "/claude.argv"));

  std::string opencode = submit(rt, R"("agent":"opencode","prompt":"hi","model":"openai/gpt-5")");
  json::object o = rt.wait_final(opencode);
  EXPECT_EQ(o["error"].as_object()["code"].as_string(), "missing_credentials");
  EXPECT_NE(std::string(o["error"].as_object()["message"].as_string()).find("OPENAI_API_KEY"),
            std::string::npos);
  EXPECT_FALSE(exists(fake.out() + "/opencode.argv"));

  // A key in the task env is enough.
  std::string with_key = submit(rt, R"("agent":"claude-code","prompt":"hi","env":{"ANTHROPIC_API_KEY":"k"})");
  EXPECT_EQ(rt.wait_final(with_key)["status"].as_string(), "succeeded");
}

TEST(RuntimedAgents, AMissingBinaryIsAgentNotFound) {
  Runtimed rt({.env = {"ANTHROPIC_API_KEY=k", "PATH=/usr/bin:/bin"}});
  ASSERT_TRUE(rt.start());
  std::string id = submit(rt, R"("agent":"claude-code","prompt":"hi")");
  json::object t = rt.wait_final(id);
  EXPECT_EQ(t["status"].as_string(), "failed");
  EXPECT_EQ(t["error"].as_object()["code"].as_string(), "agent_not_found");
  EXPECT_EQ(types(rt.events(id)), (std::vector<std::string>{"error", "done"}));

  std::string cmd = new_task_id();
  rt.post("/tasks", R"({"id":")" + cmd + R"(","agent":"command","argv":["no-such-program-x"]})");
  EXPECT_EQ(rt.wait_final(cmd)["error"].as_object()["code"].as_string(), "agent_not_found");
}

}  // namespace
}  // namespace sandboxd::runtimed::testing
