// The typed, immutable configuration of sandboxd (SPEC §9.2).
//
// A `Config` is plain data: every key of `sandboxd.yaml` is a field here, with its default
// from §9.2 as the member initializer, so `Config{}` (or `default_config()`) is exactly the
// zero-config setup of §9.1. Nothing in this header reads files or the environment; see
// config/load.h for that. A loaded `Config` has passed every check of §9.3, so modules take
// its values as given and only assert. Values are copyable and safe to share between
// threads as `std::shared_ptr<const Config>` snapshots (SIGHUP swaps in a new one).
//
// Secrets (`Secret`) never print their value: streams and `str()` give `<redacted>`, and only
// `reveal()` hands out the bytes, so every use of a secret is greppable.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.h"

namespace sandboxd::config {

using std::chrono::milliseconds;
// A size in bytes.
using Bytes = std::uint64_t;

inline constexpr Bytes kKiB = 1024;
inline constexpr Bytes kMiB = 1024 * kKiB;
inline constexpr Bytes kGiB = 1024 * kMiB;
inline constexpr Bytes kTiB = 1024 * kGiB;

// A string that is never logged, printed or diffed in clear.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  // The only way to the bytes; keep calls rare and obvious.
  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  std::size_t size() const { return value_.size(); }
  // Always "<redacted>".
  std::string str() const;

  bool operator==(const Secret&) const = default;

 private:
  std::string value_;
};

std::ostream& operator<<(std::ostream& os, const Secret& s);

// A listen or server address: `host:port`, `:port` or `[v6]:port`.
struct HostPort {
  std::string host;  // "" means every interface; IPv6 is stored without brackets
  std::uint16_t port = 0;
  // True when the key was written in the file; the edge may fall back from :80 to :8080
  // only for a default it chose itself (§9.1).
  bool explicit_ = false;

  // The address as it is written in the file, e.g. ":80" or "[::1]:9090".
  std::string str() const;
  // 127.0.0.0/8, ::1 or localhost.
  bool is_loopback() const;

  bool operator==(const HostPort&) const = default;
};

// One entry of preview.allowed_ports: a single port has first == last.
struct PortRange {
  std::uint16_t first = 1;
  std::uint16_t last = 65535;

  bool contains(std::uint16_t port) const { return port >= first && port <= last; }
  bool operator==(const PortRange&) const = default;
};

// An IPv4 or IPv6 network; a bare address is a /32 or /128.
struct Cidr {
  bool v6 = false;
  std::array<std::uint8_t, 16> address{};  // v4 uses the first 4 bytes; host bits are zero
  int prefix_len = 0;

  // `addr` is 4 (v4) or 16 (v6) bytes in network order.
  bool contains(bool addr_v6, const std::uint8_t* addr) const;
  // Canonical text, e.g. "10.0.0.0/8".
  std::string str() const;
  bool operator==(const Cidr&) const = default;
};

// wake.admission.min_available_memory: a share of MemTotal or an absolute size.
struct MemoryFloor {
  bool is_percent = true;
  double percent = 10;  // 0..100, when is_percent
  Bytes bytes = 0;      // when !is_percent

  bool operator==(const MemoryFloor&) const = default;
};

// One pressure band: below `below` percent available memory, stop sandboxes idle for
// `stop_idle_for` or longer.
struct PressureBand {
  double below = 0;  // percent
  milliseconds stop_idle_for{0};

  bool operator==(const PressureBand&) const = default;
};

struct SandboxUser {
  std::uint32_t uid = 1000;
  std::uint32_t gid = 1000;

  bool operator==(const SandboxUser&) const = default;
};

enum class AuthRequired { automatic, yes, no };  // YAML: auto, true, false
enum class UndeclaredPorts { deny, allow };
enum class TlsMode { off, files, acme };
enum class TlsVersion { v1_2, v1_3 };  // YAML: "1.2", "1.3"
enum class AcmeKeyType { ec256, ec384, rsa2048, rsa4096 };
enum class DnsProvider { none, rfc2136, cloudflare, exec, httpreq };  // none is YAML ""
enum class PropagationCheck { authoritative, off };
enum class TsigAlgorithm { hmac_sha1, hmac_sha224, hmac_sha256, hmac_sha384, hmac_sha512 };
enum class Agent { opencode, claude_code, command };  // YAML: opencode, claude-code, command

