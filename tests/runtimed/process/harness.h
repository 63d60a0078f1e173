// Runs the real runtimed binary on this host for tests: a temp directory holds its run
// directory (runtimed.json, runtimed.sock) and its workspace; requests go over the unix
// socket with the secret; event streams are read as they arrive. Waiting is always on a
// condition with a deadline. Only processes this harness started are signalled.
#pragma once

#include <boost/json.hpp>

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::runtimed::testing {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

// Polls `condition` every 10 ms until it holds or `deadline` passes.
bool wait_until(const std::function<bool()>& condition, Ms deadline);

// True when `pid` no longer runs (gone, or only a zombie is left).
bool pid_gone(pid_t pid);

// A TCP port that was free a moment ago.
int free_port();

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& content, int mode = 0644);
std::string read_file(const std::string& path);
bool exists(const std::string& path);

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  boost::json::object json() const;  // the body as an object (fails the test otherwise)
};

// One request on a new connection (Connection: close); nullopt when no answer arrived.
// `raw` is sent as is when not empty (for malformed requests).
std::optional<Response> http(const std::string& socket_path, const std::string& method,
                             const std::string& target, const std::string& body,
                             const std::vector<std::string>& headers, Ms deadline = 10s,
                             const std::string& raw = "");

// A streamed answer read piece by piece.
class EventStream {
 public:
  EventStream(const std::string& socket_path, const std::string& target,
              const std::vector<std::string>& headers);
  ~EventStream();
  int status() const { return status_; }
  // The next non-empty line of the body; nullopt at the end of the stream or the deadline.
  std::optional<std::string> next(Ms deadline = 10s);
  // Every remaining line up to the end of the stream.
  std::vector<std::string> rest(Ms deadline = 20s);
  bool ended() const { return ended_; }
  int heartbeats() const { return heartbeats_; }

 private:
  int fill(std::chrono::steady_clock::time_point until);  // 1 data, 0 EOF, -1 deadline
  bool decode();
  int fd_ = -1;
  int status_ = 0;
  bool chunked_ = false;
  bool ended_ = false;
  int heartbeats_ = 0;
  std::string raw_;
  std::string body_;
};

struct Options {
  std::string dev_command{};
  int dev_port = 0;  // 0: a free port
  std::string project_dir = "workspace/app";
  int timeout_s = 7200;
  int max_queued = 8;
  int cancel_grace_ms = 500;
  long max_output_bytes = 16 * 1024 * 1024;
  std::vector<std::string> env{};  // extra "K=V" for runtimed's env
  std::string path_prefix{};       // put before PATH
  std::string binary = RUNTIMED_BIN;
};

class Runtimed {
 public:
  explicit Runtimed(Options options = {});
  ~Runtimed();  // SIGKILLs runtimed if it still runs
  Runtimed(const Runtimed&) = delete;
  Runtimed& operator=(const Runtimed&) = delete;

  // Writes runtimed.json and starts the process; true once /status answers.
  bool start();
  // Starts without writing runtimed.json (or with `settings` as its text) and returns the
  // exit status once it has exited.
  std::optional<int> start_expecting_exit(const std::optional<std::string>& settings, Ms deadline);
  void signal(int sig);
  // Waits for the exit; the status (128+N for a signal).
  std::optional<int> wait_exit(Ms deadline = 15s);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  Response request(const std::string& method, const std::string& target,
                   const std::string& body = "", const std::vector<std::string>& headers = {});
  Response get(const std::string& target) { return request("GET", target); }
  Response post(const std::string& target, const std::string& body = "") {
    return request("POST", target, body);
  }
  std::vector<std::string> auth_headers() const;

  // Submits a command task; returns its id.
  std::string submit_command(const std::vector<std::string>& argv, const std::string& extra = "");
  boost::json::object task(const std::string& id);
  // Waits until the task's status is final; returns the task object.
  boost::json::object wait_final(const std::string& id, Ms deadline = 20s);
  // Every event of a finished task (the stream from 0 to its end), parsed.
  std::vector<boost::json::object> events(const std::string& id, const std::string& query = "");
  std::vector<std::string> event_lines(const std::string& id, const std::string& query = "",
                                       const std::vector<std::string>& headers = {});

  const std::string& socket() const { return socket_; }
  const std::string& run_dir() const { return run_dir_; }
  const std::string& workspace() const { return workspace_; }
  std::string task_dir(const std::string& id) const;
  const std::string& secret() const { return secret_; }
  Options& options() { return options_; }
  std::string log() const;
  int dev_port() const { return dev_port_; }

 private:
  std::string settings_json() const;
  void spawn();

  Options options_;
  TempDir dir_;
  std::string run_dir_;
  std::string workspace_;
  std::string socket_;
  std::string log_path_;
  std::string secret_;
  int dev_port_;
  pid_t pid_ = -1;
};

std::string new_task_id();

}  // namespace sandboxd::runtimed::testing
