// GET /metrics (SPEC §2.5.15, §11) against the real binary and Docker Engine.
#include "raw_http.h"
#include "sandboxd_fixture.h"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
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

// The edge's families (SPEC §11) after preview requests, with log.access_log on a file
// (SPEC §3.11).
class EdgeMetricsAndAccessLog : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = "log:\n  access_log: " + access_log() + "\n";
    return c;
  }
  std::string access_log() const { return logs_.path() + "/access.log"; }
  void rotate_then_signal(int sig);

  std::optional<RawResponse> preview_get(const std::string& host) {
    RawConnection conn(sd().edge_port());
    conn.send("GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
    return conn.read_response(false, std::chrono::seconds(60));
  }

  TempDir logs_;
};

TEST_F(EdgeMetricsAndAccessLog, EdgeFamiliesHaveHelpAndTypeAndCountPreviewRequests) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  ASSERT_NE(sd().edge_port(), 0) << sd().log();
  // A proxied request (the app writes its page right after start: wait for it, bounded),
  // then one the edge answers itself.
  std::optional<RawResponse> res;
  ASSERT_TRUE(wait_until([&] {
    res = preview_get(preview_host(id, 3000));
    return res && res->status == 200;
  }, std::chrono::seconds(30))) << (res ? res->body : "no answer");
  auto missing = preview_get(preview_host("01ARZ3NDEKTSV4RRFFQ69G5FAV", 3000));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  // A request is counted when it ends, just after its last byte went out: poll.
  const std::string edge_404 =
      R"(sandboxd_edge_requests_total{class="4xx",source="edge",listener="http"})";
  Answer a;
  ASSERT_TRUE(wait_until([&] {
    a = sd().get("/metrics");
    return sample(a.body, edge_404) == 1.0;
  }, std::chrono::seconds(5))) << a.body;

  std::set<std::string> helped, typed;
  std::istringstream in(a.body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP ", 0) == 0) helped.insert(line.substr(7, line.find(' ', 7) - 7));
    if (line.rfind("# TYPE ", 0) == 0) typed.insert(line.substr(7, line.find(' ', 7) - 7));
  }
  for (const char* family :
       {"sandboxd_edge_requests_total", "sandboxd_edge_request_duration_seconds",
        "sandboxd_edge_bytes_total", "sandboxd_edge_connections_open",
        "sandboxd_edge_connections_total", "sandboxd_edge_connections_rejected_total",
        "sandboxd_edge_tunnels_open", "sandboxd_edge_tunnels_closed_total",
        "sandboxd_edge_held_requests", "sandboxd_edge_errors_total",
        "sandboxd_edge_upstream_connections_open", "sandboxd_edge_upstream_retries_total",
        "sandboxd_edge_access_log_dropped_total", "sandboxd_port_waits_total",
        "sandboxd_held_request_seconds"}) {
    EXPECT_TRUE(helped.contains(family)) << family;
    EXPECT_TRUE(typed.contains(family)) << family;
  }
  for (const char* histogram :
       {"sandboxd_edge_request_duration_seconds", "sandboxd_held_request_seconds"}) {
    EXPECT_NE(a.body.find(std::string("# TYPE ") + histogram + " histogram"), std::string::npos)
        << histogram;
  }

  const std::string upstream_2xx =
      R"(sandboxd_edge_requests_total{class="2xx",source="upstream",listener="http"})";
  EXPECT_GE(sample(a.body, upstream_2xx).value_or(0), 1.0) << a.body;
  EXPECT_EQ(sample(a.body, R"(sandboxd_edge_errors_total{code="no_such_sandbox"})"), 1.0);
  EXPECT_EQ(sample(a.body, R"(sandboxd_edge_errors_total{code="http_400"})"), 0.0);  // listed at 0
  EXPECT_GE(sample(a.body, R"(sandboxd_edge_request_duration_seconds_count{source="upstream"})")
                .value_or(0), 1.0);
  EXPECT_EQ(
      sample(a.body, R"(sandboxd_edge_request_duration_seconds_bucket{source="edge",le="+Inf"})"),
      sample(a.body, R"(sandboxd_edge_request_duration_seconds_count{source="edge"})"));
  EXPECT_GT(sample(a.body, R"(sandboxd_edge_bytes_total{direction="out"})").value_or(0), 0);
  EXPECT_EQ(sample(a.body, R"(sandboxd_edge_tunnels_open{protocol="websocket"})"), 0.0);
  EXPECT_EQ(sample(a.body, R"(sandboxd_edge_tunnels_closed_total{by="sandbox_stop"})"), 0.0);
  EXPECT_EQ(sample(a.body, R"(sandboxd_edge_connections_rejected_total{reason="tls_handshake"})"),
            0.0);
  EXPECT_EQ(sample(a.body, "sandboxd_edge_access_log_dropped_total"), 0.0);
  EXPECT_TRUE(sample(a.body, R"(sandboxd_port_waits_total{result="ok"})").has_value());
  EXPECT_TRUE(
      sample(a.body, R"(sandboxd_held_request_seconds_count{result="forwarded"})").has_value());

  // log.access_log: one JSON line per request in the file, within about a second.
  std::string text;
  ASSERT_TRUE(wait_until([&] {
    std::ifstream f(access_log());
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    return text.find("\"error\":\"no_such_sandbox\"") != std::string::npos;
  }, std::chrono::seconds(3))) << text;
  EXPECT_NE(text.find("\"sandbox_id\":\"" + id + "\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"status\":200"), std::string::npos) << text;
  // The access lines no longer go to sandboxd's own log.
  EXPECT_EQ(sd().log().find("\"client_ip\""), std::string::npos);
}

// logrotate's move, then the signal: later lines go to the new file, none to the moved one.
void EdgeMetricsAndAccessLog::rotate_then_signal(int sig) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  auto missing = preview_get(preview_host(id, 3999));  // an edge answer: port_not_exposed
  ASSERT_TRUE(missing);
  ASSERT_TRUE(wait_until([&] { return read_whole(access_log()).find("port_not_exposed") != std::string::npos; },
                         std::chrono::seconds(3)));
  // Rotation: the file is moved away; without a reopen, lines would go on into the old one.
  const std::string rotated = access_log() + ".1";
  ASSERT_EQ(std::rename(access_log().c_str(), rotated.c_str()), 0);
  sd().signal(sig);
  ASSERT_TRUE(wait_until([&] { return sd().log().find("access log reopened") != std::string::npos; },
                         std::chrono::seconds(5))) << sd().log();
  auto again = preview_get(preview_host("01ARZ3NDEKTSV4RRFFQ69G5FAV", 3000));
  ASSERT_TRUE(again);
  EXPECT_TRUE(wait_until([&] { return read_whole(access_log()).find("no_such_sandbox") != std::string::npos; },
                         std::chrono::seconds(3))) << read_whole(access_log());
  EXPECT_EQ(read_whole(rotated).find("no_such_sandbox"), std::string::npos);
  EXPECT_TRUE(sd().get("/healthz").status == 200);  // still serving
}

TEST_F(EdgeMetricsAndAccessLog, SighupReopensTheAccessLogAfterARotation) {
  rotate_then_signal(SIGHUP);
  EXPECT_NE(sd().log().find("config reloaded"), std::string::npos);
}

// SPEC §9.4: SIGUSR1 only reopens log files (its default action would end the process).
TEST_F(EdgeMetricsAndAccessLog, Sigusr1ReopensTheAccessLogAndReloadsNothing) {
  rotate_then_signal(SIGUSR1);
  EXPECT_EQ(sd().log().find("config reloaded"), std::string::npos) << sd().log();
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
