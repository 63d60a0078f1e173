// Issuance time, sandboxd next to lego (issue 5): one DNS-01 issuance of `*.preview.test` +
// `preview.test` with acme::Issuer and the rfc2136 provider, and the same with Debian's `lego`
// CLI, both against one ACME lab (the tests' private BIND9 + pebble on loopback, whose code
// this program compiles in). Rounds alternate which client goes first; every attempt starts
// from an empty directory, so both sides register a new account and get a new order each time
// (lego does when its --path is new, and the lab's pebble reuses no authorization).
//
//   acme_issuance_bench [--rounds 5] [--warmup 1] [--lego /usr/bin/lego] [--attempt-limit 120]
//                       [--lego-sequence-interval 0] [--lego-env KEY=VALUE]... [--max-seconds 900]
//                       [--out DIR]
//
// lego's rfc2136 provider solves the authorizations one after another and, by default, waits
// RFC2136_SEQUENCE_INTERVAL (60 s) between them; sandboxd presents both values at once. The
// bench sets that interval to 0 unless told otherwise (-1 leaves lego's default), so the
// figure is lego's work and its polling, not a fixed minute of sleep. Everything else is
// lego's default; --lego-env adds variables (they show in the summary).
//
// Prints one line per attempt and then a Markdown table with the medians and the ratio
// sandboxd / lego; with --out it also writes DIR/issuance.tsv (every attempt),
// DIR/issuance.md (the table), DIR/sandboxd-acme.log and lego's log of each attempt.
// Exit status: 0 when every timed attempt succeeded, 1 when one failed, 2 on a usage or lab
// error. Each attempt is bounded by --attempt-limit (an Issuer is cancelled, lego gets
// SIGTERM then SIGKILL, by its PID), no round starts after --max-seconds, and the lab's own
// watchdog ends the process should everything else hang.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "acme/dns_provider.h"
#include "acme/issuer.h"
#include "acme/storage.h"
#include "base/log.h"
#include "lab.h"
#include "support/test_pki.h"

namespace sandboxd::bench {
namespace {

using namespace std::chrono_literals;
using acme::testing::AcmeLab;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kNames = {"*.preview.test", "preview.test"};

// Set by SIGINT/SIGTERM: the attempt in flight is cancelled (Issuer::cancel, or lego stopped by
// its PID), no new one starts, and the lab is stopped by its destructor on the way out.
std::atomic<bool> g_stop{false};

void watch_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  // Blocked here, before any other thread exists, so every thread inherits the mask and only
  // this one takes the signal.
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    if (sigwait(&set, &sig) == 0) {
      std::cerr << "acme_issuance_bench: signal " << sig << "; stopping after cleanup\n";
      g_stop = true;
    }
  }).detach();
}
constexpr const char* kEmail = "bench@preview.test";

struct Args {
  int rounds = 5;
  int warmup = 1;
  std::string lego = "/usr/bin/lego";
  std::chrono::seconds attempt_limit{120};
  int lego_sequence_interval = 0;  // RFC2136_SEQUENCE_INTERVAL, seconds; -1: lego's default
  std::chrono::seconds max_seconds{900};
  std::string out;
  std::vector<std::string> lego_env;  // extra KEY=VALUE for lego, e.g. RFC2136_POLLING_INTERVAL=1
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "acme_issuance_bench: " << why << "\n"
            << "usage: acme_issuance_bench [--rounds N] [--warmup N] [--lego PATH] "
               "[--attempt-limit S] [--lego-sequence-interval S|-1] [--lego-env KEY=VALUE]... "
               "[--max-seconds S] [--out DIR]\n";
  std::exit(2);
}

