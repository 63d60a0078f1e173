#include "codec.h"

#include "docker/client.h"
#include "docker/error.h"

#include <boost/json.hpp>

#include <charconv>

namespace sandboxd::docker::detail {

namespace json = boost::json;

namespace {

// ---- encoding -----------------------------------------------------------------------------

json::array to_array(const std::vector<std::string>& items) {
  json::array out;
  out.reserve(items.size());
  for (const auto& s : items) out.emplace_back(s);
  return out;
}

json::object to_object(const StringMap& map) {
  json::object out;
  for (const auto& [k, v] : map) out[k] = v;
  return out;
}

void put_if(json::object& o, std::string_view key, const std::string& value) {
  if (!value.empty()) o[key] = value;
}

void put_if(json::object& o, std::string_view key, const std::vector<std::string>& value) {
  if (!value.empty()) o[key] = to_array(value);
}

void put_if(json::object& o, std::string_view key, const StringMap& value) {
  if (!value.empty()) o[key] = to_object(value);
}

void put_if(json::object& o, std::string_view key, std::int64_t value) {
  if (value != 0) o[key] = value;
}

// ---- decoding -----------------------------------------------------------------------------

Result<json::value> parse(std::string_view body, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    return docker_error(DockerErrorKind::protocol,
                        "malformed JSON in " + std::string(what) + ": " + ec.message());
  }
  return v;
}

Result<json::object> parse_object(std::string_view body, std::string_view what) {
  auto v = parse(body, what);
  if (!v) return v.error();
  if (!v->is_object()) {
    return docker_error(DockerErrorKind::protocol, std::string(what) + " is not a JSON object");
  }
  return std::move(v->as_object());
}

const json::value* field(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

const json::object* object_at(const json::object& o, std::string_view key) {
  auto v = field(o, key);
  return v && v->is_object() ? &v->as_object() : nullptr;
}

std::string str(const json::object& o, std::string_view key) {
  auto v = field(o, key);
  if (!v || !v->is_string()) return {};
  return std::string(v->as_string());
}

std::optional<std::int64_t> opt_int(const json::object& o, std::string_view key) {
  auto v = field(o, key);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->as_double());
  return std::nullopt;
}

std::int64_t int64(const json::object& o, std::string_view key) {
  return opt_int(o, key).value_or(0);
}

int int32(const json::object& o, std::string_view key) {
  return static_cast<int>(int64(o, key));
}

std::optional<bool> opt_bool(const json::object& o, std::string_view key) {
  auto v = field(o, key);
  if (!v || !v->is_bool()) return std::nullopt;
  return v->as_bool();
}

bool boolean(const json::object& o, std::string_view key) {
  return opt_bool(o, key).value_or(false);
}

std::vector<std::string> strings(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  auto v = field(o, key);
  if (!v || !v->is_array()) return out;
  for (const auto& item : v->as_array()) {
    if (item.is_string()) out.emplace_back(item.as_string());
  }
  return out;
}

StringMap string_map(const json::object& o, std::string_view key) {
  StringMap out;
  auto obj = object_at(o, key);
  if (!obj) return out;
  for (const auto& kv : *obj) {
    if (kv.value().is_string()) out.emplace(std::string(kv.key()), std::string(kv.value().as_string()));
  }
  return out;
}

std::string strip_slash(std::string name) {
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  return name;
}

}  // namespace

// ---- encoders -----------------------------------------------------------------------------

std::string encode_container_create(const ContainerSpec& spec) {
  json::object body;
  body["Image"] = spec.image;
  put_if(body, "Hostname", spec.hostname);
  put_if(body, "User", spec.user);
  put_if(body, "Env", spec.env);
  put_if(body, "Cmd", spec.cmd);
  if (spec.entrypoint) body["Entrypoint"] = to_array(*spec.entrypoint);
  put_if(body, "WorkingDir", spec.working_dir);
  put_if(body, "Labels", spec.labels);
  put_if(body, "StopSignal", spec.stop_signal);
  if (spec.stop_timeout) body["StopTimeout"] = *spec.stop_timeout;

  json::object host;
  put_if(host, "Binds", spec.binds);
  put_if(host, "CapDrop", spec.cap_drop);
  put_if(host, "SecurityOpt", spec.security_opt);
  if (spec.readonly_rootfs) host["ReadonlyRootfs"] = true;
  put_if(host, "Tmpfs", spec.tmpfs);
  put_if(host, "Memory", spec.memory_bytes);
  put_if(host, "MemorySwap", spec.memory_swap_bytes);
  put_if(host, "PidsLimit", spec.pids_limit);
  if (!spec.ulimits.empty()) {
    json::array ulimits;
    for (const auto& u : spec.ulimits) {
      ulimits.push_back(json::object{{"Name", u.name}, {"Soft", u.soft}, {"Hard", u.hard}});
    }
    host["Ulimits"] = std::move(ulimits);
  }
  put_if(host, "NanoCpus", spec.nano_cpus);
  if (spec.init) host["Init"] = *spec.init;
  put_if(host, "NetworkMode", spec.network_mode);
  put_if(host, "Runtime", spec.runtime);
  host["RestartPolicy"] = json::object{{"Name", spec.restart_policy.name},
                                       {"MaximumRetryCount", spec.restart_policy.maximum_retry_count}};
  if (spec.log_config) {
    host["LogConfig"] = json::object{{"Type", spec.log_config->type},
                                     {"Config", to_object(spec.log_config->config)}};
  }
  body["HostConfig"] = std::move(host);

  if (!spec.endpoints.empty()) {
    json::object endpoints;
    for (const auto& [network, endpoint] : spec.endpoints) {
      json::object e;
      put_if(e, "Aliases", endpoint.aliases);
      endpoints[network] = std::move(e);
    }
    body["NetworkingConfig"] = json::object{{"EndpointsConfig", std::move(endpoints)}};
  }
  return json::serialize(body);
}

