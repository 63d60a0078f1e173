// The real sandboxd against the real Docker Engine, for the lifecycle integration tests.
//
// `Sandboxd` runs the binary with a temporary data directory, `control.listen` on an
// ephemeral port, the test image (image/build-test-image.sh: runtimed as the entrypoint),
// its own Docker network, `sandbox.nofile: 4096` (the engine here caps open files at 20000),
// the test image's app as the dev server (`sandbox.dev_command: sandbox-dev`) and the
// workspace root as `sandbox.project_dir`, waits for `/readyz`, and sends requests to it. `SandboxdTest` is a fixture that starts one per test and, in
// TearDown, removes every container and network the test made, also after a failure: by
// the instance label of each sandboxd it started and by network. Networks are named
// `sandboxd-it-<pid>-<n>`; ones left by a test process that no longer runs (killed by a
// ctest timeout) are removed at the next SetUp.
//
// The Docker Engine is the one of DOCKER_HOST (unix://), else /var/run/docker.sock, else
// scripts/docker-engine.sh's private one. Engine calls go through curl on its socket: the
// tests never use the docker client they are testing. Nothing here sleeps to synchronise;
// waits poll a condition with a deadline.
//
// Not thread-safe; one test thread.
#pragma once

#include "process.h"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::testing {

namespace json = boost::json;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------- engine

// The path of the Docker Engine's unix socket the tests (and the sandboxd they start) use.
const std::string& docker_socket();

struct EngineAnswer {
  int status = 0;  // 0: curl failed (engine unreachable)
  std::string body;
  json::value json() const;  // null when the body is not JSON
};

// One Engine API call (unversioned path, e.g. "/containers/json?all=1").
EngineAnswer engine_call(const std::string& method, const std::string& path,
                         const std::string& body = "");

// `GET /containers/json?all=1` filtered by one label ("k=v") or a network name.
std::vector<json::object> engine_containers_with_label(const std::string& label);
std::vector<json::object> engine_containers_on_network(const std::string& network);

// `GET /containers/<name or id>/json`; nullopt when there is no such container.
std::optional<json::object> engine_inspect(const std::string& container);

// Force-removes every container with one of the instance labels or on the network, then
// the network. Errors are ignored (best effort, for cleanup).
void engine_purge(const std::string& network, const std::vector<std::string>& instances);

// `s-<id>-<port>.preview.localhost` in lower case: the preview host of a sandbox port.
std::string preview_host(std::string id, int port);

// Percent-encodes a query value.
std::string url_encode(const std::string& s);

// The current time as the engine's `/events?since=` takes it: Unix seconds with nanoseconds.
std::string engine_now();

// How many `start` events the engine recorded for `container` (name or id) from `since`
// (an engine_now() value) until now. The query ends a second after now: the engine streams
// until `until`, so this takes up to about a second.
int engine_container_starts(const std::string& container, const std::string& since);
// The `actions` events (e.g. "start", "die") the engine recorded for `container` from
// `since` until now, oldest first; takes up to about a second, as above.
std::vector<std::string> engine_container_actions(const std::string& container, const std::string& since,
                                                  const std::vector<std::string>& actions);

// Builds image/build-test-image.sh's image once per process; false (with a message in
// `problem`) when the engine does not answer or the build fails.
bool ensure_test_image(std::string* problem);

// ---------------------------------------------------------------------------- sandboxd

struct Answer {
  int status = 0;  // 0: no answer within the deadline
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  json::value json;  // null unless the body is one JSON value

  std::string header(const std::string& lower_name) const;
  // The object's string field (or "" when absent / not a string).
  std::string str(const std::string& key) const;
  // v1 error code (error.code) or legacy one (code), whichever the envelope has.
  std::string error_code() const;
};

std::string str_of(const json::value& v, const std::string& key);

// Parts of sandboxd.yaml beyond the fixed test settings. Each `*_lines` is appended inside
// its section, lines indented by two spaces; `extra` is appended as top-level YAML.
struct SandboxdConfig {
  std::string listen = "127.0.0.1:0";
  std::string image = "sandboxd-test:latest";
  std::string control_lines;
  std::string edge_listen = "127.0.0.1:0";  // edge.http.listen
  std::string edge_lines;  // after `http: listen`, e.g. "  timeouts:\n    header_read: 1s\n"
  std::string docker_lines;
  std::string dev_command = "sandbox-dev";  // sandbox.dev_command
  std::string sandbox_lines;
  std::string extra;
};

class Sandboxd {
 public:
  Sandboxd(std::string network, SandboxdConfig config = {});
  ~Sandboxd();  // SIGKILLs a still-running process; the data directory goes with it
  Sandboxd(const Sandboxd&) = delete;
  Sandboxd& operator=(const Sandboxd&) = delete;

  // Starts the binary (again, on the same data directory) and waits until /readyz is 200.
  // `env` entries ("K=V") are added to the child's environment.
  ::testing::AssertionResult start(const std::vector<std::string>& env = {},
                                   std::chrono::milliseconds ready_within = 30s);
  // Starts without waiting for readiness (the port is known on return).
  ::testing::AssertionResult launch(const std::vector<std::string>& env = {});
  void kill9();
  // SIGTERM and wait; false when it did not exit in time.
  bool terminate();
  // Writes sandboxd.yaml again from `config` (same data dir, network and docker settings),
  // or as the exact `text`; for SIGHUP tests.
  void rewrite_config(SandboxdConfig config);
  void write_raw_config(const std::string& text);
  // Sends a signal to the running process (e.g. SIGHUP).
  void signal(int sig);
  bool running() const { return process_ != nullptr; }
  // The PID of the running sandboxd (its /proc entry), or -1.
  int pid() const { return process_ ? process_->pid() : -1; }