// The YAML spelling of each enum value.
std::string_view to_string(log::Level v);
std::string_view to_string(log::Format v);
std::string_view to_string(AuthRequired v);
std::string_view to_string(UndeclaredPorts v);
std::string_view to_string(TlsMode v);
std::string_view to_string(TlsVersion v);
std::string_view to_string(AcmeKeyType v);
std::string_view to_string(DnsProvider v);
std::string_view to_string(PropagationCheck v);
std::string_view to_string(TsigAlgorithm v);
std::string_view to_string(Agent v);

inline constexpr std::string_view kLetsEncryptDirectory =
    "https://acme-v02.api.letsencrypt.org/directory";

struct LogConfig {
  log::Level level = log::Level::info;
  log::Format format = log::Format::text;
  std::string access_log;  // a path, "stderr", or "" for none

  bool operator==(const LogConfig&) const = default;
};

struct ControlConfig {
  HostPort listen{"127.0.0.1", 9090};
  std::string public_host;  // lower case; "" for none
  Bytes max_json_body = kMiB;

  bool operator==(const ControlConfig&) const = default;
};

struct ApiToken {
  std::string name;
  Secret secret;
  bool read_only = false;
  // Set: the token acts for this one external user (SPEC §1.2) and sees only that user's
  // sandboxes. Empty: an operator token that acts on every sandbox.
  std::string user_id;

  bool operator==(const ApiToken&) const = default;
};

struct PreviewKey {
  std::string kid;
  Secret secret;

  bool operator==(const PreviewKey&) const = default;
};

struct PreviewAuthConfig {
  std::vector<PreviewKey> secrets;
  milliseconds cookie_ttl = std::chrono::hours(12);
  std::string redirect_url;  // with {sandbox_id} and {return} placeholders; "" for the 401 page

  bool operator==(const PreviewAuthConfig&) const = default;
};

struct AuthConfig {
  std::vector<ApiToken> tokens;
  AuthRequired required = AuthRequired::automatic;
  PreviewAuthConfig preview;

  bool operator==(const AuthConfig&) const = default;
};

struct PreviewConfig {
  std::string domain = "localhost";  // lower case, no trailing dot
  std::string suffix;                // "" means "preview." + domain
  std::vector<PortRange> allowed_ports{PortRange{1024, 65535}};
  UndeclaredPorts undeclared_ports = UndeclaredPorts::deny;

  bool operator==(const PreviewConfig&) const = default;
};

struct ListenerConfig {
  HostPort listen;

  bool operator==(const ListenerConfig&) const = default;
};

struct EdgeLimits {
  Bytes max_header_bytes = 64 * kKiB;
  std::uint32_t max_connections = 20000;
  std::uint32_t max_connections_per_client = 256;
  std::uint32_t max_connections_per_sandbox = 1024;
  std::uint32_t max_held_requests_per_sandbox = 256;
  std::uint32_t max_held_requests_total = 4096;
  Bytes max_request_body = 0;  // 0 = no limit

  bool operator==(const EdgeLimits&) const = default;
};

struct EdgeTimeouts {
  milliseconds header_read = std::chrono::seconds(15);
  milliseconds keepalive_idle = std::chrono::seconds(75);
  milliseconds upstream_connect = std::chrono::seconds(5);
  milliseconds upstream_response_header{0};  // 0 = none
  milliseconds websocket_idle = std::chrono::hours(1);
  milliseconds body_idle = std::chrono::seconds(60);
  milliseconds shutdown_drain = std::chrono::seconds(30);

  bool operator==(const EdgeTimeouts&) const = default;
};

struct UpstreamConfig {
  milliseconds idle_timeout = std::chrono::seconds(4);
  std::uint32_t max_idle_per_backend = 16;

  bool operator==(const UpstreamConfig&) const = default;
};

struct EdgeConfig {
  ListenerConfig http{HostPort{"", 80}};
  ListenerConfig https{HostPort{"", 443}};
  bool redirect_http = true;
  std::uint32_t workers = 0;  // 0 = the number of cores
  EdgeLimits limits;
  EdgeTimeouts timeouts;
  UpstreamConfig upstream;
  std::vector<Cidr> trusted_proxies;
  bool forwarded_header = false;
  milliseconds hsts_max_age{0};