int whole_number(const std::string& flag, const std::string& text, int lo, int hi) {
  std::size_t used = 0;
  int v = 0;
  try {
    v = std::stoi(text, &used);
  } catch (const std::exception&) {
    usage(flag + " wants a whole number, got \"" + text + "\"");
  }
  if (used != text.size() || v < lo || v > hi) {
    usage(flag + " must be " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return v;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") usage("measures issuance time, sandboxd vs lego");
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--rounds") {
      a.rounds = whole_number(flag, value, 1, 50);
    } else if (flag == "--warmup") {
      a.warmup = whole_number(flag, value, 0, 5);
    } else if (flag == "--lego") {
      a.lego = value;
    } else if (flag == "--attempt-limit") {
      a.attempt_limit = std::chrono::seconds(whole_number(flag, value, 10, 600));
    } else if (flag == "--lego-sequence-interval") {
      a.lego_sequence_interval = whole_number(flag, value, -1, 120);
    } else if (flag == "--max-seconds") {
      a.max_seconds = std::chrono::seconds(whole_number(flag, value, 10, 7200));
    } else if (flag == "--out") {
      a.out = value;
    } else if (flag == "--lego-env") {
      if (value.find('=') == std::string::npos) usage("--lego-env wants KEY=VALUE");
      a.lego_env.push_back(value);
    } else {
      usage("unknown flag " + flag);
    }
  }
  if (::access(a.lego.c_str(), X_OK) != 0) {
    usage(a.lego + " is not executable (apt-get install lego, or --lego PATH)");
  }
  return a;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// An empty directory under /tmp, removed with everything in it when the object goes.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Attempt {
  bool ok = false;
  double seconds = 0;
  std::string detail;  // why it failed, or the step times of a success
};

// --- sandboxd ----------------------------------------------------------------------------

// acme::Issuer with its default options except where the lab needs otherwise: the lab's CA
// file and directory, and the lab's BIND as the server the propagation check asks (the zone's
// NS record points at port 53, where nothing listens). Timed from building the provider and
// the storage to obtain() returning.
Attempt sandboxd_once(const AcmeLab& lab, std::chrono::seconds limit) {
  ScratchDir data("acme-bench-sandboxd");
  const auto t0 = Clock::now();
  auto storage = acme::make_file_storage(data.path() + "/acme");
  auto provider = acme::make_rfc2136_provider({.nameserver = lab.dns_address(),
                                               .tsig_name = lab.tsig_name,
                                               .tsig_secret = lab.tsig_secret(),
                                               .tsig_algorithm = "hmac-sha256"});
  if (!provider) return {false, 0, "rfc2136 provider: " + provider.error().message()};
  acme::IssuerOptions o;
  o.directory_url = lab.directory_url();
  o.ca_bundle = lab.https_ca_file();
  o.trust_system_cas = false;
  o.email = kEmail;
  o.names = kNames;
  o.propagation.nameservers = {lab.dns_address()};
  o.validation_timeout = limit;
  acme::Issuer issuer(o, **provider, *storage);

  // obtain() blocks; it runs on a thread of its own so the limit can cancel it.
  std::promise<acme::IssueResult> done;
  auto result = done.get_future();
  std::thread worker([&] { done.set_value(issuer.obtain()); });
  const auto deadline = Clock::now() + limit;
  bool in_time = true;
  while (result.wait_for(20ms) != std::future_status::ready) {
    if (g_stop || Clock::now() >= deadline) {
      in_time = false;
      issuer.cancel();
      break;
    }
  }
  acme::IssueResult r = result.get();
  worker.join();
  Attempt a{r.has_value() && in_time, seconds_since(t0), ""};
  if (!in_time) {
    a.detail = g_stop ? "interrupted"
                      : "over the limit of " + std::to_string(limit.count()) + " s; cancelled";
    return a;
  }
  if (!r) {
    a.detail = r.error().code + " at " + r.error().step + ": " + r.error().message;
    return a;
  }
  const std::string why =
      acme::testing::verify_chain(r->bundle.chain_pem, lab.root_pem(), "x.preview.test");
  if (!why.empty()) return {false, a.seconds, "the chain does not verify: " + why};
  std::ostringstream steps;
  for (const auto& [step, ms] : r->step_ms)
    steps << (steps.tellp() > 0 ? " " : "") << step << "=" << ms;
  a.detail = steps.str();
  return a;
}

