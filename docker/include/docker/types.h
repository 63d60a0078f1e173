// Plain values sent to and read from the Docker Engine API.
//
// Field names follow the Engine API (SPEC §5.4) in snake_case. Inputs omit a field from the
// request when it holds its "unset" value (empty string or container, 0, nullopt), so Docker's
// default applies. ContainerSpec deliberately has no way to express `Privileged`, `CapAdd`,
// `PortBindings`, `PublishAllPorts`, `Devices` or host PID/IPC/network namespaces: sandboxd
// never sets them (SPEC §5.4 "never set"). Outputs carry what sandboxd reads back, including
// the HostConfig fields that prove a container is hardened. All types are copyable data with
// no behaviour beyond small lookups; safe to pass between threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::docker {

using StringMap = std::map<std::string, std::string>;

// ---- engine -------------------------------------------------------------------------------

struct VersionInfo {
  std::string version;          // engine version, e.g. "20.10.24+dfsg1"
  std::string api_version;      // newest API the engine speaks, e.g. "1.41"
  std::string min_api_version;  // oldest API the engine accepts
  std::string os;
  std::string arch;
  std::string kernel_version;
};

// ---- images -------------------------------------------------------------------------------

struct ImageInfo {
  std::string id;  // "sha256:..."
  std::vector<std::string> repo_tags;
  std::string created;
  std::int64_t size = 0;
  std::string user;
  std::string working_dir;
  std::vector<std::string> env;
  std::vector<std::string> cmd;
  StringMap labels;
};

// ---- networks -----------------------------------------------------------------------------

struct NetworkSpec {
  std::string name;
  std::string driver = "bridge";
  StringMap options;  // e.g. {"com.docker.network.bridge.enable_icc", "false"}
  StringMap labels;
  bool internal = false;
  bool check_duplicate = true;
};

struct NetworkInfo {
  std::string id;
  std::string name;
  std::string driver;
  std::string scope;
  bool internal = false;
  StringMap options;
  StringMap labels;
  std::vector<std::string> subnets;   // CIDRs from IPAM.Config, e.g. "172.18.0.0/16"
  std::vector<std::string> gateways;
};

// ---- containers ---------------------------------------------------------------------------

struct Ulimit {
  std::string name;  // "nofile"
  std::int64_t soft = 0;
  std::int64_t hard = 0;

  bool operator==(const Ulimit&) const = default;
};

struct RestartPolicy {
  std::string name = "no";  // "no", "always", "unless-stopped", "on-failure"
  int maximum_retry_count = 0;
};

struct LogConfig {
  std::string type;  // "json-file"
  StringMap config;  // {"max-size", "10m"}, {"max-file", "2"}
};

struct EndpointConfig {
  std::vector<std::string> aliases;
};

// Everything of SPEC §5.4 a container is created with. The `name` goes in the query string.
struct ContainerSpec {
  std::string name;
  std::string image;
  std::string hostname;
  std::string user;                                 // "1000:1000"
  std::vector<std::string> env;                     // "NAME=value", in order
  std::vector<std::string> cmd;                     // empty: the image's CMD
  std::optional<std::vector<std::string>> entrypoint;
  std::string working_dir;
  StringMap labels;
  std::string stop_signal;                          // "SIGTERM"
  std::optional<int> stop_timeout;                  // seconds

  // HostConfig
  std::vector<std::string> binds;                   // "/host:/container:rw"
  std::vector<std::string> cap_drop;                // {"ALL"}
  std::vector<std::string> security_opt;            // {"no-new-privileges"}
  bool readonly_rootfs = false;
  StringMap tmpfs;                                  // {"/tmp", "rw,exec,nosuid,nodev,size=512m"}
  std::int64_t memory_bytes = 0;
  std::int64_t memory_swap_bytes = 0;               // == memory_bytes: no swap; -1: unlimited
  std::int64_t pids_limit = 0;
  std::vector<Ulimit> ulimits;
  std::int64_t nano_cpus = 0;                       // CPUs x 1e9
  std::optional<bool> init;
  std::string network_mode;                         // a network name
  std::map<std::string, EndpointConfig> endpoints;  // NetworkingConfig.EndpointsConfig
  std::string runtime;                              // e.g. "runsc"
  RestartPolicy restart_policy;
  std::optional<LogConfig> log_config;
};

struct ContainerCreated {
  std::string id;
  std::vector<std::string> warnings;
};

struct ContainerState {
  std::string status;  // "created", "running", "paused", "restarting", "removing", "exited", "dead"
  bool running = false;
  bool paused = false;
  bool restarting = false;
  bool oom_killed = false;
  bool dead = false;
  int pid = 0;
  int exit_code = 0;
  std::string error;
  std::string started_at;
  std::string finished_at;
};