std::string encode_network_create(const NetworkSpec& spec) {
  json::object body;
  body["Name"] = spec.name;
  body["Driver"] = spec.driver;
  body["CheckDuplicate"] = spec.check_duplicate;
  if (spec.internal) body["Internal"] = true;
  put_if(body, "Options", spec.options);
  put_if(body, "Labels", spec.labels);
  return json::serialize(body);
}

std::string encode_network_connect(std::string_view container, const EndpointConfig& endpoint) {
  json::object body;
  body["Container"] = container;
  json::object e;
  put_if(e, "Aliases", endpoint.aliases);
  body["EndpointConfig"] = std::move(e);
  return json::serialize(body);
}

std::string encode_exec_create(const ExecSpec& spec, const std::vector<std::string>& extra_env) {
  json::object body;
  body["AttachStdin"] = false;
  body["AttachStdout"] = spec.attach_stdout;
  body["AttachStderr"] = spec.attach_stderr;
  body["Tty"] = false;
  body["Cmd"] = to_array(spec.cmd);
  std::vector<std::string> env = spec.env;
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  put_if(body, "Env", env);
  put_if(body, "WorkingDir", spec.working_dir);
  put_if(body, "User", spec.user);
  return json::serialize(body);
}

std::string encode_filters(const std::map<std::string, std::vector<std::string>>& filters) {
  json::object body;
  for (const auto& [name, values] : filters) {
    if (!values.empty()) body[name] = to_array(values);
  }
  return json::serialize(body);
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

// ---- decoders -----------------------------------------------------------------------------

Result<VersionInfo> decode_version(std::string_view body) {
  auto o = parse_object(body, "version answer");
  if (!o) return o.error();
  VersionInfo v;
  v.version = str(*o, "Version");
  v.api_version = str(*o, "ApiVersion");
  v.min_api_version = str(*o, "MinAPIVersion");
  v.os = str(*o, "Os");
  v.arch = str(*o, "Arch");
  v.kernel_version = str(*o, "KernelVersion");
  if (v.api_version.empty()) {
    return docker_error(DockerErrorKind::protocol, "version answer has no ApiVersion");
  }
  return v;
}

Result<ImageInfo> decode_image(std::string_view body) {
  auto o = parse_object(body, "image inspect");
  if (!o) return o.error();
  ImageInfo info;
  info.id = str(*o, "Id");
  info.repo_tags = strings(*o, "RepoTags");
  info.created = str(*o, "Created");
  info.size = int64(*o, "Size");
  if (auto config = object_at(*o, "Config")) {
    info.user = str(*config, "User");
    info.working_dir = str(*config, "WorkingDir");
    info.env = strings(*config, "Env");
    info.cmd = strings(*config, "Cmd");
    info.labels = string_map(*config, "Labels");
  }
  return info;
}

Result<NetworkInfo> decode_network(std::string_view body) {
  auto o = parse_object(body, "network inspect");
  if (!o) return o.error();
  NetworkInfo info;
  info.id = str(*o, "Id");
  info.name = str(*o, "Name");
  info.driver = str(*o, "Driver");
  info.scope = str(*o, "Scope");
  info.internal = boolean(*o, "Internal");
  info.options = string_map(*o, "Options");
  info.labels = string_map(*o, "Labels");
  if (auto ipam = object_at(*o, "IPAM")) {
    if (auto config = field(*ipam, "Config"); config && config->is_array()) {
      for (const auto& entry : config->as_array()) {
        if (!entry.is_object()) continue;
        if (auto subnet = str(entry.as_object(), "Subnet"); !subnet.empty()) {
          info.subnets.push_back(std::move(subnet));
        }
        if (auto gateway = str(entry.as_object(), "Gateway"); !gateway.empty()) {
          info.gateways.push_back(std::move(gateway));
        }
      }
    }
  }
  return info;
}

Result<ContainerInfo> decode_container(std::string_view body) {
  auto o = parse_object(body, "container inspect");
  if (!o) return o.error();
  ContainerInfo info;
  info.id = str(*o, "Id");
  info.name = strip_slash(str(*o, "Name"));
  info.image_id = str(*o, "Image");
  info.created = str(*o, "Created");
  if (auto config = object_at(*o, "Config")) {
    info.image = str(*config, "Image");
    info.hostname = str(*config, "Hostname");
    info.user = str(*config, "User");
    info.working_dir = str(*config, "WorkingDir");
    info.env = strings(*config, "Env");
    info.cmd = strings(*config, "Cmd");
    info.labels = string_map(*config, "Labels");
    info.stop_signal = str(*config, "StopSignal");
    if (auto t = opt_int(*config, "StopTimeout")) info.stop_timeout = static_cast<int>(*t);
  }
  if (auto state = object_at(*o, "State")) {
    auto& s = info.state;
    s.status = str(*state, "Status");
    s.running = boolean(*state, "Running");
    s.paused = boolean(*state, "Paused");
    s.restarting = boolean(*state, "Restarting");
    s.oom_killed = boolean(*state, "OOMKilled");
    s.dead = boolean(*state, "Dead");
    s.pid = int32(*state, "Pid");
    s.exit_code = int32(*state, "ExitCode");
    s.error = str(*state, "Error");
    s.started_at = str(*state, "StartedAt");
    s.finished_at = str(*state, "FinishedAt");
  }
  if (auto host = object_at(*o, "HostConfig")) {
    auto& h = info.host_config;
    h.binds = strings(*host, "Binds");
    h.cap_add = strings(*host, "CapAdd");
    h.cap_drop = strings(*host, "CapDrop");
    h.security_opt = strings(*host, "SecurityOpt");
    h.privileged = boolean(*host, "Privileged");
    h.readonly_rootfs = boolean(*host, "ReadonlyRootfs");
    h.tmpfs = string_map(*host, "Tmpfs");
    h.memory_bytes = int64(*host, "Memory");
    h.memory_swap_bytes = int64(*host, "MemorySwap");
    h.pids_limit = int64(*host, "PidsLimit");
    if (auto ulimits = field(*host, "Ulimits"); ulimits && ulimits->is_array()) {
      for (const auto& u : ulimits->as_array()) {
        if (!u.is_object()) continue;
        h.ulimits.push_back(
            Ulimit{str(u.as_object(), "Name"), int64(u.as_object(), "Soft"), int64(u.as_object(), "Hard")});
      }
    }
    h.nano_cpus = int64(*host, "NanoCpus");
    h.init = opt_bool(*host, "Init");
    h.network_mode = str(*host, "NetworkMode");
    h.runtime = str(*host, "Runtime");
    h.pid_mode = str(*host, "PidMode");
    h.ipc_mode = str(*host, "IpcMode");
    h.publish_all_ports = boolean(*host, "PublishAllPorts");
    if (auto ports = object_at(*host, "PortBindings")) h.port_bindings = ports->size();
    if (auto restart = object_at(*host, "RestartPolicy")) {
      h.restart_policy.name = str(*restart, "Name");
      h.restart_policy.maximum_retry_count = int32(*restart, "MaximumRetryCount");
    }
    if (auto log = object_at(*host, "LogConfig")) {
      h.log_config.type = str(*log, "Type");
      h.log_config.config = string_map(*log, "Config");
    }
  }
  if (auto settings = object_at(*o, "NetworkSettings")) {
    if (auto networks = object_at(*settings, "Networks")) {
      for (const auto& kv : *networks) {
        if (!kv.value().is_object()) continue;
        const auto& n = kv.value().as_object();
        NetworkEndpoint e;
        e.network_id = str(n, "NetworkID");
        e.endpoint_id = str(n, "EndpointID");
        e.ip_address = str(n, "IPAddress");
        e.ip_prefix_len = int32(n, "IPPrefixLen");
        e.gateway = str(n, "Gateway");
        e.mac_address = str(n, "MacAddress");
        e.aliases = strings(n, "Aliases");
        info.networks.emplace(std::string(kv.key()), std::move(e));
      }
    }
  }
  return info;
}

Result<std::vector<ContainerSummary>> decode_container_list(std::string_view body) {
  auto v = parse(body, "container list");
  if (!v) return v.error();
  if (!v->is_array()) {
    return docker_error(DockerErrorKind::protocol, "container list is not a JSON array");
  }
  std::vector<ContainerSummary> out;
  for (const auto& item : v->as_array()) {
    if (!item.is_object()) continue;
    const auto& o = item.as_object();
    ContainerSummary s;
    s.id = str(o, "Id");
    for (auto& name : strings(o, "Names")) s.names.push_back(strip_slash(std::move(name)));
    s.image = str(o, "Image");
    s.image_id = str(o, "ImageID");
    s.state = str(o, "State");
    s.status = str(o, "Status");
    s.created = int64(o, "Created");
    s.labels = string_map(o, "Labels");
    out.push_back(std::move(s));
  }
  return out;
}

Result<ContainerCreated> decode_created(std::string_view body) {
  auto o = parse_object(body, "create answer");
  if (!o) return o.error();
  ContainerCreated created{str(*o, "Id"), strings(*o, "Warnings")};
  if (created.id.empty()) return docker_error(DockerErrorKind::protocol, "create answer has no Id");
  return created;
}

Result<std::string> decode_id(std::string_view body) {
  auto o = parse_object(body, "create answer");
  if (!o) return o.error();
  auto id = str(*o, "Id");
  if (id.empty()) return docker_error(DockerErrorKind::protocol, "create answer has no Id");
  return id;
}

Result<ExecInfo> decode_exec(std::string_view body) {
  auto o = parse_object(body, "exec inspect");
  if (!o) return o.error();
  ExecInfo info;
  info.id = str(*o, "ID");
  info.container_id = str(*o, "ContainerID");
  info.running = boolean(*o, "Running");
  info.pid = int32(*o, "Pid");
  if (!info.running) {
    if (auto code = opt_int(*o, "ExitCode")) info.exit_code = static_cast<int>(*code);
  }
  return info;
}

Result<WaitResult> decode_wait(std::string_view body) {
  auto o = parse_object(body, "wait answer");
  if (!o) return o.error();
  WaitResult w;
  w.exit_code = int32(*o, "StatusCode");
  if (auto error = object_at(*o, "Error")) w.error = str(*error, "Message");
  return w;
}

Result<Event> decode_event(std::string_view line) {
  auto o = parse_object(line, "event");
  if (!o) return o.error();
  Event e;
  e.type = str(*o, "Type");
  e.action = str(*o, "Action");
  e.scope = str(*o, "scope");
  e.time = int64(*o, "time");
  e.time_nano = int64(*o, "timeNano");
  if (auto actor = object_at(*o, "Actor")) {
    e.id = str(*actor, "ID");
    e.attributes = string_map(*actor, "Attributes");
  }
  if (e.id.empty()) e.id = str(*o, "id");  // pre-1.22 field, still sent
  return e;
}

std::string error_message(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (auto m = str(v.as_object(), "message"); !m.empty()) return m;
  }
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) {
    body.remove_suffix(1);
  }
  return std::string(body);
}

