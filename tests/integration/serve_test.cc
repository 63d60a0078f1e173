// `sandboxd serve` as a user runs it: a real process, a real port, real signals.
#include "process.h"
#include "raw_http.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

#include <regex>

namespace sandboxd::testing {
namespace {

using namespace std::chrono_literals;

std::string minimal_config(const TempDir& dir) {
  return "data_dir: " + dir.path() + "/data\n"
         "control:\n"
         "  listen: 127.0.0.1:0\n"
         "edge:\n"
         "  http:\n"
         "    listen: 127.0.0.1:0\n";
}

std::uint16_t bound_port(Process& p) {
  auto line = p.wait_for_stderr("control listening", 20s);
  if (!line) return 0;
  std::smatch m;
  if (!std::regex_search(*line, m, std::regex("port=([0-9]+)"))) return 0;
  return static_cast<std::uint16_t>(std::stoi(m[1]));
}

TEST(Serve, AnswersHealthAndStopsOnSigterm) {
  TempDir dir;
  std::string config = dir.write("sandboxd.yaml", minimal_config(dir));
  Process p({SANDBOXD_BIN, "serve", "-c", config});
  std::uint16_t port = bound_port(p);
  ASSERT_NE(port, 0) << p.err();

  auto health = http_get(port, "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  // Ready once Docker answered and the boot reconciliation ran.
  std::optional<RawResponse> ready;
  wait_until([&] {
    ready = http_get(port, "/readyz");
    return ready && ready->status == 200;
  }, 20s);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  EXPECT_EQ(ready->body, "ready\n");

  // The store was created where SPEC §8 puts it, with its modes.
  struct stat st {};
  ASSERT_EQ(stat((dir.path() + "/data/state/sandboxd.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir.path() + "/data/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  auto before = std::chrono::steady_clock::now();
  p.signal(SIGTERM);
  auto status = p.wait_exit(5s);
  ASSERT_TRUE(status) << "sandboxd did not stop within 5 s of SIGTERM";
  EXPECT_EQ(*status, 0) << p.err();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
  EXPECT_NE(p.err().find("stopped"), std::string::npos) << p.err();
}

TEST(Serve, StopsOnSigint) {
  TempDir dir;
  std::string config = dir.write("sandboxd.yaml", minimal_config(dir));
  Process p({SANDBOXD_BIN, "serve", "-c", config});
  ASSERT_NE(bound_port(p), 0) << p.err();
  p.signal(SIGINT);
  auto status = p.wait_exit(5s);
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0);
}

TEST(Serve, LogsEffectiveConfigWithoutSecrets) {
  TempDir dir;
  std::string config = dir.write(
      "sandboxd.yaml", minimal_config(dir) +
                           "auth:\n"
                           "  tokens:\n"
                           "    - name: ci\n"
                           "      secret: ${SANDBOXD_TEST_SECRET}\n");
  Process p({SANDBOXD_BIN, "serve", "-c", config},
            {"SANDBOXD_TEST_SECRET=very-secret-token-value-123"});
  ASSERT_NE(bound_port(p), 0) << p.err();
  ASSERT_TRUE(p.wait_for_stderr("effective config", 5s)) << p.err();
  p.signal(SIGTERM);
  ASSERT_TRUE(p.wait_exit(5s));
  EXPECT_EQ(p.err().find("very-secret-token-value-123"), std::string::npos) << p.err();
  EXPECT_NE(p.err().find("tokens=1"), std::string::npos) << p.err();
}

TEST(Serve, InvalidConfigExits1WithEveryProblem) {
  TempDir dir;
  std::string config = dir.write("sandboxd.yaml",
                                 "data_dir: relative/path\n"
                                 "control:\n"
                                 "  listen: 127.0.0.1:99999\n");
  auto r = run({SANDBOXD_BIN, "serve", "-c", config});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("sandboxd.yaml:1:11: data_dir:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sandboxd.yaml:3:11: control.listen:"), std::string::npos) << r.err;
}

TEST(Serve, UnreadableConfigExits2) {
  auto r = run({SANDBOXD_BIN, "serve", "-c", "/nonexistent/sandboxd.yaml"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("/nonexistent/sandboxd.yaml"), std::string::npos) << r.err;
}

TEST(Serve, BusyPortIsAClearStartupError) {
  TempDir dir;
  std::string config = dir.write("sandboxd.yaml", minimal_config(dir));
  Process first({SANDBOXD_BIN, "serve", "-c", config});
  std::uint16_t port = bound_port(first);
  ASSERT_NE(port, 0);
  TempDir dir2;
  std::string config2 = dir2.write("sandboxd.yaml", "data_dir: " + dir2.path() +
                                                        "/data\ncontrol:\n  listen: 127.0.0.1:" +
                                                        std::to_string(port) +
                                                        "\nedge:\n  http:\n    listen: 127.0.0.1:0\n");
  auto r = run({SANDBOXD_BIN, "serve", "-c", config2});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << r.err;
}

TEST(Cli, VersionAndHelp) {
  auto v = run({SANDBOXD_BIN, "--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_TRUE(std::regex_search(v.out, std::regex("^sandboxd [0-9]+\\.[0-9]+\\.[0-9]+ ")))
      << v.out;
  auto h = run({SANDBOXD_BIN, "--help"});
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.out.find("check-config"), std::string::npos);
  auto bad = run({SANDBOXD_BIN, "frobnicate"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("unknown command frobnicate"), std::string::npos);
}

}  // namespace
}  // namespace sandboxd::testing