  std::uint16_t port() const { return port_; }
  // The preview edge's bound port, read from the log ("edge listening ... port=N"); 0 if none.
  std::uint16_t edge_port();
  // The https listener's port ("edge https listening ... port=N"); 0 if none.
  std::uint16_t edge_https_port();
  const std::string& instance() const { return instance_; }
  const std::string& network() const { return network_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string workspace(const std::string& id) const { return data_dir_ + "/workspaces/" + id; }
  // Everything sandboxd wrote (stdout and stderr), over all its runs.
  std::string log();

  // Sent with every request when not empty: "Authorization: Bearer <token>".
  void set_token(std::string token) { token_ = std::move(token); }

  // One request on its own connection. A POST/PUT/PATCH gets Content-Type: application/json
  // unless `headers` names a Content-Type.
  Answer call(const std::string& method, const std::string& target, const std::string& body = "",
              const std::vector<std::string>& headers = {},
              std::chrono::milliseconds deadline = 60s);
  Answer get(const std::string& target) { return call("GET", target); }
  Answer post(const std::string& target, const std::string& body = "") {
    return call("POST", target, body);
  }
  Answer del(const std::string& target) { return call("DELETE", target); }

  // The value of one series of GET /metrics, e.g. `sandboxd_wakes_total{result="ok"}`; -1 when
  // the series is absent.
  double metric(const std::string& series);

 private:
  std::string yaml() const;
  std::uint16_t port_from_log(const std::string& pattern);

  std::string network_;
  SandboxdConfig config_;
  TempDir dir_;
  std::string data_dir_;
  std::string config_path_;
  std::unique_ptr<Process> process_;
  std::string log_path_;  // sandboxd's stdout and stderr, over all its runs
  std::uint16_t port_ = 0;
  std::uint16_t edge_port_ = 0;
  std::string instance_;
  std::string token_;
};

// ---------------------------------------------------------------------------- fixture

class SandboxdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  void SetUp() override;
  void TearDown() override;

  // What the fixture's own sandboxd gets; override to change it.
  virtual SandboxdConfig config() const { return {}; }

  // The fixture's sandboxd.
  Sandboxd& sd() { return *main_; }
  // One more sandboxd on its own network, cleaned like the first. Not started.
  Sandboxd& add_sandboxd(SandboxdConfig config);

  // v1 create that must give 201 running; returns the id ("" after a failed assertion).
  std::string create_v1(const std::string& user, const std::string& project,
                        const std::string& extra_fields = "");
  // Waits until GET / through the edge on the sandbox's preview host answers 200 (a wake
  // included), within 30 s.
  ::testing::AssertionResult wait_preview(const std::string& id, int port = 3000);
  // Legacy create that must give 201; returns the id.
  std::string create_legacy(const std::string& body = "{}");
  // Waits until GET /v1/sandboxes/<id> reads `status`.
  ::testing::AssertionResult wait_status(const std::string& id, const std::string& status,
                                         std::chrono::milliseconds deadline = 30s);
  // Buffered v1 exec of argv; the answer.
  Answer exec(const std::string& id, const std::vector<std::string>& argv,
              const std::string& extra_fields = "");
  // Waits until the test image's dev server (the testapp that runtimed supervises) listens:
  // its ready marker exists.
  ::testing::AssertionResult wait_init_ready(const std::string& id);
  // Ids of every container labelled with this sandboxd's instance.
  std::vector<std::string> instance_container_ids(const Sandboxd& s);

 private:
  std::unique_ptr<Sandboxd> main_;
  std::vector<std::unique_ptr<Sandboxd>> more_;
};

// A SandboxdTest whose sandboxd reads MemAvailable from a file the test writes:
// SANDBOXD_TEST_MEMINFO is a TEST HOOK, the one fake of the pressure and admission tests,
// because real memory pressure cannot be provoked safely. The host has 1,000,000 kB and
// starts with 900,000 kB available (no pressure band, admission passes).
class FakeMeminfoTest : public SandboxdTest {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Replaces the file atomically: sandboxd never reads half of it.
  void write_meminfo(std::uint64_t available_kb);
  std::string status(const std::string& id) { return sd().get("/v1/sandboxes/" + id).str("status"); }

 private:
  TempDir meminfo_dir_;
  std::string meminfo_;
};

// A fresh network name for this process.
std::string unique_network_name();

// The value of `sandboxd_reaper_stops_total{reason="idle",band=""}` in the /metrics of `s`,
// or -1 when it is not there.
inline double idle_reaper_stops(Sandboxd& s) {
  return s.metric(R"(sandboxd_reaper_stops_total{reason="idle",band=""})");
}

// Server-Sent Events as the control API writes them (SPEC §2.7.4, §2.7.12).
struct SseEvent {
  long long id = 0;
  std::string event;
  json::value data;  // the `data:` line parsed as JSON
};

struct SseStream {
  bool retry_first = false;
  int pings = 0;
  std::vector<SseEvent> events;
};

// The events of an SSE body; a block without `id:` (or cut off at the end) is left out.
SseStream parse_sse(const std::string& body);

// The body received so far of a chunked response (`raw` is the whole response as read, head
// included); a chunk not yet complete is left out.
std::string dechunked(const std::string& raw);

// The whole file; "" when it cannot be read.
std::string read_whole(const std::string& path);

// JSON text of an argv.
std::string json_argv(const std::vector<std::string>& argv);

}  // namespace sandboxd::testing
