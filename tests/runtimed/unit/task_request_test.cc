#include "runtimed/task_request.h"

#include "base/json.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace sandboxd::runtimed {
namespace {

const RequestDefaults kDefaults{7200, "workspace/app"};
constexpr const char* kId = "01J00000000000000000000001";

Result<TaskRequest> parse(const std::string& text) {
  auto obj = parse_json_object(text);
  EXPECT_TRUE(obj) << text;
  if (!obj) return obj.error();
  return parse_task_request(*obj, kDefaults);
}

std::string body(const std::string& fields) {
  return std::string(R"({"id":")") + kId + "\"" + fields + "}";
}

TEST(TaskRequestTest, CommandTask) {
  auto r = parse(body(R"(,"agent":"command","argv":["npm","test"],"env":{"K":"V","_x1":""},"timeout_s":30,"cwd":"./workspace/app/")"));
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->id, kId);
  EXPECT_EQ(r->agent, Agent::command);
  EXPECT_EQ(r->argv, (std::vector<std::string>{"npm", "test"}));
  ASSERT_EQ(r->env.size(), 2u);
  EXPECT_EQ(r->env[0], (std::pair<std::string, std::string>{"K", "V"}));
  EXPECT_EQ(r->timeout_s, 30);
  EXPECT_EQ(r->cwd, "workspace/app");
  EXPECT_TRUE(r->cwd_given);
}

TEST(TaskRequestTest, AgentTaskWithDefaults) {
  auto r = parse(R"({"id":"01j00000000000000000000001","agent":"claude-code","prompt":"fix it","model":"sonnet","extra_args":["--max-turns","3"]})");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->id, kId);  // canonical upper case
  EXPECT_EQ(r->agent, Agent::claude_code);
  EXPECT_EQ(r->prompt, "fix it");
  EXPECT_EQ(r->model, "sonnet");
  EXPECT_EQ(r->extra_args, (std::vector<std::string>{"--max-turns", "3"}));
  EXPECT_EQ(r->timeout_s, 7200);
  EXPECT_EQ(r->cwd, "workspace/app");
  EXPECT_FALSE(r->cwd_given);
}