std::optional<std::pair<int, int>> parse_api_version(std::string_view text) {
  const auto dot = text.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == text.size()) return std::nullopt;
  int major = 0;
  int minor = 0;
  auto a = std::from_chars(text.data(), text.data() + dot, major);
  auto b = std::from_chars(text.data() + dot + 1, text.data() + text.size(), minor);
  if (a.ec != std::errc{} || a.ptr != text.data() + dot || b.ec != std::errc{} ||
      b.ptr != text.data() + text.size()) {
    return std::nullopt;
  }
  return std::pair{major, minor};
}

Result<std::string> choose_api_version(std::string_view engine_max, std::string_view engine_min) {
  const auto engine = parse_api_version(engine_max);
  if (!engine) {
    return docker_error(DockerErrorKind::protocol,
                        "engine reports an unreadable API version \"" + std::string(engine_max) + "\"");
  }
  const auto ours_max = *parse_api_version(kMaxApiVersion);
  const auto ours_min = *parse_api_version(kMinApiVersion);
  if (*engine < ours_min) {
    return docker_error(DockerErrorKind::daemon,
                        "Docker Engine API " + std::string(engine_max) + " is older than " +
                            std::string(kMinApiVersion) + ", the oldest sandboxd supports");
  }
  const bool use_engine = *engine < ours_max;
  if (auto min = parse_api_version(engine_min); min && !use_engine && ours_max < *min) {
    return docker_error(DockerErrorKind::daemon,
                        "Docker Engine requires API " + std::string(engine_min) +
                            " or newer; sandboxd supports up to " + std::string(kMaxApiVersion));
  }
  return std::string(use_engine ? engine_max : kMaxApiVersion);
}

}  // namespace sandboxd::docker::detail
