// GET /metrics (SPEC §2.5.15, §11) against the real binary and Docker Engine.
#include "sandboxd_fixture.h"

#include <set>
#include <sstream>

namespace sandboxd::testing {
namespace {

// The value of the sample line that starts with `series` ("name{labels}"), or nullopt.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

class Metrics : public SandboxdTest {};

TEST_F(Metrics, ExportsEveryFamilyWithHelpAndType) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());

  Answer a = sd().get("/metrics");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");

  std::set<std::string> helped, typed, histograms;
  std::vector<std::string> sampled;
  std::istringstream in(a.body);
  for (std::string line; std::getline(in, line);) {
    ASSERT_FALSE(line.empty());
    if (line.rfind("# HELP ", 0) == 0) {
      helped.insert(line.substr(7, line.find(' ', 7) - 7));
    } else if (line.rfind("# TYPE ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.contains(name)) << "TYPE before HELP: " << name;
      typed.insert(name);
      if (line.ends_with(" histogram")) histograms.insert(name);
    } else {
      sampled.push_back(line.substr(0, line.find_first_of("{ ")));
    }
  }
  for (std::string name : sampled) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string base = name.substr(0, name.size() - std::string(suffix).size());
      if (name.ends_with(suffix) && histograms.contains(base)) name = base;
    }
    EXPECT_TRUE(typed.contains(name)) << "no TYPE for " << name;
    EXPECT_TRUE(helped.contains(name)) << "no HELP for " << name;
  }
  for (const char* family :
       {"sandboxd_build_info", "sandboxd_sandboxes", "sandboxd_docker_request_duration_seconds",
        "sandboxd_docker_errors_total", "sandboxd_docker_events_connected",
        "sandboxd_store_queue_depth", "sandboxd_edge_connections_open",
        "sandboxd_edge_connections_total", "sandboxd_edge_held_requests", "sandboxd_wakes_total",
        "sandboxd_reaper_stops_total", "sandboxd_api_requests_total", "process_cpu_seconds_total",
        "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
        "process_max_fds", "process_start_time_seconds", "process_threads"}) {
    EXPECT_TRUE(typed.contains(family)) << family;
  }

  EXPECT_EQ(sample(a.body, R"(sandboxd_sandboxes{state="running"})"), 1.0) << a.body;
  for (const char* state : {"creating", "stopping", "stopped", "waking", "error", "destroyed", "purged"}) {
    EXPECT_EQ(sample(a.body, std::string(R"(sandboxd_sandboxes{state=")") + state + "\"}"), 0.0) << state;
  }
  auto creates = sample(a.body, R"(sandboxd_docker_request_duration_seconds_count{op="container_create"})");
  ASSERT_TRUE(creates) << a.body;
  EXPECT_GT(*creates, 0);
  EXPECT_EQ(sample(a.body, R"(sandboxd_docker_request_duration_seconds_bucket{op="container_create",le="+Inf"})"),
            creates);
  EXPECT_EQ(sample(a.body, "sandboxd_docker_events_connected"), 1.0) << a.body;
  EXPECT_EQ(sample(a.body, R"(sandboxd_api_requests_total{route="/v1/sandboxes",method="POST",class="2xx"})"),
            1.0) << a.body;
  EXPECT_GT(sample(a.body, "process_resident_memory_bytes").value_or(0), 0);

  // The scrape itself is counted, under its route pattern; unknown paths under route="".
  EXPECT_EQ(sd().get("/no/such/route").status, 404);
  Answer again = sd().get("/metrics");
  EXPECT_EQ(sample(again.body, R"(sandboxd_api_requests_total{route="/metrics",method="GET",class="2xx"})"),
            1.0) << again.body;
  EXPECT_EQ(sample(again.body, R"(sandboxd_api_requests_total{route="",method="GET",class="4xx"})"), 1.0)
      << again.body;
}

class MetricsDisabled : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = "metrics:\n  enabled: false\n";
    return c;
  }
};

TEST_F(MetricsDisabled, AnswersNotFound) {
  Answer a = sd().get("/metrics");
  EXPECT_EQ(a.status, 404) << a.body;
  EXPECT_EQ(a.error_code(), "not_found") << a.body;
}

constexpr const char* kReader = "reader-secret-0123456789";

class MetricsAuth : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = std::string("auth:\n"
                          "  required: true\n"
                          "  tokens:\n"
                          "    - name: reader\n"
                          "      secret: ") + kReader + "\n"
              "      read_only: true\n";
    return c;
  }
};

TEST_F(MetricsAuth, NeedsATokenAndAReadOnlyOneSuffices) {
  Answer anonymous = sd().get("/metrics");
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;
  EXPECT_EQ(anonymous.header("www-authenticate"), R"(Bearer realm="sandboxd")");
  Answer read = sd().call("GET", "/metrics", "", {std::string("Authorization: Bearer ") + kReader});
  EXPECT_EQ(read.status, 200) << read.body;
  EXPECT_NE(read.body.find("# TYPE sandboxd_build_info gauge"), std::string::npos);
}

}  // namespace
}  // namespace sandboxd::testing