struct NetworkEndpoint {
  std::string network_id;
  std::string endpoint_id;
  std::string ip_address;
  int ip_prefix_len = 0;
  std::string gateway;
  std::string mac_address;
  std::vector<std::string> aliases;
};

// The HostConfig as the engine reports it back.
struct HostConfigInfo {
  std::vector<std::string> binds;
  std::vector<std::string> cap_add;
  std::vector<std::string> cap_drop;
  std::vector<std::string> security_opt;
  bool privileged = false;
  bool readonly_rootfs = false;
  StringMap tmpfs;
  std::int64_t memory_bytes = 0;
  std::int64_t memory_swap_bytes = 0;
  std::int64_t pids_limit = 0;  // 0 when unset (null)
  std::vector<Ulimit> ulimits;
  std::int64_t nano_cpus = 0;
  std::optional<bool> init;  // nullopt when unset (null)
  std::string network_mode;
  std::string runtime;
  std::string pid_mode;
  std::string ipc_mode;
  bool publish_all_ports = false;
  std::size_t port_bindings = 0;  // number of bound container ports
  RestartPolicy restart_policy;
  LogConfig log_config;
};

struct ContainerInfo {
  std::string id;
  std::string name;      // without Docker's leading '/'
  std::string image_id;  // "sha256:..."
  std::string created;

  // Config
  std::string image;     // as given at create
  std::string hostname;
  std::string user;
  std::string working_dir;
  std::vector<std::string> env;
  std::vector<std::string> cmd;
  StringMap labels;
  std::string stop_signal;
  std::optional<int> stop_timeout;

  ContainerState state;
  HostConfigInfo host_config;
  std::map<std::string, NetworkEndpoint> networks;  // by network name

  // The container's address on `network`, or "" when it has none there.
  std::string ip_address(std::string_view network) const;
};

struct ContainerSummary {
  std::string id;
  std::vector<std::string> names;  // without the leading '/'
  std::string image;
  std::string image_id;
  std::string state;   // "running", "exited", ...
  std::string status;  // "Up 3 seconds"
  std::int64_t created = 0;
  StringMap labels;
};

struct ListOptions {
  bool all = false;                  // include stopped containers
  std::vector<std::string> labels;   // "key" or "key=value"; all must match
  std::vector<std::string> names;    // name filters (Docker matches substrings)
};

struct WaitResult {
  int exit_code = 0;
  std::string error;  // Docker's Error.Message, if any
};

// ---- exec ---------------------------------------------------------------------------------

struct ExecSpec {
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "NAME=value"
  std::string working_dir;
  std::string user;              // empty: the container's user
  bool attach_stdout = true;
  bool attach_stderr = true;
};

// Stream ids of Docker's multiplexed output (the first byte of each 8-byte frame header).
enum class ExecStream : std::uint8_t { in = 0, out = 1, err = 2 };

// Receives output as it arrives, in order, in chunks of any size (a frame may be split).
using OutputFn = std::function<void(ExecStream stream, std::string_view bytes)>;

struct ExecInfo {
  std::string id;
  std::string container_id;
  bool running = false;
  std::optional<int> exit_code;  // nullopt while running or before start
  int pid = 0;                   // host PID of the exec'd process
};

struct ExecResult {
  std::string exec_id;
  std::optional<int> exit_code;  // nullopt if unknown (e.g. still dying after a timeout)
  bool timed_out = false;        // the command outlived its timeout and was killed
  std::uint64_t stdout_bytes = 0;
  std::uint64_t stderr_bytes = 0;
};

// ---- events -------------------------------------------------------------------------------

struct Event {
  std::string type;    // "container", "network", ...
  std::string action;  // "start", "die", "oom", "destroy", "exec_start: sh -c ...", ...
  std::string id;      // Actor.ID
  StringMap attributes;  // Actor.Attributes: name, image, labels, exitCode (on die), ...
  std::string scope;
  std::int64_t time = 0;       // seconds since the epoch
  std::int64_t time_nano = 0;  // nanoseconds since the epoch

  // attributes["exitCode"] as a number, when present and numeric.
  std::optional<int> exit_code() const;
};

struct EventFilter {
  std::vector<std::string> types;       // "container"
  std::vector<std::string> labels;      // "key" or "key=value"
  std::vector<std::string> containers;  // ids or names
  std::vector<std::string> actions;     // "start", "die", ...
  std::optional<std::int64_t> since;    // unix seconds; replays older events first
};

}  // namespace sandboxd::docker
