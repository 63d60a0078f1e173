// SPEC §9.5: the original project's environment variables — the start-up warnings and the
// YAML fragment of `sandboxd config from-env`, which must load as it is.
#include "config/legacy_env.h"

#include "config/load.h"

#include <gtest/gtest.h>

namespace sandboxd::config {
namespace {

using namespace std::chrono_literals;

LoadResult load(const std::string& yaml) {
  return parse_config(yaml, "from-env.yaml", [](const std::string&) { return std::nullopt; });
}

bool has(const std::vector<std::string>& lines, const std::string& text) {
  for (const auto& l : lines) {
    if (l.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(LegacyEnv, EachSetVariableIsNamedWithItsReplacementAndNoValue) {
  const EnvVars env{{"PATH", "/usr/bin"},
                    {"SANDBOXD_API_TOKENS", "ops=top-secret-value"},
                    {"SANDBOXD_POLLER_INTERVAL", "5"},
                    {"SANDBOXD_DB", "/var/lib/x.db"}};
  const auto w = legacy_env_warnings(env);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_TRUE(has(w, "SANDBOXD_API_TOKENS is not read; use auth.tokens")) << w[0];
  EXPECT_TRUE(has(w, "SANDBOXD_POLLER_INTERVAL is not read and has no replacement: there is no Traefik"));
  EXPECT_TRUE(has(w, "SANDBOXD_DB is not read and has no replacement: migrations are embedded"));
  EXPECT_FALSE(has(w, "top-secret-value"));
  EXPECT_TRUE(legacy_env_warnings({{"HOME", "/root"}}).empty());
}

TEST(LegacyEnv, TheFragmentLoadsWithTheSameSettings) {
  const EnvVars env{{"PREVIEW_DOMAIN", "apps.example.com"},
                    {"HTTP_PORT", "8080"},
                    {"SANDBOXD_DATA_DIR", "/srv/sandboxd"},
                    {"SANDBOXD_API_BIND", "127.0.0.1:9191"},
                    {"SANDBOXD_API_TOKENS", "ops=s3cret-token-for-ops,ci=s3cret-token-for-ci"},
                    {"SANDBOXD_PREVIEW_TOKEN_SECRETS", "k1=0123456789abcdef0123456789abcdef"},
                    {"SANDBOXD_IDLE_THRESHOLD_SECONDS", "2100"},
                    {"SANDBOXD_KEEPALIVE_MAX_SECONDS", "7200"},
                    {"SANDBOXD_PRESSURE_INTERVAL_SECONDS", "15"},
                    {"SANDBOXD_MEM_REFUSE_WAKES_PCT", "12"},
                    {"SANDBOXD_WAKE_COST_MB", "800"},
                    {"SANDBOXD_WAKE_TCP_READY_TIMEOUT_SECONDS", "8"},
                    {"SANDBOXD_IMAGE", "my-image:1"},
                    {"RUNTIMED_PREVIEW_PORT", "5173"},
                    {"SANDBOXD_DEBUG", "true"},
                    {"SANDBOXD_LOG_DIR", "/var/log/sandboxd"},
                    {"SANDBOXD_ENV_FILE", "/etc/sandboxd.env"}};
  const FromEnv got = yaml_from_env(env);
  EXPECT_TRUE(got.any);
  EXPECT_TRUE(got.problems.empty()) << got.problems.front();
  const LoadResult r = load(got.yaml);
  ASSERT_TRUE(r.config) << got.yaml << "\n" << (r.errors.empty() ? "" : r.errors.front().str());
  const Config& c = *r.config;
  EXPECT_EQ(c.preview.domain, "apps.example.com");
  EXPECT_EQ(c.edge.http.listen.port, 8080);
  EXPECT_EQ(c.data_dir, "/srv/sandboxd");
  EXPECT_EQ(c.control.listen.host, "127.0.0.1");
  EXPECT_EQ(c.control.listen.port, 9191);
  ASSERT_EQ(c.auth.tokens.size(), 2u);
  EXPECT_EQ(c.auth.tokens[1].name, "ci");
  ASSERT_EQ(c.auth.preview.secrets.size(), 1u);
  EXPECT_EQ(c.auth.preview.secrets[0].kid, "k1");
  EXPECT_EQ(c.idle.threshold, 35min);
  EXPECT_EQ(c.idle.keepalive_max, 2h);
  EXPECT_EQ(c.pressure.check_interval, 15s);
  ASSERT_EQ(c.pressure.bands.size(), 3u);
  EXPECT_EQ(c.pressure.bands[0].below, 15);  // the defaults stay where nothing was set
  EXPECT_EQ(c.pressure.bands[1].below, 12);
  EXPECT_EQ(c.pressure.bands[1].stop_idle_for, 1min);
  EXPECT_EQ(c.wake.admission.min_available_memory.percent, 12);
  EXPECT_EQ(c.wake.admission.estimate_per_sandbox, 800ull * 1024 * 1024);
  EXPECT_EQ(c.wake.timeout, 8s);
  EXPECT_EQ(c.docker.image, "my-image:1");
  EXPECT_EQ(c.sandbox.dev_port, 5173);
  EXPECT_EQ(c.log.level, log::Level::debug);
  EXPECT_EQ(c.log.access_log, "/var/log/sandboxd/access.log");
  EXPECT_NE(got.yaml.find("# SANDBOXD_ENV_FILE: no replacement"), std::string::npos) << got.yaml;
}

TEST(LegacyEnv, BadValuesAreNamedAndLeftOutAndTheRestStillLoads) {
  const EnvVars env{{"HTTP_PORT", "eighty"},
                    {"SANDBOXD_IDLE_THRESHOLD_SECONDS", "-5"},
                    {"SANDBOXD_API_TOKENS", "no-equals-sign"},
                    {"SANDBOXD_MEM_EMERGENCY_PCT", "150"},
                    {"SANDBOXD_IMAGE", "quote\"and\\backslash"},
                    {"SANDBOXD_PRESSURE_INTERVAL_SECONDS", "0"}};
  const FromEnv got = yaml_from_env(env);
  ASSERT_EQ(got.problems.size(), 4u) << got.yaml;
  EXPECT_TRUE(has(got.problems, "HTTP_PORT: not a port"));
  EXPECT_TRUE(has(got.problems, "SANDBOXD_IDLE_THRESHOLD_SECONDS: not a whole number of seconds"));
  EXPECT_TRUE(has(got.problems, "SANDBOXD_API_TOKENS: not a comma-separated list"));
  EXPECT_TRUE(has(got.problems, "SANDBOXD_MEM_EMERGENCY_PCT: not a percentage"));
  const LoadResult r = load(got.yaml);
  ASSERT_TRUE(r.config) << got.yaml;
  EXPECT_EQ(r.config->docker.image, "quote\"and\\backslash");
  EXPECT_FALSE(r.config->pressure.enabled);
  EXPECT_EQ(r.config->idle.threshold, 35min);  // left at the default
}

TEST(LegacyEnv, NothingSetIsNothingToSay) {
  const FromEnv got = yaml_from_env({{"HOME", "/root"}});
  EXPECT_FALSE(got.any);
  EXPECT_TRUE(got.problems.empty());
  EXPECT_TRUE(got.yaml.empty());
}

}  // namespace
}  // namespace sandboxd::config
