// An asynchronous Docker Engine API client over the engine's unix socket.
//
// Each operation is a coroutine returning `asio::awaitable<Result<T>>`; failures are values
// typed by docker/error.h, never exceptions (except Asio's own operation_aborted when the
// calling coroutine is cancelled while its `throw_if_cancelled` is on, Asio's default).
//
// Transport: HTTP/1.1 with keep-alive; up to `max_idle_connections` idle connections are kept
// and reused; a reused connection the engine has closed meanwhile is retried once on a fresh
// one. Every call has a deadline (`call_timeout`, or the operation's own) covering connect,
// request and answer; when it passes the connection is closed and the call fails with kind
// `timeout`. Long streams (exec output, events) are bounded by their own rules below.
//
// API version: the first call (or `negotiate()`) asks `GET /version` and uses
// min(engine ApiVersion, kMaxApiVersion) as the `/v<version>` prefix of every later path;
// an engine below kMinApiVersion is refused with an error naming both versions.
//
// Threading and lifetime: a Client is bound to one executor and is not thread-safe. Call it
// only from coroutines running on that executor, which must be single-threaded (an
// io_context run by one thread, or a strand). The Client must outlive every call it started.
// Destroying it closes idle connections. Callbacks (output, events, on_call) run on the
// executor, inside the call; they must not destroy the Client.
#pragma once

#include "base/result.h"
#include "docker/error.h"
#include "docker/types.h"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::docker {

namespace asio = boost::asio;

inline constexpr std::string_view kMinApiVersion = "1.40";
inline constexpr std::string_view kMaxApiVersion = "1.45";

// The fixed `op` label of sandboxd_docker_* metrics (SPEC §11).
enum class Op {
  ping,
  version,
  container_create,
  container_start,
  container_stop,
  container_kill,
  container_remove,
  container_inspect,
  container_list,
  container_stats,
  exec_create,
  exec_start,
  exec_inspect,
  image_inspect,
  network_create,
  network_inspect,
  other,
};

std::string_view op_name(Op op);

// One finished Engine API call, for metrics. `http_status` is 0 when no answer arrived
// (unreachable, timeout); `error` is nullopt on success (a 304 "already in that state" on
// start/stop counts as success). For exec_start the time covers the whole attached run; for
// the events stream only until the engine accepted it.
struct CallRecord {
  Op op = Op::other;
  double seconds = 0;
  std::optional<DockerErrorKind> error;
  int http_status = 0;
};

struct ClientOptions {
  std::string socket_path = "/var/run/docker.sock";  // see docker/socket.h
  std::chrono::milliseconds call_timeout{30000};
  std::size_t max_idle_connections = 4;
  std::size_t max_body_bytes = 64 * 1024 * 1024;      // JSON answers and archives
  std::function<void(const CallRecord&)> on_call;     // optional
};

struct ExecOptions {
  // 0: no limit. Past it the command's processes are killed and the result says timed_out.
  std::chrono::milliseconds timeout{0};
  OutputFn on_output;  // optional; without it output is counted and dropped
};

// `GET /containers/{id}/logs` with stdout and stderr.
struct LogsOptions {
  std::optional<int> tail;              // the last N lines; nullopt: all
  std::optional<std::int64_t> since_ms;  // unix milliseconds: only lines logged from then on
  bool follow = false;
  bool timestamps = false;  // each line starts with Docker's RFC 3339 time and a space
  OutputFn on_output;       // optional; without it output is dropped
};

