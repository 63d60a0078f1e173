// The SIGHUP diff (SPEC §9.4): each changed key is named once, as `restart` or `live`
// exactly as §9.2 marks it, and a reload keeps every restart key's running value.
#include "config/load.h"
#include "config/reload.h"

#include <gtest/gtest.h>

#include <cctype>
#include <ostream>
#include <string>
#include <vector>

namespace sandboxd::config {
namespace {

using Names = std::vector<std::string>;

Config parse_ok(const std::string& yaml) {
  EnvLookup no_env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  LoadResult r = parse_config(yaml, "sandboxd.yaml", no_env);
  EXPECT_TRUE(r.ok()) << yaml << (r.errors.empty() ? "" : r.errors.front().str());
  return r.ok() ? *r.config : Config{};
}

struct Case {
  std::string yaml;  // a change against the defaults
  Names restart;
  Names live;
};

// Keeps ctest's names readable: the YAML on one line instead of the bytes.
void PrintTo(const Case& c, std::ostream* os) {
  for (char ch : c.yaml) *os << (ch == '\n' ? ' ' : ch);
}

class ReloadDiff : public ::testing::TestWithParam<Case> {};

TEST_P(ReloadDiff, NamesEachChangedKeyOnceOnItsSide) {
  const Case& c = GetParam();
  const Config running = default_config();
  const Config next = parse_ok(c.yaml);
  EXPECT_EQ(restart_changes(running, next), c.restart) << c.yaml;
  EXPECT_EQ(live_changes(running, next), c.live) << c.yaml;
  // Nothing is ever both.
  EXPECT_EQ(restart_changes(running, running), Names{});
  EXPECT_EQ(live_changes(running, running), Names{});
}

INSTANTIATE_TEST_SUITE_P(
    Keys, ReloadDiff,
    ::testing::Values(
        Case{"data_dir: /srv/sandboxd\n", {"data_dir"}, {}},
        Case{"control: {listen: \"127.0.0.1:9191\"}\n", {"control.listen"}, {}},
        Case{"preview: {domain: example.test}\n", {"preview.domain"}, {}},
        Case{"preview: {suffix: p.example.test}\n", {"preview.suffix"}, {}},
        Case{"edge: {http: {listen: \":8081\"}}\n", {"edge.http.listen"}, {}},
        Case{"edge: {https: {listen: \":8443\"}}\n", {"edge.https.listen"}, {}},
        Case{"edge: {workers: 3}\n", {"edge.workers"}, {}},
        Case{"docker: {socket: \"unix:///run/other.sock\"}\n", {"docker.socket"}, {}},
        Case{"docker: {network: other_net}\n", {"docker.network"}, {}},
        Case{"sandbox: {user: \"2000:2000\"}\n", {"sandbox.user"}, {}},
        Case{"store: {read_connections: 8}\n", {"store.read_connections"}, {}},
        Case{"store: {busy_timeout: 9s}\n", {"store.busy_timeout"}, {}},
        // Spelling out a default address moves no socket.
        Case{"control: {listen: \"127.0.0.1:9090\"}\n", {}, {}},
        Case{"edge: {limits: {max_header_bytes: 1KiB}}\n", {}, {"edge.limits.max_header_bytes"}},
        Case{"edge: {timeouts: {header_read: 2s, keepalive_idle: 3s}}\n",
             {},
             {"edge.timeouts.header_read", "edge.timeouts.keepalive_idle"}},
        Case{"edge: {upstream: {idle_timeout: 1s}, redirect_http: false}\n",
             {},
             {"edge.redirect_http", "edge.upstream.idle_timeout"}},
        Case{"idle: {threshold: 1m, check_interval: 5s}\n",
             {},
             {"idle.threshold", "idle.check_interval"}},
        Case{"pressure: {enabled: false}\nwake: {max_concurrent: 2}\n",
             {},
             {"wake.max_concurrent", "pressure.enabled"}},
        Case{"metrics: {enabled: false}\nfiles: {read_max: 1MiB}\nexec: {timeout: 1m}\n",
             {},
             {"exec.timeout", "files.read_max", "metrics.enabled"}},
        Case{"docker: {image: other:latest, network: n2}\nlog: {level: debug}\n",
             {"docker.network"},
             {"log.level", "docker.image"}},
        Case{"auth:\n  tokens: [{name: ci, secret: \"0123456789abcdef\"}]\n",
             {},
             {"auth.tokens"}}),
    [](const ::testing::TestParamInfo<Case>& info) {
      const Case& c = info.param;
      std::string name = !c.restart.empty() ? c.restart.front()
                         : !c.live.empty()  ? c.live.front()
                                            : "nothing";
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name + "_" + std::to_string(info.index);
    });

TEST(ReloadKeep, RestartKeysKeepTheirRunningValuesAndLiveOnesTakeTheNewOnes) {
  const Config running = parse_ok(
      "data_dir: /srv/a\n"
      "edge: {http: {listen: \":0\"}, workers: 2, limits: {max_header_bytes: 8KiB}}\n"
      "idle: {threshold: 1h, check_interval: 10s}\n");
  const Config next = parse_ok(
      "data_dir: /srv/b\n"
      "edge: {http: {listen: \":8081\"}, workers: 4, limits: {max_header_bytes: 1KiB}}\n"
      "idle: {threshold: 2s, check_interval: 1s}\n");
  const Config applied = keep_restart_keys(running, next);
  EXPECT_EQ(applied.data_dir, "/srv/a");
  EXPECT_EQ(applied.edge.http.listen, running.edge.http.listen);
  EXPECT_EQ(applied.edge.workers, 2u);
  EXPECT_EQ(applied.edge.limits.max_header_bytes, 1024u);
  EXPECT_EQ(applied.idle.threshold, std::chrono::seconds(2));
  EXPECT_EQ(applied.idle.check_interval, std::chrono::seconds(1));
  EXPECT_EQ(restart_changes(running, applied), Names{});
  EXPECT_EQ(live_changes(applied, next), Names{});
  EXPECT_EQ(restart_changes(running, next),
            (Names{"data_dir", "edge.http.listen", "edge.workers"}));
}

}  // namespace
}  // namespace sandboxd::config