// --- lego --------------------------------------------------------------------------------

struct Exit {
  bool timed_out = false;
  int status = -1;  // the exit code, or 128 + signal
};

// Runs argv with exactly `env`, stdout and stderr appended to `log`, in a process group of
// its own with no signal blocked; waits at most `limit` (or until g_stop), then SIGTERM and,
// 5 s later, SIGKILL to that PID.
Exit run_bounded(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                 const std::string& log, std::chrono::seconds limit) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  std::vector<std::string> a = argv;
  std::vector<std::string> e = env;
  std::vector<char*> av;
  std::vector<char*> ev;
  for (auto& s : a) av.push_back(s.data());
  for (auto& s : e) ev.push_back(s.data());
  av.push_back(nullptr);
  ev.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, a.front().c_str(), &actions, &attr, av.data(), ev.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("cannot start " + a.front() + ": " + std::strerror(rc));

  // Polled every millisecond: a wait granularity far below the seconds being measured.
  const auto deadline = Clock::now() + limit;
  int status = 0;
  Exit out;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (g_stop || Clock::now() >= deadline) {
      out.timed_out = true;
      ::kill(pid, SIGTERM);
      const auto hard = Clock::now() + 5s;
      while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (Clock::now() >= hard) {
          ::kill(pid, SIGKILL);
          ::waitpid(pid, &status, 0);
          break;
        }
        std::this_thread::sleep_for(10ms);
      }
      break;
    }
    std::this_thread::sleep_for(1ms);
  }
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

std::string log_tail(const std::string& path) {
  std::string all;
  try {
    all = acme::testing::read_file(path);
  } catch (const std::exception&) {
    return "(no log)";
  }
  return all.size() > 1200 ? all.substr(all.size() - 1200) : all;
}

// `lego run` as its documentation shows it for rfc2136, pointed at the lab: the lab's CA for
// the ACME API (LEGO_CA_CERTIFICATES), the lab's BIND as the resolver. --dns.disable-cp:
// lego's full propagation check asks the zone's NS at port 53, where nothing listens here;
// without it lego checks one recursive answer from --dns.resolvers, which passes at once.
Attempt lego_once(const AcmeLab& lab, const Args& args, const std::string& keep_logs_in,
                  int round) {
  ScratchDir dir("acme-bench-lego");
  const std::string log = dir.path() + "/lego.log";
  // Each flag beside its value.
  // clang-format off
  const std::vector<std::string> argv = {
      args.lego,
      "--server", lab.directory_url(),
      "--email", kEmail,
      "--accept-tos",
      "--key-type", "ec256",
      "--dns", "rfc2136",
      "--dns.resolvers", lab.dns_address(),
      "--dns.disable-cp",
      "--domains", kNames[0],
      "--domains", kNames[1],
      "--path", dir.path() + "/lego",
      "run"};
  // clang-format on
  std::vector<std::string> env = {"PATH=/usr/bin:/bin",
                                  "HOME=" + dir.path(),
                                  "LEGO_CA_CERTIFICATES=" + lab.https_ca_file(),
                                  "RFC2136_NAMESERVER=" + lab.dns_address(),
                                  "RFC2136_TSIG_KEY=" + lab.tsig_name,
                                  "RFC2136_TSIG_SECRET=" + lab.tsig_secret(),
                                  "RFC2136_TSIG_ALGORITHM=hmac-sha256."};
  if (args.lego_sequence_interval >= 0) {
    env.push_back("RFC2136_SEQUENCE_INTERVAL=" + std::to_string(args.lego_sequence_interval));
  }
  env.insert(env.end(), args.lego_env.begin(), args.lego_env.end());
  const auto t0 = Clock::now();
  const Exit x = run_bounded(argv, env, log, args.attempt_limit);
  Attempt a{false, seconds_since(t0), ""};
  if (x.timed_out) {
    a.detail =
        g_stop ? "interrupted"
               : "over the limit of " + std::to_string(args.attempt_limit.count()) + " s; stopped";
  } else if (x.status != 0) {
    a.detail = "exit " + std::to_string(x.status);
  } else {
    // lego names a wildcard's files after the first domain with '*' as '_'.
    const std::string crt = dir.path() + "/lego/certificates/_.preview.test.crt";
    std::string chain;
    try {
      chain = acme::testing::read_file(crt);
    } catch (const std::exception&) {
      a.detail = "exit 0 but no " + crt;
    }
    if (!chain.empty()) {
      const std::string why = acme::testing::verify_chain(chain, lab.root_pem(), "x.preview.test");
      a.ok = why.empty();
      a.detail = a.ok ? "" : "the chain does not verify: " + why;
    }
  }
  // lego's own log of every attempt (round 0 = warm-up); it holds no secret.
  if (!keep_logs_in.empty()) {
    std::error_code ec;
    std::filesystem::copy_file(log, keep_logs_in + "/lego-round" + std::to_string(round) + ".log",
                               std::filesystem::copy_options::overwrite_existing, ec);
  }
  if (!a.ok && !g_stop) a.detail += "\n" + log_tail(log);
  return a;
}

