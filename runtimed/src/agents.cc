#include "runtimed/agents.h"

#include <array>

namespace sandboxd::runtimed {

namespace {

struct ProviderKey {
  std::string_view provider;
  std::string_view variable;
};

// SPEC §6.5, in the order the "any of these" message lists them.
constexpr std::array<ProviderKey, 9> kOpencodeKeys{{
    {"anthropic", "ANTHROPIC_API_KEY"},
    {"openai", "OPENAI_API_KEY"},
    {"google", "GOOGLE_GENERATIVE_AI_API_KEY"},
    {"openrouter", "OPENROUTER_API_KEY"},
    {"groq", "GROQ_API_KEY"},
    {"mistral", "MISTRAL_API_KEY"},
    {"xai", "XAI_API_KEY"},
    {"deepseek", "DEEPSEEK_API_KEY"},
    {"opencode", "OPENCODE_API_KEY"},
}};

constexpr std::array<std::string_view, 3> kClaudeKeys{
    "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"};

constexpr std::string_view kWhere = "; set it in the sandbox env or the task env";

bool present(const EnvLookup& env, std::string_view name) {
  auto v = env(name);
  return v && !v->empty();
}

}  // namespace

AgentCommand build_agent_command(const TaskRequest& r) {
  AgentCommand c;
  auto add_tail = [&](std::vector<std::string>& argv, bool shown) {
    if (!r.model.empty()) {
      argv.emplace_back("--model");
      argv.push_back(r.model);
    }
    argv.insert(argv.end(), r.extra_args.begin(), r.extra_args.end());
    argv.emplace_back("--");
    argv.push_back(shown ? std::string("<prompt>") : r.prompt);
  };
  switch (r.agent) {
    case Agent::opencode:
      for (bool shown : {false, true}) {
        auto& argv = shown ? c.shown_argv : c.argv;
        argv = {"opencode", "run", "--format", "json"};
        add_tail(argv, shown);
      }
      c.env.emplace_back("OPENCODE_PERMISSION", R"({"*":"allow"})");
      break;
    case Agent::claude_code:
      for (bool shown : {false, true}) {
        auto& argv = shown ? c.shown_argv : c.argv;
        argv = {"claude", "-p", "--output-format", "stream-json", "--verbose",
                "--dangerously-skip-permissions"};
        add_tail(argv, shown);
      }
      break;
    case Agent::command:
      c.argv = r.argv;
      c.shown_argv = r.argv;
      break;
  }
  return c;
}

std::optional<std::string> missing_credentials(const TaskRequest& r, const EnvLookup& env,
                                               bool opencode_auth_file) {
  switch (r.agent) {
    case Agent::command:
      return std::nullopt;
    case Agent::claude_code: {
      for (std::string_view k : kClaudeKeys) {
        if (present(env, k)) return std::nullopt;
      }
      if (env("CLAUDE_CODE_USE_BEDROCK") == "1" || env("CLAUDE_CODE_USE_VERTEX") == "1") {
        return std::nullopt;
      }
      return "agent claude-code needs one of ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN, "
             "CLAUDE_CODE_OAUTH_TOKEN (or CLAUDE_CODE_USE_BEDROCK=1 / CLAUDE_CODE_USE_VERTEX=1)" +
             std::string(kWhere);
    }
    case Agent::opencode: {
      if (opencode_auth_file) return std::nullopt;
      std::size_t slash = r.model.find('/');
      if (slash != std::string::npos && slash > 0) {
        std::string_view provider = std::string_view(r.model).substr(0, slash);
        for (const auto& k : kOpencodeKeys) {
          if (k.provider != provider) continue;
          if (present(env, k.variable)) return std::nullopt;
          return "agent opencode needs " + std::string(k.variable) + " for model " + r.model +
                 std::string(kWhere) +
                 " (or log in so that ~/.local/share/opencode/auth.json exists)";
        }
        return std::nullopt;  // an unknown provider prefix skips the check
      }
      std::string names;
      for (const auto& k : kOpencodeKeys) {
        if (present(env, k.variable)) return std::nullopt;
        if (!names.empty()) names += ", ";
        names += k.variable;
      }
      return "agent opencode needs one of " + names + std::string(kWhere) +
             " (or log in so that ~/.local/share/opencode/auth.json exists)";
    }
  }
  return std::nullopt;
}

}  // namespace sandboxd::runtimed
