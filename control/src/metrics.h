// Metrics of SPEC §11: a Prometheus text-format 0.0.4 writer and the counters control
// updates on its request paths.
//
// Thread safety: every Metrics update is lock-free (relaxed atomics), so updates from the
// control thread, the edge's workers (through the Waker) or anything else never contend.
// A scrape reads the atomics one by one: a histogram's buckets, sum and count may be a few
// observations apart, never torn. TextWriter is a plain value, one per scrape.
#pragma once

#include "docker/client.h"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandboxd::control {

using MetricLabels = std::vector<std::pair<std::string_view, std::string_view>>;

// Label value escaping of the text format: backslash, double quote and newline.
std::string escape_label_value(std::string_view v);
// Sample values: integers without a fraction, others in their shortest exact form,
// +Inf, -Inf and NaN as the format spells them.
std::string format_metric_value(double v);

class TextWriter {
 public:
  // `type`: "counter", "gauge" or "histogram". Call once per family, before its samples.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const MetricLabels& labels, double value);
  // `counts` holds one count per bound plus the +Inf overflow, not cumulated.
  void histogram(std::string_view name, const MetricLabels& labels, std::span<const double> bounds,
                 std::span<const std::uint64_t> counts, double sum);
  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void series(std::string_view name, std::string_view suffix, const MetricLabels& labels,
              std::string_view le, double value);
  std::string out_;
};

// SPEC §11 bucket sets.
inline constexpr std::array<double, 15> kRequestBuckets{.005, .01, .025, .05, .1, .25, .5, 1,
                                                        2,    4,   8,    15,  30, 60, 120};
inline constexpr std::array<double, 15> kLatencyBuckets{.0005, .001, .0025, .005, .01,
                                                        .025,  .05,  .1,    .25,  .5,
                                                        1,     2.5,  5,     10,   30};

// A histogram with fixed bounds and atomic bucket counts.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);
  void observe(double v);
  std::span<const double> bounds() const { return bounds_; }
  // One count per bound plus +Inf, not cumulated; and the sum of observations.
  std::vector<std::uint64_t> counts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  void write(TextWriter& w, std::string_view name, const MetricLabels& labels) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

enum class WakeResult { ok, timeout, refused, failed, cancelled };
// §11 `phase` of sandboxd_wake_phase_seconds that control measures: waiting for a wake slot
// (and admission), and the start call until `running` with an address. The edge measures
// the port and first-byte phases.
enum class WakePhase { queue, start };
inline constexpr std::size_t kWakePhases = 2;
// §11 `reaper` / `reason` of the reaper families.
enum class Reaper { idle, pressure };
inline constexpr std::size_t kReapers = 2;
inline constexpr std::size_t kWakeResults = 5;
std::string_view wake_result_name(WakeResult r);

// §11 `kind` of sandboxd_docker_errors_total.
enum class DockerErrorLabel { connect, timeout, status_4xx, status_5xx, protocol };
inline constexpr std::size_t kDockerErrorLabels = 5;
std::string_view docker_error_label_name(DockerErrorLabel k);
DockerErrorLabel docker_error_label(const docker::CallRecord& call);

// The counters control owns. Families computed at scrape time (sandboxes per state, store
// and edge gauges, process_*) are written by the scraper from their sources.
class Metrics {
 public:
  Metrics();

  // The route patterns the API counts under; call once before serving. Index i of
  // api_request() is patterns[i]; api_route_count() (one past the last) means "no route".
  void set_api_routes(std::vector<std::string> patterns);
  std::size_t api_route_count() const { return api_routes_.size(); }
  // `seconds` < 0: the duration is unknown and only the count moves.
  void api_request(std::size_t route, std::string_view method, int status, double seconds = -1);

  void docker_call(const docker::CallRecord& call);
  void docker_events_connected(bool up) { docker_events_connected_.store(up ? 1 : 0, std::memory_order_relaxed); }
  void wake(WakeResult r) { wakes_[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed); }
  void idle_reaper_stop() { idle_stops_.fetch_add(1, std::memory_order_relaxed); }
  // A pressure stop in the band labelled `band` (its `below`, §4.6 step 5).
  void pressure_stop(const std::string& band);
  void wake_phase(WakePhase p, double seconds) { wake_phases_[static_cast<std::size_t>(p)]->observe(seconds); }
  void reaper_run(Reaper r) { reaper_runs_[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed); }
  void reaper_stop_failure(Reaper r) {
    reaper_stop_failures_[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }

  // The families above, HELP and TYPE included, except sandboxd_wake_phase_seconds, which
  // control and the edge share: write_wake_phases writes control's series of it (queue,
  // start) after the caller wrote its family line.
  void write(TextWriter& w) const;
  void write_wake_phases(TextWriter& w) const;

 private:
  static constexpr std::size_t kOps = static_cast<std::size_t>(docker::Op::other) + 1;
  static constexpr std::size_t kMethods = 8;  // GET HEAD POST PUT DELETE PATCH OPTIONS other
  static constexpr std::size_t kClasses = 5;  // 1xx … 5xx

  std::vector<std::string> api_routes_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> api_requests_;  // (route+1) × methods × classes
  std::vector<std::unique_ptr<Histogram>> docker_durations_;     // by op
  std::array<std::array<std::atomic<std::uint64_t>, kDockerErrorLabels>, kOps> docker_errors_{};
  std::atomic<int> docker_events_connected_{0};
  std::array<std::atomic<std::uint64_t>, kWakeResults> wakes_{};
  std::atomic<std::uint64_t> idle_stops_{0};
  std::vector<std::unique_ptr<Histogram>> api_durations_;     // (route+1) × methods
  std::array<std::unique_ptr<Histogram>, kWakePhases> wake_phases_;
  std::array<std::atomic<std::uint64_t>, kReapers> reaper_runs_{};
  std::array<std::atomic<std::uint64_t>, kReapers> reaper_stop_failures_{};
  mutable std::mutex pressure_mu_;
  std::map<std::string, std::uint64_t> pressure_stops_;  // band → stops
};

// Host memory from /proc/meminfo (SPEC §4.6); nullopt when it cannot be read.
struct HostMemory {
  std::uint64_t total_bytes = 0;
  std::uint64_t available_bytes = 0;
};
std::optional<HostMemory> read_host_memory(const std::string& meminfo = "/proc/meminfo");

// Where host memory is read: /proc/meminfo, or — a TEST HOOK, the one fake of §4.6's tests —
// the file named by SANDBOXD_TEST_MEMINFO, so that tests can drive MemAvailable.
std::string meminfo_path();

// process_* families from /proc/self; a family whose source cannot be read is left out.
void write_process_metrics(TextWriter& w);

}  // namespace sandboxd::control