// How long lego takes to start and exit with nothing to do: the part of its figure that is
// the process (Go runtime, dynamic loading), not the protocol.
double lego_start_seconds(const Args& args) {
  ScratchDir dir("acme-bench-lego-start");
  const auto t0 = Clock::now();
  run_bounded({args.lego, "--version"}, {"PATH=/usr/bin:/bin", "HOME=" + dir.path()},
              dir.path() + "/out.log", 10s);
  return seconds_since(t0);
}

// --- report ------------------------------------------------------------------------------

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "directory=12 account=30 ..." of every successful sandboxd attempt -> the median per step.
std::string median_steps(const std::vector<std::string>& step_lines) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<double>> by_step;
  for (const auto& line : step_lines) {
    std::istringstream in(line);
    std::string kv;
    while (in >> kv) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos) continue;
      const std::string step = kv.substr(0, eq);
      if (!by_step.contains(step)) order.push_back(step);
      by_step[step].push_back(std::stod(kv.substr(eq + 1)));
    }
  }
  std::string out;
  for (const auto& step : order) {
    out += (out.empty() ? "" : ", ") + step + " " + fixed(median(by_step[step]), 0);
  }
  return out;
}

int run(const Args& args) {
  std::ofstream tsv;
  std::ofstream acme_log;
  if (!args.out.empty()) {
    std::filesystem::create_directories(args.out);
    tsv.open(args.out + "/issuance.tsv");
    tsv << "round\tclient\tok\tseconds\tdetail\n";
  }
  // sandboxd's acme log goes to a file, as lego's does: neither client writes to a terminal
  // while it is timed.
  const std::string acme_log_path =
      args.out.empty() ? "/dev/null" : args.out + "/sandboxd-acme.log";
  const int log_fd = ::open(acme_log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd >= 0) log::set_fd(log_fd);

  const int total = args.warmup + args.rounds;
  const auto lab_life = std::chrono::seconds(60) + 2 * total * (args.attempt_limit + 10s);
  std::cerr << "acme_issuance_bench: starting the ACME lab (BIND9 + pebble on loopback)\n";
  AcmeLab lab(acme::testing::LabOptions{.max_lifetime = lab_life});
  std::cerr << "acme_issuance_bench: lab up: " << lab.directory_url() << ", DNS "
            << lab.dns_address() << "; " << args.warmup << " warm-up + " << args.rounds
            << " rounds\n";

  const auto start = Clock::now();
  std::vector<double> sd_times;
  std::vector<double> lego_times;
  std::vector<double> lego_start;
  std::vector<std::string> sd_steps;
  int failures = 0;
  int rounds_done = 0;
  for (int i = 0; i < total; ++i) {
    if (g_stop) break;
    if (Clock::now() - start >= args.max_seconds) {
      std::cerr << "acme_issuance_bench: --max-seconds reached; no more rounds\n";
      break;
    }
    const bool warm = i < args.warmup;
    const int round = warm ? 0 : i - args.warmup + 1;
    // Alternate the order: sandboxd first in odd rounds, lego first in even ones.
    const bool sandboxd_first = i % 2 == 0;
    for (int k = 0; k < 2; ++k) {
      const bool is_sandboxd = (k == 0) == sandboxd_first;
      const std::string client = is_sandboxd ? "sandboxd" : "lego";
      const Attempt a = is_sandboxd ? sandboxd_once(lab, args.attempt_limit)
                                    : lego_once(lab, args, args.out, round);
      const std::string tag = warm ? "warm-up" : "round " + std::to_string(round);
      std::cerr << "  " << tag << " " << client << ": " << (a.ok ? "ok " : "FAILED ")
                << fixed(a.seconds, 3) << " s" << (a.detail.empty() ? "" : "  " + a.detail) << "\n";
      if (tsv.is_open()) {
        std::string flat = a.detail.substr(0, a.detail.find('\n'));
        std::replace(flat.begin(), flat.end(), '\t', ' ');
        tsv << (warm ? "warmup" : std::to_string(round)) << "\t" << client << "\t" << (a.ok ? 1 : 0)
            << "\t" << fixed(a.seconds, 4) << "\t" << flat << "\n";
        tsv.flush();
      }
      if (warm || g_stop) continue;
      if (!a.ok) {
        ++failures;
        continue;
      }
      (is_sandboxd ? sd_times : lego_times).push_back(a.seconds);
      if (is_sandboxd) sd_steps.push_back(a.detail);
    }
    if (!warm && !g_stop) {
      lego_start.push_back(lego_start_seconds(args));
      ++rounds_done;
    }
  }

  const double sd = median(sd_times);
  const double lg = median(lego_times);
  std::ostringstream md;
  if (g_stop)
    md << "**Interrupted** after " << rounds_done << " complete rounds: partial figures.\n\n";
  md << "| client | successful attempts | median s | min s | max s | ratio vs lego |\n"
     << "|---|--:|--:|--:|--:|--:|\n";
  auto row = [&](const std::string& name, const std::vector<double>& v, double m) {
    md << "| " << name << " | " << v.size() << " / " << rounds_done << " | " << fixed(m, 3) << " | "
       << (v.empty() ? "—" : fixed(*std::min_element(v.begin(), v.end()), 3)) << " | "
       << (v.empty() ? "—" : fixed(*std::max_element(v.begin(), v.end()), 3)) << " | "
       << (lg > 0 && !v.empty() ? fixed(m / lg, 3) : "—") << " |\n";
  };
  row("**sandboxd** (acme::Issuer, in process)", sd_times, sd);
  row("lego run (CLI process)", lego_times, lg);
  md << "\nsandboxd / lego (medians): **" << (sd > 0 && lg > 0 ? fixed(sd / lg, 3) : "n/a")
     << "**. "
     << "sandboxd's median step times (ms): " << median_steps(sd_steps) << ". "
     << "lego's process start (`lego --version`, median): " << fixed(median(lego_start) * 1000, 1)
     << " ms. lego's RFC2136_SEQUENCE_INTERVAL: "
     << (args.lego_sequence_interval < 0 ? "its default"
                                         : std::to_string(args.lego_sequence_interval) + " s");
  for (const auto& kv : args.lego_env) md << ", " << kv;
  md << ".\n";
  std::cout << md.str();
  if (!args.out.empty()) std::ofstream(args.out + "/issuance.md") << md.str();
  if (log_fd >= 0) {
    log::set_fd(2);
    ::close(log_fd);
  }
  return failures == 0 && rounds_done == args.rounds ? 0 : 1;
}

}  // namespace
}  // namespace sandboxd::bench

int main(int argc, char** argv) {
  const sandboxd::bench::Args args = sandboxd::bench::parse_args(argc, argv);
  sandboxd::bench::watch_signals();
  try {
    return sandboxd::bench::run(args);
  } catch (const std::exception& e) {
    std::cerr << "acme_issuance_bench: " << e.what() << "\n";
    return 2;
  }
}
