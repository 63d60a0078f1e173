#include "config/reload.h"

namespace sandboxd::config {

namespace {

// Where a listener binds; whether the file spelled it out does not move the socket.
bool same_address(const HostPort& a, const HostPort& b) {
  return a.host == b.host && a.port == b.port;
}

// Collects the names of the keys whose values differ.
class Diff {
 public:
  void key(bool same, const char* name) {
    if (!same) names_.emplace_back(name);
  }
  std::vector<std::string> take() { return std::move(names_); }

 private:
  std::vector<std::string> names_;
};

}  // namespace

std::vector<std::string> restart_changes(const Config& a, const Config& b) {
  Diff d;
  d.key(a.data_dir == b.data_dir, "data_dir");
  d.key(same_address(a.control.listen, b.control.listen), "control.listen");
  d.key(a.preview.domain == b.preview.domain, "preview.domain");
  d.key(a.preview.suffix == b.preview.suffix, "preview.suffix");
  d.key(same_address(a.edge.http.listen, b.edge.http.listen), "edge.http.listen");
  d.key(same_address(a.edge.https.listen, b.edge.https.listen), "edge.https.listen");
  d.key(a.edge.workers == b.edge.workers, "edge.workers");
  d.key(a.tls.mode == b.tls.mode, "tls.mode");
  d.key(a.docker.socket == b.docker.socket, "docker.socket");
  d.key(a.docker.network == b.docker.network, "docker.network");
  d.key(a.sandbox.user == b.sandbox.user, "sandbox.user");
  d.key(a.store.read_connections == b.store.read_connections, "store.read_connections");
  d.key(a.store.busy_timeout == b.store.busy_timeout, "store.busy_timeout");
  return d.take();
}

std::vector<std::string> live_changes(const Config& a, const Config& b) {
  Diff d;
  d.key(a.log.level == b.log.level, "log.level");
  d.key(a.log.format == b.log.format, "log.format");
  d.key(a.log.access_log == b.log.access_log, "log.access_log");
  d.key(a.control.public_host == b.control.public_host, "control.public_host");
  d.key(a.control.max_json_body == b.control.max_json_body, "control.max_json_body");
  d.key(a.auth.tokens == b.auth.tokens, "auth.tokens");
  d.key(a.auth.required == b.auth.required, "auth.required");
  d.key(a.auth.preview.secrets == b.auth.preview.secrets, "auth.preview.secrets");
  d.key(a.auth.preview.cookie_ttl == b.auth.preview.cookie_ttl, "auth.preview.cookie_ttl");
  d.key(a.auth.preview.redirect_url == b.auth.preview.redirect_url, "auth.preview.redirect_url");
  d.key(a.preview.allowed_ports == b.preview.allowed_ports, "preview.allowed_ports");
  d.key(a.preview.undeclared_ports == b.preview.undeclared_ports, "preview.undeclared_ports");
  d.key(a.edge.redirect_http == b.edge.redirect_http, "edge.redirect_http");
  const EdgeLimits& la = a.edge.limits;
  const EdgeLimits& lb = b.edge.limits;
  d.key(la.max_header_bytes == lb.max_header_bytes, "edge.limits.max_header_bytes");
  d.key(la.max_connections == lb.max_connections, "edge.limits.max_connections");
  d.key(la.max_connections_per_client == lb.max_connections_per_client,
        "edge.limits.max_connections_per_client");
  d.key(la.max_connections_per_sandbox == lb.max_connections_per_sandbox,
        "edge.limits.max_connections_per_sandbox");
  d.key(la.max_held_requests_per_sandbox == lb.max_held_requests_per_sandbox,
        "edge.limits.max_held_requests_per_sandbox");
  d.key(la.max_held_requests_total == lb.max_held_requests_total,
        "edge.limits.max_held_requests_total");
  d.key(la.max_request_body == lb.max_request_body, "edge.limits.max_request_body");
  const EdgeTimeouts& ta = a.edge.timeouts;
  const EdgeTimeouts& tb = b.edge.timeouts;
  d.key(ta.header_read == tb.header_read, "edge.timeouts.header_read");
  d.key(ta.keepalive_idle == tb.keepalive_idle, "edge.timeouts.keepalive_idle");
  d.key(ta.upstream_connect == tb.upstream_connect, "edge.timeouts.upstream_connect");
  d.key(ta.upstream_response_header == tb.upstream_response_header,
        "edge.timeouts.upstream_response_header");
  d.key(ta.websocket_idle == tb.websocket_idle, "edge.timeouts.websocket_idle");
  d.key(ta.body_idle == tb.body_idle, "edge.timeouts.body_idle");
  d.key(ta.shutdown_drain == tb.shutdown_drain, "edge.timeouts.shutdown_drain");
  d.key(a.edge.upstream.idle_timeout == b.edge.upstream.idle_timeout, "edge.upstream.idle_timeout");
  d.key(a.edge.upstream.max_idle_per_backend == b.edge.upstream.max_idle_per_backend,
        "edge.upstream.max_idle_per_backend");
  d.key(a.edge.trusted_proxies == b.edge.trusted_proxies, "edge.trusted_proxies");
  d.key(a.edge.forwarded_header == b.edge.forwarded_header, "edge.forwarded_header");
  d.key(a.edge.hsts_max_age == b.edge.hsts_max_age, "edge.hsts_max_age");
  d.key(a.tls.files.cert == b.tls.files.cert, "tls.files.cert");
  d.key(a.tls.files.key == b.tls.files.key, "tls.files.key");
  d.key(a.tls.min_version == b.tls.min_version, "tls.min_version");
  d.key(a.acme.directory_url == b.acme.directory_url, "acme.directory_url");
  d.key(a.acme.email == b.acme.email, "acme.email");
  d.key(a.acme.ca_bundle == b.acme.ca_bundle, "acme.ca_bundle");
  d.key(a.acme.eab == b.acme.eab, "acme.eab");
  d.key(a.acme.key_type == b.acme.key_type, "acme.key_type");
  d.key(a.acme.profile == b.acme.profile, "acme.profile");
  d.key(a.acme.renew_ratio == b.acme.renew_ratio, "acme.renew_ratio");
  d.key(a.acme.dns.provider == b.acme.dns.provider, "acme.dns.provider");
  d.key(a.acme.dns.propagation == b.acme.dns.propagation, "acme.dns.propagation");
  d.key(a.acme.dns.rfc2136 == b.acme.dns.rfc2136, "acme.dns.rfc2136");
  d.key(a.acme.dns.cloudflare == b.acme.dns.cloudflare, "acme.dns.cloudflare");
  d.key(a.acme.dns.exec == b.acme.dns.exec, "acme.dns.exec");
  d.key(a.acme.dns.httpreq == b.acme.dns.httpreq, "acme.dns.httpreq");
  d.key(a.docker.image == b.docker.image, "docker.image");
  d.key(a.docker.runtime == b.docker.runtime, "docker.runtime");
  d.key(a.docker.stop_timeout == b.docker.stop_timeout, "docker.stop_timeout");
  const SandboxConfig& sa = a.sandbox;
  const SandboxConfig& sb = b.sandbox;
  d.key(sa.memory == sb.memory, "sandbox.memory");
  d.key(sa.pids == sb.pids, "sandbox.pids");
  d.key(sa.nofile == sb.nofile, "sandbox.nofile");
  d.key(sa.cpus == sb.cpus, "sandbox.cpus");
  d.key(sa.tmpfs_size == sb.tmpfs_size, "sandbox.tmpfs_size");
  d.key(sa.skeleton == sb.skeleton, "sandbox.skeleton");
  d.key(sa.env == sb.env, "sandbox.env");
  d.key(sa.env_passthrough == sb.env_passthrough, "sandbox.env_passthrough");
  d.key(sa.env_blocklist == sb.env_blocklist, "sandbox.env_blocklist");
  d.key(sa.project_dir == sb.project_dir, "sandbox.project_dir");
  d.key(sa.dev_command == sb.dev_command, "sandbox.dev_command");
  d.key(sa.dev_port == sb.dev_port, "sandbox.dev_port");
  d.key(a.wake.timeout == b.wake.timeout, "wake.timeout");
  d.key(a.wake.probe_interval == b.wake.probe_interval, "wake.probe_interval");
  d.key(a.wake.max_concurrent == b.wake.max_concurrent, "wake.max_concurrent");
  d.key(a.wake.admission.min_available_memory == b.wake.admission.min_available_memory,
        "wake.admission.min_available_memory");
  d.key(a.wake.admission.estimate_per_sandbox == b.wake.admission.estimate_per_sandbox,
        "wake.admission.estimate_per_sandbox");
  d.key(a.idle.threshold == b.idle.threshold, "idle.threshold");
  d.key(a.idle.check_interval == b.idle.check_interval, "idle.check_interval");
  d.key(a.idle.websockets_count_as_activity == b.idle.websockets_count_as_activity,
        "idle.websockets_count_as_activity");
  d.key(a.idle.keepalive_max == b.idle.keepalive_max, "idle.keepalive_max");
  d.key(a.idle.stop_timeout == b.idle.stop_timeout, "idle.stop_timeout");
  d.key(a.pressure.enabled == b.pressure.enabled, "pressure.enabled");
  d.key(a.pressure.check_interval == b.pressure.check_interval, "pressure.check_interval");
  d.key(a.pressure.max_stops_per_tick == b.pressure.max_stops_per_tick,
        "pressure.max_stops_per_tick");
  d.key(a.pressure.bands == b.pressure.bands, "pressure.bands");
  d.key(a.tasks.default_agent == b.tasks.default_agent, "tasks.default_agent");
  d.key(a.tasks.timeout == b.tasks.timeout, "tasks.timeout");
  d.key(a.tasks.max_queued == b.tasks.max_queued, "tasks.max_queued");
  d.key(a.tasks.cancel_grace == b.tasks.cancel_grace, "tasks.cancel_grace");
  d.key(a.tasks.max_output == b.tasks.max_output, "tasks.max_output");
  d.key(a.tasks.event_retention == b.tasks.event_retention, "tasks.event_retention");
  d.key(a.tasks.agents.opencode == b.tasks.agents.opencode, "tasks.agents.opencode");
  d.key(a.tasks.agents.claude_code == b.tasks.agents.claude_code, "tasks.agents.claude-code");
  d.key(a.exec.timeout == b.exec.timeout, "exec.timeout");
  d.key(a.exec.max_timeout == b.exec.max_timeout, "exec.max_timeout");
  d.key(a.exec.max_output == b.exec.max_output, "exec.max_output");
  d.key(a.files.read_max == b.files.read_max, "files.read_max");
  d.key(a.files.write_max == b.files.write_max, "files.write_max");
  d.key(a.files.list_max_entries == b.files.list_max_entries, "files.list_max_entries");
  d.key(a.files.list_max_depth == b.files.list_max_depth, "files.list_max_depth");
  d.key(a.files.list_skip == b.files.list_skip, "files.list_skip");
  d.key(a.files.export_exclude == b.files.export_exclude, "files.export_exclude");
  d.key(a.store.activity_flush == b.store.activity_flush, "store.activity_flush");
  d.key(a.store.audit_retention == b.store.audit_retention, "store.audit_retention");
  d.key(a.metrics.enabled == b.metrics.enabled, "metrics.enabled");
  d.key(a.metrics.per_sandbox_labels == b.metrics.per_sandbox_labels,
        "metrics.per_sandbox_labels");
  d.key(a.metrics.per_sandbox_limit == b.metrics.per_sandbox_limit, "metrics.per_sandbox_limit");
  return d.take();
}

Config keep_restart_keys(const Config& running, Config next) {
  next.data_dir = running.data_dir;
  next.control.listen = running.control.listen;
  next.preview.domain = running.preview.domain;
  next.preview.suffix = running.preview.suffix;
  next.edge.http.listen = running.edge.http.listen;
  next.edge.https.listen = running.edge.https.listen;
  next.edge.workers = running.edge.workers;
  next.tls.mode = running.tls.mode;
  next.docker.socket = running.docker.socket;
  next.docker.network = running.docker.network;
  next.sandbox.user = running.sandbox.user;
  next.store.read_connections = running.store.read_connections;
  next.store.busy_timeout = running.store.busy_timeout;
  return next;
}

}  // namespace sandboxd::config