class Client {
 public:
  Client(asio::any_io_executor executor, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ---- engine (unversioned paths; never negotiates)
  asio::awaitable<Status> ping();
  asio::awaitable<Result<VersionInfo>> version();
  // Negotiates now (again) and returns the API version chosen, e.g. "1.41".
  asio::awaitable<Result<std::string>> negotiate();
  // The negotiated version, "" before the first successful negotiation.
  const std::string& api_version() const;

  // ---- images
  asio::awaitable<Result<ImageInfo>> image_inspect(std::string_view name);
  // false on not_found; other failures are errors.
  asio::awaitable<Result<bool>> image_exists(std::string_view name);

  // ---- networks
  asio::awaitable<Result<std::string>> network_create(const NetworkSpec& spec);  // the id
  asio::awaitable<Result<NetworkInfo>> network_inspect(std::string_view name_or_id);
  asio::awaitable<Status> network_connect(std::string_view network, std::string_view container,
                                          const EndpointConfig& endpoint = {});
  asio::awaitable<Status> network_remove(std::string_view name_or_id);

  // ---- containers
  asio::awaitable<Result<ContainerCreated>> container_create(const ContainerSpec& spec);
  // Starting a running container (304) succeeds.
  asio::awaitable<Status> container_start(std::string_view id);
  // SIGTERM (or the container's StopSignal), then SIGKILL after `grace`. Stopping a stopped
  // container (304) succeeds. The call's deadline is grace + call_timeout.
  asio::awaitable<Status> container_stop(std::string_view id, std::chrono::seconds grace);
  asio::awaitable<Status> container_kill(std::string_view id, std::string_view signal = "SIGKILL");
  asio::awaitable<Status> container_remove(std::string_view id, bool force,
                                           bool remove_volumes = false);
  asio::awaitable<Result<ContainerInfo>> container_inspect(std::string_view id);
  asio::awaitable<Result<std::vector<ContainerSummary>>> container_list(const ListOptions& options);
  // Blocks until the container reaches `condition` ("not-running", "next-exit", "removed") or
  // `timeout` passes (kind timeout).
  asio::awaitable<Result<WaitResult>> container_wait(std::string_view id,
                                                     std::chrono::milliseconds timeout,
                                                     std::string_view condition = "not-running");
  // `GET /containers/{id}/archive?path=`: the tar stream of `path` (a file or a directory,
  // named by its last component inside the tar), at most max_body_bytes.
  asio::awaitable<Result<std::string>> container_archive(std::string_view id,
                                                         std::string_view path);

  // The container's stdout and stderr, demultiplexed into options.on_output as they arrive
  // (sandboxes have no TTY; a TTY container's unframed stream is a protocol error). Without
  // follow the call ends after the lines asked for; with follow when the container stops, or
  // when the calling coroutine is cancelled (race it with a cancel signal, as exec callers
  // do). Only establishing the stream is bounded by call_timeout.
  asio::awaitable<Status> container_logs(std::string_view id, const LogsOptions& options);

  // ---- exec
  asio::awaitable<Result<std::string>> exec_create(std::string_view container,
                                                   const ExecSpec& spec);  // the exec id
  // Starts without attaching; returns once the engine has started the process.
  asio::awaitable<Status> exec_start_detached(std::string_view exec_id);
  asio::awaitable<Result<ExecInfo>> exec_inspect(std::string_view exec_id);

  // Runs `spec` attached: output is demultiplexed into stdout/stderr and delivered to
  // options.on_output as it arrives; then the exit code is read with exec inspect.
  //
  // Timeout: the exec is created with an extra environment variable SANDBOXD_EXEC_TOKEN=<random>,
  // which every process it starts inherits. When the timeout passes, the output stream is
  // closed and a second exec, as the same user, sends SIGKILL to every process in the
  // container whose environment carries that token (found through /proc/<pid>/environ), so
  // children die with the command; the result has timed_out set. (Exec inspect's Pid is a
  // host PID, useless inside the container's PID namespace, hence the token.) This needs
  // `sh`, `tr`, `grep` and `kill` in the image; a command that clears its environment escapes it.
  asio::awaitable<Result<ExecResult>> exec(std::string_view container, const ExecSpec& spec,
                                           const ExecOptions& options);
  // Creates and starts `spec` detached; returns the exec id as soon as it runs.
  asio::awaitable<Result<std::string>> exec_detached(std::string_view container,
                                                     const ExecSpec& spec);

  // ---- events
  // Follows `GET /events` with `filter`, calling on_event for each event, in order.
  // `on_connected` runs once the engine has answered with the stream's head. The engine
  // subscribes a moment after sending that head, so a caller that must not miss an event
  // right after connecting sets `filter.since` (the engine replays from there). Returns ok()
  // when on_event returns false; an error of kind unreachable when
  // the stream drops (the caller should reconnect, and resync since events were missed),
  // protocol on a malformed event, cancelled if the calling coroutine is cancelled with
  // throw_if_cancelled off. Only establishing the stream is bounded by call_timeout.
  asio::awaitable<Status> events(const EventFilter& filter,
                                 std::function<bool(const Event&)> on_event,
                                 std::function<void()> on_connected = {});

  // ---- introspection (tests, metrics)
  std::uint64_t connections_opened() const;  // sockets ever connected
  std::size_t idle_connections() const;      // pooled now

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandboxd::docker
