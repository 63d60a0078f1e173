#include "metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sandboxd::control {

namespace {

constexpr std::array<std::string_view, 8> kMethodNames{"GET", "HEAD", "POST", "PUT",
                                                       "DELETE", "PATCH", "OPTIONS", "other"};
constexpr std::array<std::string_view, 5> kClassNames{"1xx", "2xx", "3xx", "4xx", "5xx"};

std::size_t method_index(std::string_view method) {
  for (std::size_t i = 0; i + 1 < kMethodNames.size(); ++i) {
    if (kMethodNames[i] == method) return i;
  }
  return kMethodNames.size() - 1;
}

std::size_t class_index(int status) {
  if (status < 100) return 4;  // nothing sensible was sent; count it with the server errors
  return static_cast<std::size_t>(std::min(status / 100, 5) - 1);
}

void write_labels(std::string& out, const MetricLabels& labels, std::string_view le) {
  if (labels.empty() && le.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out.append(k);
    out += "=\"";
    out += escape_label_value(v);
    out += '"';
  }
  if (!le.empty()) {
    if (!first) out += ',';
    out += "le=\"";
    out.append(le);
    out += '"';
  }
  out += '}';
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_metric_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Plain decimals in the usual range (bucket bounds read "0.0005", not "5e-04"), the
  // shortest round-trip form either way.
  char buf[64];
  double mag = std::fabs(v);
  bool plain = mag == 0 || (mag >= 1e-6 && mag < 1e15);
  auto [end, ec] = plain ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                         : std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

void TextWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_.append(name);
  out_ += ' ';
  // HELP text escapes backslash and newline.
  for (char c : help) {
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
  out_ += "\n# TYPE ";
  out_.append(name);
  out_ += ' ';
  out_.append(type);
  out_ += '\n';
}

void TextWriter::series(std::string_view name, std::string_view suffix, const MetricLabels& labels,
                        std::string_view le, double value) {
  out_.append(name);
  out_.append(suffix);
  write_labels(out_, labels, le);
  out_ += ' ';
  out_ += format_metric_value(value);
  out_ += '\n';
}

void TextWriter::sample(std::string_view name, const MetricLabels& labels, double value) {
  series(name, "", labels, "", value);
}

void TextWriter::histogram(std::string_view name, const MetricLabels& labels,
                           std::span<const double> bounds, std::span<const std::uint64_t> counts,
                           double sum) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    series(name, "_bucket", labels, format_metric_value(bounds[i]), static_cast<double>(cumulative));
  }
  if (counts.size() > bounds.size()) cumulative += counts[bounds.size()];
  series(name, "_bucket", labels, "+Inf", static_cast<double>(cumulative));
  series(name, "_sum", labels, "", sum);
  series(name, "_count", labels, "", static_cast<double>(cumulative));
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::observe(double v) {
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::counts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

void Histogram::write(TextWriter& w, std::string_view name, const MetricLabels& labels) const {
  std::vector<std::uint64_t> c = counts();
  w.histogram(name, labels, bounds_, c, sum());
}

std::string_view wake_result_name(WakeResult r) {
  switch (r) {
    case WakeResult::ok: return "ok";
    case WakeResult::timeout: return "timeout";
    case WakeResult::refused: return "refused";
    case WakeResult::failed: return "failed";
    case WakeResult::cancelled: return "cancelled";
  }
  return "failed";
}

std::string_view docker_error_label_name(DockerErrorLabel k) {
  switch (k) {
    case DockerErrorLabel::connect: return "connect";
    case DockerErrorLabel::timeout: return "timeout";
    case DockerErrorLabel::status_4xx: return "status_4xx";
    case DockerErrorLabel::status_5xx: return "status_5xx";
    case DockerErrorLabel::protocol: return "protocol";
  }
  return "protocol";
}

DockerErrorLabel docker_error_label(const docker::CallRecord& call) {
  if (call.http_status >= 400 && call.http_status < 500) return DockerErrorLabel::status_4xx;
  if (call.http_status >= 500) return DockerErrorLabel::status_5xx;
  switch (call.error.value_or(docker::DockerErrorKind::protocol)) {
    case docker::DockerErrorKind::unreachable: return DockerErrorLabel::connect;
    case docker::DockerErrorKind::timeout: return DockerErrorLabel::timeout;
    case docker::DockerErrorKind::not_found:
    case docker::DockerErrorKind::conflict: return DockerErrorLabel::status_4xx;
    case docker::DockerErrorKind::daemon: return DockerErrorLabel::status_5xx;
    case docker::DockerErrorKind::protocol: return DockerErrorLabel::protocol;
  }
  return DockerErrorLabel::protocol;
}

Metrics::Metrics() {
  docker_durations_.reserve(kOps);
  for (std::size_t i = 0; i < kOps; ++i) docker_durations_.push_back(std::make_unique<Histogram>(kLatencyBuckets));
  for (auto& h : wake_phases_) h = std::make_unique<Histogram>(kRequestBuckets);
  set_api_routes({});
}

void Metrics::set_api_routes(std::vector<std::string> patterns) {
  api_routes_ = std::move(patterns);
  std::size_t n = (api_routes_.size() + 1) * kMethods * kClasses;
  api_requests_ = std::make_unique<std::atomic<std::uint64_t>[]>(n);
  api_durations_.clear();
  for (std::size_t i = 0; i < (api_routes_.size() + 1) * kMethods; ++i) {
    api_durations_.push_back(std::make_unique<Histogram>(kRequestBuckets));
  }
}

void Metrics::api_request(std::size_t route, std::string_view method, int status, double seconds) {
  if (route > api_routes_.size()) route = api_routes_.size();
  const std::size_t rm = route * kMethods + method_index(method);
  api_requests_[rm * kClasses + class_index(status)].fetch_add(1, std::memory_order_relaxed);
  if (seconds >= 0) api_durations_[rm]->observe(seconds);
}

void Metrics::docker_call(const docker::CallRecord& call) {
  auto op = static_cast<std::size_t>(call.op);
  if (op >= kOps) op = kOps - 1;
  docker_durations_[op]->observe(call.seconds);
  if (call.error) {
    docker_errors_[op][static_cast<std::size_t>(docker_error_label(call))].fetch_add(1, std::memory_order_relaxed);
  }
}

void Metrics::write(TextWriter& w) const {
  w.family("sandboxd_api_requests_total", "counter", "Control API requests.");
  for (std::size_t r = 0; r <= api_routes_.size(); ++r) {
    std::string_view route = r < api_routes_.size() ? std::string_view(api_routes_[r]) : "";
    for (std::size_t m = 0; m < kMethods; ++m) {
      for (std::size_t c = 0; c < kClasses; ++c) {
        std::uint64_t v = api_requests_[(r * kMethods + m) * kClasses + c].load(std::memory_order_relaxed);
        if (v == 0) continue;  // only combinations seen: the set is fixed, but mostly empty
        w.sample("sandboxd_api_requests_total",
                 {{"route", route}, {"method", kMethodNames[m]}, {"class", kClassNames[c]}},
                 static_cast<double>(v));
      }
    }
  }

  w.family("sandboxd_api_request_duration_seconds", "histogram", "Control API latency.");
  for (std::size_t r = 0; r <= api_routes_.size(); ++r) {
    std::string_view route = r < api_routes_.size() ? std::string_view(api_routes_[r]) : "";
    for (std::size_t m = 0; m < kMethods; ++m) {
      const Histogram& h = *api_durations_[r * kMethods + m];
      auto counts = h.counts();
      std::uint64_t n = 0;
      for (auto c : counts) n += c;
      if (n == 0) continue;  // as for the counter: only the combinations seen
      h.write(w, "sandboxd_api_request_duration_seconds", {{"route", route}, {"method", kMethodNames[m]}});
    }
  }

  w.family("sandboxd_docker_request_duration_seconds", "histogram", "Docker Engine API latency.");
  for (std::size_t op = 0; op < kOps; ++op) {
    docker_durations_[op]->write(w, "sandboxd_docker_request_duration_seconds",
                                 {{"op", docker::op_name(static_cast<docker::Op>(op))}});
  }
  w.family("sandboxd_docker_errors_total", "counter", "Failed Docker Engine API calls.");
  for (std::size_t op = 0; op < kOps; ++op) {
    for (std::size_t k = 0; k < kDockerErrorLabels; ++k) {
      std::uint64_t v = docker_errors_[op][k].load(std::memory_order_relaxed);
      if (v == 0) continue;
      w.sample("sandboxd_docker_errors_total",
               {{"op", docker::op_name(static_cast<docker::Op>(op))},
                {"kind", docker_error_label_name(static_cast<DockerErrorLabel>(k))}},
               static_cast<double>(v));
    }
  }
  w.family("sandboxd_docker_events_connected", "gauge", "1 while the Docker /events stream is up.");
  w.sample("sandboxd_docker_events_connected", {}, docker_events_connected_.load(std::memory_order_relaxed));

  w.family("sandboxd_wakes_total", "counter", "Wake cycles, counted once each.");
  for (std::size_t r = 0; r < kWakeResults; ++r) {
    w.sample("sandboxd_wakes_total", {{"result", wake_result_name(static_cast<WakeResult>(r))}},
             static_cast<double>(wakes_[r].load(std::memory_order_relaxed)));
  }
  constexpr std::array<std::string_view, kReapers> kReaperNames{"idle", "pressure"};
  w.family("sandboxd_reaper_runs_total", "counter", "Reaper ticks, admission-triggered passes included.");
  for (std::size_t r = 0; r < kReapers; ++r) {
    w.sample("sandboxd_reaper_runs_total", {{"reaper", kReaperNames[r]}},
             static_cast<double>(reaper_runs_[r].load(std::memory_order_relaxed)));
  }
  w.family("sandboxd_reaper_stop_failures_total", "counter", "Reaper stops that failed.");
  for (std::size_t r = 0; r < kReapers; ++r) {
    w.sample("sandboxd_reaper_stop_failures_total", {{"reason", kReaperNames[r]}},
             static_cast<double>(reaper_stop_failures_[r].load(std::memory_order_relaxed)));
  }
  w.family("sandboxd_reaper_stops_total", "counter", "Stops made by reapers.");
  w.sample("sandboxd_reaper_stops_total", {{"reason", "idle"}, {"band", ""}},
           static_cast<double>(idle_stops_.load(std::memory_order_relaxed)));
  std::lock_guard lock(pressure_mu_);
  for (const auto& [band, n] : pressure_stops_) {
    w.sample("sandboxd_reaper_stops_total", {{"reason", "pressure"}, {"band", band}}, static_cast<double>(n));
  }
}

void Metrics::pressure_stop(const std::string& band) {
  std::lock_guard lock(pressure_mu_);
  ++pressure_stops_[band];
}

std::string meminfo_path() {
  const char* hook = std::getenv("SANDBOXD_TEST_MEMINFO");
  return hook != nullptr && *hook != '\0' ? std::string(hook) : std::string("/proc/meminfo");
}

void Metrics::write_wake_phases(TextWriter& w) const {
  wake_phases_[0]->write(w, "sandboxd_wake_phase_seconds", {{"phase", "queue"}});
  wake_phases_[1]->write(w, "sandboxd_wake_phase_seconds", {{"phase", "start"}});
}

std::optional<HostMemory> read_host_memory(const std::string& meminfo) {
  std::ifstream in(meminfo);
  std::optional<std::uint64_t> total;
  std::optional<std::uint64_t> available;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string key;
    std::uint64_t kib = 0;
    if (!(fields >> key >> kib)) continue;
    if (key == "MemTotal:") total = kib * 1024;
    if (key == "MemAvailable:") available = kib * 1024;
  }
  if (!total || !available) return std::nullopt;
  return HostMemory{*total, *available};
}

void write_process_metrics(TextWriter& w) {
  long ticks = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  std::size_t close = stat.rfind(')');
  if (close != std::string::npos && ticks > 0) {
    std::istringstream in(stat.substr(close + 2));
    std::vector<std::string> f;  // f[0] is field 3 (state)
    for (std::string tok; in >> tok;) f.push_back(tok);
    auto field = [&](std::size_t n) -> double {  // 1-based field number of proc(5)
      return n >= 3 && n - 3 < f.size() ? std::strtod(f[n - 3].c_str(), nullptr) : 0;
    };
    if (f.size() >= 22) {
      w.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
      w.sample("process_cpu_seconds_total", {}, (field(14) + field(15)) / static_cast<double>(ticks));
      w.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
      w.sample("process_virtual_memory_bytes", {}, field(23));
      w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
      w.sample("process_resident_memory_bytes", {}, field(24) * static_cast<double>(page));
      w.family("process_threads", "gauge", "Number of OS threads in the process.");
      w.sample("process_threads", {}, field(20));
      std::ifstream proc_stat("/proc/stat");
      for (std::string line; std::getline(proc_stat, line);) {
        if (line.rfind("btime ", 0) == 0) {
          double boot = std::strtod(line.c_str() + 6, nullptr);
          w.family("process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
          w.sample("process_start_time_seconds", {}, boot + field(22) / static_cast<double>(ticks));
          break;
        }
      }
    }
  }
  std::error_code ec;
  std::filesystem::directory_iterator fds("/proc/self/fd", ec);
  if (!ec) {
    std::size_t n = 0;
    for (auto it = fds; it != std::filesystem::directory_iterator(); it.increment(ec)) {
      if (ec) break;
      ++n;
    }
    if (!ec) {
      w.family("process_open_fds", "gauge", "Number of open file descriptors.");
      w.sample("process_open_fds", {}, static_cast<double>(n));
    }
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    w.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    w.sample("process_max_fds", {},
             lim.rlim_cur == RLIM_INFINITY ? INFINITY : static_cast<double>(lim.rlim_cur));
  }
}

}  // namespace sandboxd::control