  bool operator==(const EdgeConfig&) const = default;
};

struct TlsFilesConfig {
  std::string cert;
  std::string key;

  bool operator==(const TlsFilesConfig&) const = default;
};

struct TlsConfig {
  TlsMode mode = TlsMode::off;
  TlsFilesConfig files;
  TlsVersion min_version = TlsVersion::v1_2;

  bool operator==(const TlsConfig&) const = default;
};

struct EabConfig {
  std::string kid;
  Secret hmac;  // base64url

  bool operator==(const EabConfig&) const = default;
};

struct PropagationConfig {
  milliseconds delay{0};
  milliseconds timeout = std::chrono::seconds(120);
  PropagationCheck check = PropagationCheck::authoritative;
  std::vector<HostPort> nameservers;

  bool operator==(const PropagationConfig&) const = default;
};

struct Rfc2136Config {
  std::optional<HostPort> nameserver;  // required when the provider is rfc2136
  std::string tsig_name;
  Secret tsig_secret;  // base64
  TsigAlgorithm tsig_algorithm = TsigAlgorithm::hmac_sha256;

  bool operator==(const Rfc2136Config&) const = default;
};

struct CloudflareConfig {
  Secret api_token;
  std::string zone_id;  // "" = look the zone up
  std::string base_url = "https://api.cloudflare.com/client/v4";

  bool operator==(const CloudflareConfig&) const = default;
};

struct ExecDnsConfig {
  std::string command;

  bool operator==(const ExecDnsConfig&) const = default;
};

struct HttpreqConfig {
  std::string url;
  std::string username;
  Secret password;

  bool operator==(const HttpreqConfig&) const = default;
};

struct DnsConfig {
  DnsProvider provider = DnsProvider::none;
  PropagationConfig propagation;
  Rfc2136Config rfc2136;
  CloudflareConfig cloudflare;
  ExecDnsConfig exec;
  HttpreqConfig httpreq;

  bool operator==(const DnsConfig&) const = default;
};

struct AcmeConfig {
  std::string directory_url{kLetsEncryptDirectory};
  std::string email;
  std::string ca_bundle;
  EabConfig eab;
  AcmeKeyType key_type = AcmeKeyType::ec256;
  std::string profile;
  double renew_ratio = 0.6667;
  DnsConfig dns;

  bool operator==(const AcmeConfig&) const = default;
};

struct DockerConfig {
  std::string socket = "unix:///var/run/docker.sock";
  std::string image = "sandboxd-base:latest";
  std::string network = "sandboxd_net";
  std::string runtime;
  milliseconds stop_timeout = std::chrono::seconds(10);

  bool operator==(const DockerConfig&) const = default;
};

struct SandboxConfig {
  SandboxUser user;
  Bytes memory = 2 * kGiB;
  std::uint32_t pids = 1024;
  std::uint32_t nofile = 65536;
  double cpus = 0;  // 0 = no cap
  Bytes tmpfs_size = 512 * kMiB;
  std::string skeleton;  // "" = the image's /opt/sandbox-skel
  std::map<std::string, std::string> env;
  std::vector<std::string> env_passthrough;
  std::vector<std::string> env_blocklist{"AWS_*", "GITHUB_TOKEN"};
  std::string project_dir = "workspace/app";
  std::string dev_command;     // "" = detect (§6.7)
  std::uint16_t dev_port = 0;  // 0 = the first declared port, else 3000

  bool operator==(const SandboxConfig&) const = default;
};

struct AdmissionConfig {
  MemoryFloor min_available_memory;
  Bytes estimate_per_sandbox = 512 * kMiB;

  bool operator==(const AdmissionConfig&) const = default;
};

struct WakeConfig {
  milliseconds timeout = std::chrono::seconds(60);
  milliseconds probe_interval{25};
  std::uint32_t max_concurrent = 4;
  AdmissionConfig admission;

  bool operator==(const WakeConfig&) const = default;
};

