#include "runtimed/agents.h"

#include <gtest/gtest.h>

#include <map>

namespace sandboxd::runtimed {
namespace {

using Argv = std::vector<std::string>;

TaskRequest agent_task(Agent agent, std::string model = "", Argv extra = {}) {
  TaskRequest r;
  r.id = "01J00000000000000000000001";
  r.agent = agent;
  r.prompt = "-add a login page";  // a leading '-' must stay the prompt
  r.model = std::move(model);
  r.extra_args = std::move(extra);
  return r;
}

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(AgentsTest, OpencodeCommandLine) {
  auto c = build_agent_command(agent_task(Agent::opencode));
  EXPECT_EQ(c.argv, (Argv{"opencode", "run", "--format", "json", "--", "-add a login page"}));
  EXPECT_EQ(c.shown_argv, (Argv{"opencode", "run", "--format", "json", "--", "<prompt>"}));
  ASSERT_EQ(c.env.size(), 1u);
  EXPECT_EQ(c.env[0].first, "OPENCODE_PERMISSION");
  EXPECT_EQ(c.env[0].second, R"({"*":"allow"})");

  auto m = build_agent_command(agent_task(Agent::opencode, "anthropic/claude-sonnet-4-5", {"--agent", "build"}));
  EXPECT_EQ(m.argv, (Argv{"opencode", "run", "--format", "json", "--model",
                          "anthropic/claude-sonnet-4-5", "--agent", "build", "--",
                          "-add a login page"}));
}

TEST(AgentsTest, ClaudeCodeCommandLine) {
  auto c = build_agent_command(agent_task(Agent::claude_code));
  EXPECT_EQ(c.argv, (Argv{"claude", "-p", "--output-format", "stream-json", "--verbose",
                          "--dangerously-skip-permissions", "--", "-add a login page"}));
  EXPECT_TRUE(c.env.empty());
  auto m = build_agent_command(agent_task(Agent::claude_code, "sonnet", {"--max-turns", "5"}));
  EXPECT_EQ(m.argv, (Argv{"claude", "-p", "--output-format", "stream-json", "--verbose",
                          "--dangerously-skip-permissions", "--model", "sonnet", "--max-turns",
                          "5", "--", "-add a login page"}));
  EXPECT_EQ(m.shown_argv.back(), "<prompt>");
}

TEST(AgentsTest, CommandIsArgvExactly) {
  TaskRequest r;
  r.agent = Agent::command;
  r.argv = {"bash", "-lc", "echo $HOME"};
  auto c = build_agent_command(r);
  EXPECT_EQ(c.argv, r.argv);
  EXPECT_EQ(c.shown_argv, r.argv);
  EXPECT_FALSE(missing_credentials(r, env_of({}), false));
}

TEST(AgentsTest, ClaudeCredentials) {
  auto task = agent_task(Agent::claude_code);
  auto missing = missing_credentials(task, env_of({}), true);
  ASSERT_TRUE(missing);
  for (const char* name : {"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
                           "sandbox env or the task env"}) {
    EXPECT_NE(missing->find(name), std::string::npos) << *missing;
  }
  EXPECT_TRUE(missing_credentials(task, env_of({{"ANTHROPIC_API_KEY", ""}}), false));
  for (auto [k, v] : std::map<std::string, std::string>{{"ANTHROPIC_API_KEY", "k"},
                                                        {"ANTHROPIC_AUTH_TOKEN", "t"},
                                                        {"CLAUDE_CODE_OAUTH_TOKEN", "o"},
                                                        {"CLAUDE_CODE_USE_BEDROCK", "1"},
                                                        {"CLAUDE_CODE_USE_VERTEX", "1"}}) {
    EXPECT_FALSE(missing_credentials(task, env_of({{k, v}}), false)) << k;
  }
  EXPECT_TRUE(missing_credentials(task, env_of({{"CLAUDE_CODE_USE_BEDROCK", "0"}}), false));
}

TEST(AgentsTest, OpencodeCredentialsFollowTheProvider) {
  auto anthropic = agent_task(Agent::opencode, "anthropic/claude-sonnet-4-5");
  auto missing = missing_credentials(anthropic, env_of({{"OPENAI_API_KEY", "k"}}), false);
  ASSERT_TRUE(missing);
  EXPECT_NE(missing->find("ANTHROPIC_API_KEY"), std::string::npos) << *missing;
  EXPECT_EQ(missing->find("OPENAI_API_KEY"), std::string::npos) << *missing;
  EXPECT_FALSE(missing_credentials(anthropic, env_of({{"ANTHROPIC_API_KEY", "k"}}), false));
  EXPECT_FALSE(missing_credentials(anthropic, env_of({}), true));  // auth.json

  std::map<std::string, std::string> providers{
      {"openai", "OPENAI_API_KEY"},         {"google", "GOOGLE_GENERATIVE_AI_API_KEY"},
      {"openrouter", "OPENROUTER_API_KEY"}, {"groq", "GROQ_API_KEY"},
      {"mistral", "MISTRAL_API_KEY"},       {"xai", "XAI_API_KEY"},
      {"deepseek", "DEEPSEEK_API_KEY"},     {"opencode", "OPENCODE_API_KEY"}};
  for (const auto& [provider, var] : providers) {
    auto task = agent_task(Agent::opencode, provider + "/some-model");
    auto m = missing_credentials(task, env_of({}), false);
    ASSERT_TRUE(m) << provider;
    EXPECT_NE(m->find(var), std::string::npos) << *m;
    EXPECT_FALSE(missing_credentials(task, env_of({{var, "k"}}), false)) << provider;
  }
  // An unknown provider prefix skips the check.
  EXPECT_FALSE(missing_credentials(agent_task(Agent::opencode, "local/llama"), env_of({}), false));
  // No model: any of the known variables.
  auto any = agent_task(Agent::opencode);
  auto none = missing_credentials(any, env_of({}), false);
  ASSERT_TRUE(none);
  EXPECT_NE(none->find("ANTHROPIC_API_KEY"), std::string::npos);
  EXPECT_NE(none->find("OPENCODE_API_KEY"), std::string::npos);
  EXPECT_FALSE(missing_credentials(any, env_of({{"GROQ_API_KEY", "k"}}), false));
}

}  // namespace
}  // namespace sandboxd::runtimed
