// `sandboxd check-config` as an operator runs it.
#include "process.h"

#include <gtest/gtest.h>

namespace sandboxd::testing {
namespace {

TEST(CheckConfig, AcceptsTheShippedExample) {
  auto r = run({SANDBOXD_BIN, "check-config", "-c",
                std::string(SANDBOXD_SOURCE_DIR) + "/config/sandboxd.example.yaml"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("sandboxd.example.yaml"), std::string::npos) << r.out;
}

TEST(CheckConfig, MisspelledKeyGetsPlaceAndSuggestion) {
  TempDir dir;
  std::string file = dir.write("sandboxd.yaml",
                               "idle:\n"
                               "  treshold: 10m\n");
  auto r = run({SANDBOXD_BIN, "check-config", "-c", file});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(file + ":2:3: idle.treshold: unknown key (did you mean idle.threshold?)"),
            std::string::npos)
      << r.err;
}

TEST(CheckConfig, ReportsEveryProblemAtOnce) {
  TempDir dir;
  std::string file = dir.write("sandboxd.yaml",
                               "log:\n"
                               "  level: loud\n"
                               "wake:\n"
                               "  timeout: 30\n"
                               "sandbox:\n"
                               "  memory: 512m\n");
  auto r = run({SANDBOXD_BIN, "check-config", "-c", file});
  EXPECT_EQ(r.status, 1);
  auto l = r.err.find(":2:10: log.level:");
  auto w = r.err.find(":4:12: wake.timeout:");
  auto m = r.err.find(":6:11: sandbox.memory:");
  ASSERT_NE(l, std::string::npos) << r.err;
  ASSERT_NE(w, std::string::npos) << r.err;
  ASSERT_NE(m, std::string::npos) << r.err;
  EXPECT_LT(l, w);
  EXPECT_LT(w, m);
}

TEST(CheckConfig, PrintRedactsSecrets) {
  TempDir dir;
  std::string file = dir.write("sandboxd.yaml",
                               "auth:\n"
                               "  tokens:\n"
                               "    - name: admin\n"
                               "      secret: 0123456789abcdef-secret\n");
  auto r = run({SANDBOXD_BIN, "check-config", "--print", "-c", file});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find("0123456789abcdef-secret"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("<redacted>"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("threshold: 35m"), std::string::npos) << "defaults are filled in";
}

TEST(CheckConfig, UnreadableFileExits2) {
  auto r = run({SANDBOXD_BIN, "check-config", "-c", "/nonexistent.yaml"});
  EXPECT_EQ(r.status, 2);
}

}  // namespace
}  // namespace sandboxd::testing

namespace sandboxd::testing {
namespace {

// SPEC §9.5: the original's variables as a fragment that check-config accepts; a value that
// cannot be converted is named on stderr with exit status 1.
TEST(ConfigFromEnv, PrintsAFragmentThatCheckConfigAccepts) {
  auto r = run({"/usr/bin/env", "SANDBOXD_IDLE_THRESHOLD_SECONDS=600", "HTTP_PORT=8081",
                "SANDBOXD_API_TOKENS=ops=0123456789abcdef0123456789abcdef", SANDBOXD_BIN,
                "config", "from-env"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("threshold: 10m"), std::string::npos) << r.out;
  TempDir dir;
  const std::string file = dir.write("sandboxd.yaml", r.out);
  auto checked = run({SANDBOXD_BIN, "check-config", "-c", file});
  EXPECT_EQ(checked.status, 0) << r.out << checked.out << checked.err;

  auto bad = run({"/usr/bin/env", "HTTP_PORT=http", SANDBOXD_BIN, "config", "from-env"});
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("HTTP_PORT: not a port (1-65535); left out"), std::string::npos) << bad.err;
  EXPECT_EQ(run({SANDBOXD_BIN, "config", "from-yaml"}).status, 2);
}

}  // namespace
}  // namespace sandboxd::testing