struct IdleConfig {
  milliseconds threshold = std::chrono::minutes(35);
  milliseconds check_interval = std::chrono::seconds(30);
  bool websockets_count_as_activity = true;
  milliseconds keepalive_max = std::chrono::hours(24);
  milliseconds stop_timeout = std::chrono::seconds(10);

  bool operator==(const IdleConfig&) const = default;
};

struct PressureConfig {
  bool enabled = true;
  milliseconds check_interval = std::chrono::seconds(10);
  std::uint32_t max_stops_per_tick = 4;
  std::vector<PressureBand> bands{PressureBand{15, std::chrono::minutes(5)},
                                  PressureBand{10, std::chrono::minutes(1)},
                                  PressureBand{5, milliseconds(0)}};

  bool operator==(const PressureConfig&) const = default;
};

struct AgentConfig {
  std::string model;  // "" = the agent's own default
  std::vector<std::string> extra_args;

  bool operator==(const AgentConfig&) const = default;
};

struct AgentsConfig {
  AgentConfig opencode;
  AgentConfig claude_code;  // YAML: claude-code

  bool operator==(const AgentsConfig&) const = default;
};

struct TasksConfig {
  Agent default_agent = Agent::opencode;
  milliseconds timeout = std::chrono::hours(2);
  std::uint32_t max_queued = 8;
  milliseconds cancel_grace = std::chrono::seconds(5);
  Bytes max_output = 16 * kMiB;
  milliseconds event_retention = std::chrono::hours(24 * 30);
  AgentsConfig agents;

  bool operator==(const TasksConfig&) const = default;
};

struct ExecConfig {
  milliseconds timeout = std::chrono::minutes(5);
  milliseconds max_timeout = std::chrono::hours(24);
  Bytes max_output = kMiB;

  bool operator==(const ExecConfig&) const = default;
};

struct FilesConfig {
  Bytes read_max = 8 * kMiB;
  Bytes write_max = 32 * kMiB;
  std::uint32_t list_max_entries = 10000;
  std::uint32_t list_max_depth = 32;
  std::vector<std::string> list_skip{"node_modules", ".git"};
  std::vector<std::string> export_exclude{"node_modules"};

  bool operator==(const FilesConfig&) const = default;
};

struct StoreConfig {
  std::uint32_t read_connections = 4;
  milliseconds busy_timeout = std::chrono::seconds(5);
  milliseconds activity_flush = std::chrono::seconds(5);
  milliseconds audit_retention = std::chrono::hours(24 * 90);
  // The most audit rows kept: the retention sweep deletes the oldest beyond it, so the
  // table stays bounded inside the retention window too.
  std::uint32_t audit_max_rows = 1'000'000;

  bool operator==(const StoreConfig&) const = default;
};

struct MetricsConfig {
  bool enabled = true;
  bool per_sandbox_labels = false;
  std::uint32_t per_sandbox_limit = 500;

  bool operator==(const MetricsConfig&) const = default;
};

struct Config {
  std::string data_dir = "/var/lib/sandboxd";
  LogConfig log;
  ControlConfig control;
  AuthConfig auth;
  PreviewConfig preview;
  EdgeConfig edge;
  TlsConfig tls;
  AcmeConfig acme;
  DockerConfig docker;
  SandboxConfig sandbox;
  WakeConfig wake;
  IdleConfig idle;
  PressureConfig pressure;
  TasksConfig tasks;
  ExecConfig exec;
  FilesConfig files;
  StoreConfig store;
  MetricsConfig metrics;

  // Key paths (e.g. "acme.email", "auth.tokens[0].secret", "sandbox.env.FOO") whose value
  // came from `${NAME}` interpolation. They are secrets whatever their type (§9.1).
  std::set<std::string> interpolated;

  // preview.suffix, or "preview." + preview.domain when that is empty.
  std::string preview_suffix() const;
  // auth.required with `auto` resolved: required unless control.listen is loopback (§2.3).
  bool auth_required() const;

  bool operator==(const Config&) const = default;
};

// The zero-config setup of §9.1 (the same as `Config{}`).
Config default_config();

// 127.0.0.0/8, ::1 (with or without brackets) or "localhost" (any case, one trailing dot).
bool is_loopback_host(std::string_view host);

}  // namespace sandboxd::config
