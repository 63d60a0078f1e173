// The Prometheus text writer and the counters of SPEC §11.
#include "metrics.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <fstream>

namespace sandboxd::control {
namespace {

TEST(MetricsText, Counter) {
  TextWriter w;
  w.family("sandboxd_x_total", "counter", "Things counted.");
  w.sample("sandboxd_x_total", {}, 3);
  EXPECT_EQ(w.text(),
            "# HELP sandboxd_x_total Things counted.\n"
            "# TYPE sandboxd_x_total counter\n"
            "sandboxd_x_total 3\n");
}

TEST(MetricsText, LabelledGaugeEscapesValues) {
  TextWriter w;
  w.family("sandboxd_g", "gauge", "A gauge with a \\ and\na newline.");
  w.sample("sandboxd_g", {{"a", "plain"}, {"b", "q\"uote\\back\nline"}}, 0.25);
  w.sample("sandboxd_g", {{"a", ""}, {"b", "x"}}, -1);
  EXPECT_EQ(w.text(),
            "# HELP sandboxd_g A gauge with a \\\\ and\\na newline.\n"
            "# TYPE sandboxd_g gauge\n"
            "sandboxd_g{a=\"plain\",b=\"q\\\"uote\\\\back\\nline\"} 0.25\n"
            "sandboxd_g{a=\"\",b=\"x\"} -1\n");
}

TEST(MetricsText, HistogramIsCumulativeWithInfSumAndCount) {
  constexpr std::array<double, 3> bounds{.005, 1, 2.5};
  Histogram h(bounds);
  h.observe(0.001);  // ≤ .005
  h.observe(0.005);  // ≤ .005 (bounds are inclusive)
  h.observe(2);      // ≤ 2.5
  h.observe(100);    // +Inf only
  TextWriter w;
  w.family("sandboxd_h_seconds", "histogram", "Latency.");
  h.write(w, "sandboxd_h_seconds", {{"op", "ping"}});
  EXPECT_EQ(w.text(),
            "# HELP sandboxd_h_seconds Latency.\n"
            "# TYPE sandboxd_h_seconds histogram\n"
            "sandboxd_h_seconds_bucket{op=\"ping\",le=\"0.005\"} 2\n"
            "sandboxd_h_seconds_bucket{op=\"ping\",le=\"1\"} 2\n"
            "sandboxd_h_seconds_bucket{op=\"ping\",le=\"2.5\"} 3\n"
            "sandboxd_h_seconds_bucket{op=\"ping\",le=\"+Inf\"} 4\n"
            "sandboxd_h_seconds_sum{op=\"ping\"} 102.006\n"
            "sandboxd_h_seconds_count{op=\"ping\"} 4\n");
}

TEST(MetricsText, HistogramWithoutLabels) {
  TextWriter w;
  constexpr std::array<double, 1> bounds{0.5};
  constexpr std::array<std::uint64_t, 2> counts{1, 0};
  w.histogram("h", {}, bounds, counts, 0.125);
  EXPECT_EQ(w.text(),
            "h_bucket{le=\"0.5\"} 1\n"
            "h_bucket{le=\"+Inf\"} 1\n"
            "h_sum 0.125\n"
            "h_count 1\n");
}

TEST(MetricsText, Values) {
  EXPECT_EQ(format_metric_value(0), "0");
  EXPECT_EQ(format_metric_value(1e6), "1000000");
  EXPECT_EQ(format_metric_value(0.0005), "0.0005");
  EXPECT_EQ(format_metric_value(2.5), "2.5");
  EXPECT_EQ(format_metric_value(1e-9), "1e-09");
  EXPECT_EQ(format_metric_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_metric_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(format_metric_value(0.0 / 0.0), "NaN");
}

TEST(MetricsRegistry, CountsDockerCallsApiRequestsAndWakes) {
  Metrics m;
  m.set_api_routes({"/v1/sandboxes", "/v1/sandboxes/{id}"});
  m.api_request(1, "GET", 200);
  m.api_request(1, "GET", 204);
  m.api_request(m.api_route_count(), "BREW", 404);
  docker::CallRecord ok;
  ok.op = docker::Op::container_create;
  ok.seconds = 0.002;
  m.docker_call(ok);
  docker::CallRecord bad;
  bad.op = docker::Op::container_start;
  bad.seconds = 0.1;
  bad.error = docker::DockerErrorKind::daemon;
  bad.http_status = 500;
  m.docker_call(bad);
  docker::CallRecord down;
  down.op = docker::Op::ping;
  down.error = docker::DockerErrorKind::unreachable;
  m.docker_call(down);
  m.wake(WakeResult::timeout);
  m.idle_reaper_stop();
  m.docker_events_connected(true);
  TextWriter w;
  m.write(w);
  const std::string& t = w.text();
  auto has = [&](const std::string& line) { return t.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("sandboxd_api_requests_total{route=\"/v1/sandboxes/{id}\",method=\"GET\",class=\"2xx\"} 2")) << t;
  EXPECT_TRUE(has("sandboxd_api_requests_total{route=\"\",method=\"other\",class=\"4xx\"} 1")) << t;
  EXPECT_TRUE(has("sandboxd_docker_request_duration_seconds_bucket{op=\"container_create\",le=\"0.0025\"} 1"));
  EXPECT_TRUE(has("sandboxd_docker_request_duration_seconds_count{op=\"container_create\"} 1"));
  EXPECT_TRUE(has("sandboxd_docker_request_duration_seconds_count{op=\"other\"} 0"));
  EXPECT_TRUE(has("sandboxd_docker_errors_total{op=\"container_start\",kind=\"status_5xx\"} 1")) << t;
  EXPECT_TRUE(has("sandboxd_docker_errors_total{op=\"ping\",kind=\"connect\"} 1")) << t;
  EXPECT_TRUE(has("sandboxd_docker_events_connected 1"));
  EXPECT_TRUE(has("sandboxd_wakes_total{result=\"timeout\"} 1"));
  EXPECT_TRUE(has("sandboxd_wakes_total{result=\"ok\"} 0"));
  EXPECT_TRUE(has("sandboxd_reaper_stops_total{reason=\"idle\",band=\"\"} 1"));
}

TEST(MetricsRegistry, ApiDurationsWakePhasesAndReaperRuns) {
  Metrics m;
  m.set_api_routes({"/v1/sandboxes"});
  m.api_request(0, "POST", 201, 0.03);
  m.api_request(0, "GET", 200);  // no duration: counted, not timed
  m.wake_phase(WakePhase::queue, 0.001);
  m.wake_phase(WakePhase::start, 0.4);
  m.reaper_run(Reaper::idle);
  m.reaper_run(Reaper::idle);
  m.reaper_stop_failure(Reaper::idle);
  TextWriter w;
  m.write(w);
  m.write_wake_phases(w);
  const std::string& t = w.text();
  auto has = [&](const std::string& line) { return t.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("sandboxd_api_request_duration_seconds_bucket{route=\"/v1/sandboxes\",method=\"POST\",le=\"0.05\"} 1")) << t;
  EXPECT_TRUE(has("sandboxd_api_request_duration_seconds_bucket{route=\"/v1/sandboxes\",method=\"POST\",le=\"0.025\"} 0")) << t;
  EXPECT_EQ(t.find("sandboxd_api_request_duration_seconds_count{route=\"/v1/sandboxes\",method=\"GET\"}"),
            std::string::npos);
  EXPECT_TRUE(has("sandboxd_wake_phase_seconds_bucket{phase=\"queue\",le=\"0.005\"} 1")) << t;
  EXPECT_TRUE(has("sandboxd_wake_phase_seconds_bucket{phase=\"start\",le=\"0.25\"} 0")) << t;
  EXPECT_TRUE(has("sandboxd_wake_phase_seconds_bucket{phase=\"start\",le=\"0.5\"} 1")) << t;
  EXPECT_TRUE(has("sandboxd_reaper_runs_total{reaper=\"idle\"} 2")) << t;
  EXPECT_TRUE(has("sandboxd_reaper_runs_total{reaper=\"pressure\"} 0")) << t;
  EXPECT_TRUE(has("sandboxd_reaper_stop_failures_total{reason=\"idle\"} 1")) << t;
  for (const char* family : {"sandboxd_api_request_duration_seconds", "sandboxd_reaper_runs_total",
                             "sandboxd_reaper_stop_failures_total"}) {
    EXPECT_NE(t.find(std::string("# HELP ") + family + " "), std::string::npos) << family;
  }
}

TEST(HostMemory, ReadsTotalAndAvailableFromMeminfo) {
  const std::string path = ::testing::TempDir() + "/meminfo";
  {
    std::ofstream out(path);
    out << "MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:   12000000 kB\n";
  }
  auto mem = read_host_memory(path);
  ASSERT_TRUE(mem);
  EXPECT_EQ(mem->total_bytes, 24000000ull * 1024);
  EXPECT_EQ(mem->available_bytes, 12000000ull * 1024);
  {
    std::ofstream out(path);
    out << "MemTotal:       24000000 kB\n";  // no MemAvailable (kernels before 3.14)
  }
  EXPECT_FALSE(read_host_memory(path));
  EXPECT_FALSE(read_host_memory(path + ".missing"));
  EXPECT_TRUE(read_host_memory());  // this machine's
}

TEST(MetricsRegistry, ProcessFamiliesComeFromProc) {
  TextWriter w;
  write_process_metrics(w);
  const std::string& t = w.text();
  for (const char* family : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                             "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                             "process_start_time_seconds", "process_threads"}) {
    EXPECT_NE(t.find(std::string("# TYPE ") + family + " "), std::string::npos) << family << "\n" << t;
  }
}

}  // namespace
}  // namespace sandboxd::control