TEST(TaskRequestTest, ViolationsNameTheField) {
  std::string big_prompt(256 * 1024 + 1, 'p');
  std::string many_args = "[";
  for (int i = 0; i < 257; ++i) many_args += std::string(i ? "," : "") + "\"a\"";
  many_args += "]";
  std::string big_env = R"({"A":")" + std::string(32 * 1024 + 1, 'v') + "\"}";
  struct Case {
    std::string text;
    std::string field;
  };
  std::vector<Case> cases{
      {R"({"agent":"command","argv":["x"]})", "id"},
      {R"({"id":"not-an-id","agent":"command","argv":["x"]})", "id"},
      {R"({"id":7,"agent":"command","argv":["x"]})", "id"},
      {body(R"(,"argv":["x"])"), "agent"},
      {body(R"(,"agent":"aider","prompt":"x")"), "agent"},
      {body(R"(,"agent":"command")"), "argv"},
      {body(R"(,"agent":"command","argv":[])"), "argv"},
      {body(R"(,"agent":"command","argv":[""])"), "argv[0]"},
      {body(R"(,"agent":"command","argv":["a",1])"), "argv[1]"},
      {body(R"(,"agent":"command","argv":"ls")"), "argv"},
      {body(R"(,"agent":"command","argv":["a\u0000b"])"), "argv[0]"},
      {body(R"(,"agent":"command","argv":)" + many_args), "argv"},
      {body(R"(,"agent":"command","argv":["x"],"prompt":"hi")"), "prompt"},
      {body(R"(,"agent":"command","argv":["x"],"model":"m")"), "model"},
      {body(R"(,"agent":"command","argv":["x"],"extra_args":["-v"])"), "extra_args"},
      {body(R"(,"agent":"opencode")"), "prompt"},
      {body(R"(,"agent":"opencode","prompt":"")"), "prompt"},
      {body(R"(,"agent":"opencode","prompt":")" + big_prompt + "\""), "prompt"},
      {body(R"(,"agent":"opencode","prompt":"x","argv":["ls"])"), "argv"},
      {body(R"(,"agent":"opencode","prompt":"x","model":"")"), "model"},
      {body(R"(,"agent":"opencode","prompt":"x","extra_args":[1])"), "extra_args[0]"},
      {body(R"(,"agent":"command","argv":["x"],"env":{"HOME":"/"})"), "HOME"},
      {body(R"(,"agent":"command","argv":["x"],"env":{"SANDBOXD_TASK_ID":"x"})"), "reserved"},
      {body(R"(,"agent":"command","argv":["x"],"env":{"SANDBOX_ID":"x"})"), "reserved"},
      {body(R"(,"agent":"command","argv":["x"],"env":{"1A":"x"})"), "env"},
      {body(R"(,"agent":"command","argv":["x"],"env":{"A-B":"x"})"), "env"},
      {body(R"(,"agent":"command","argv":["x"],"env":{"A":1})"), "env.A"},
      {body(R"(,"agent":"command","argv":["x"],"env":)" + big_env), "env.A"},
      {body(R"(,"agent":"command","argv":["x"],"env":[])"), "env"},
      {body(R"(,"agent":"command","argv":["x"],"timeout_s":0)"), "timeout_s"},
      {body(R"(,"agent":"command","argv":["x"],"timeout_s":86401)"), "timeout_s"},
      {body(R"(,"agent":"command","argv":["x"],"timeout_s":1.5)"), "timeout_s"},
      {body(R"(,"agent":"command","argv":["x"],"timeout_s":"5")"), "timeout_s"},
      {body(R"(,"agent":"command","argv":["x"],"cwd":"/etc")"), "cwd"},
      {body(R"(,"agent":"command","argv":["x"],"cwd":"../x")"), "cwd"},
      {body(R"(,"agent":"command","argv":["x"],"cwd":5)"), "cwd"},
  };
  for (const Case& c : cases) {
    auto r = parse(c.text);
    ASSERT_FALSE(r) << c.text.substr(0, 200);
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_NE(r.error().detail.find(c.field), std::string::npos)
        << c.text.substr(0, 200) << " -> " << r.error().detail;
  }
}

TEST(TaskRequestTest, IdAloneIsReadWhateverTheRest) {
  auto obj = parse_json_object(R"({"id":"01j00000000000000000000001","agent":"nonsense"})");
  ASSERT_TRUE(obj);
  auto id = parse_task_id(*obj);
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, kId);
}

TEST(TaskRequestTest, StoredFormReadsBackTheSame) {
  for (const std::string& text :
       {body(R"(,"agent":"command","argv":["a","b c"],"env":{"K":"V"},"timeout_s":9,"cwd":"x/y")"),
        body(R"(,"agent":"opencode","prompt":"-do it","model":"openai/gpt-5","extra_args":["--x"])"),
        body(R"(,"agent":"claude-code","prompt":"p")")}) {
    auto first = parse(text);
    ASSERT_TRUE(first) << first.error().detail;
    boost::json::object stored = task_request_json(*first);
    stored["created_at"] = "2026-01-01T00:00:00.000Z";  // task.json carries it too
    auto again = parse_task_request(stored, kDefaults);
    ASSERT_TRUE(again) << again.error().detail;
    EXPECT_EQ(again->id, first->id);
    EXPECT_EQ(again->agent, first->agent);
    EXPECT_EQ(again->prompt, first->prompt);
    EXPECT_EQ(again->argv, first->argv);
    EXPECT_EQ(again->model, first->model);
    EXPECT_EQ(again->extra_args, first->extra_args);
    EXPECT_EQ(again->env, first->env);
    EXPECT_EQ(again->timeout_s, first->timeout_s);
    EXPECT_EQ(again->cwd, first->cwd);
    EXPECT_EQ(again->cwd_given, first->cwd_given);
  }
}

}  // namespace
}  // namespace sandboxd::runtimed
