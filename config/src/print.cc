#include "config/print.h"

#include <cstdio>
#include <functional>

#include "config/values.h"
#include "text.h"

namespace sandboxd::config {
namespace {

constexpr std::string_view kRedacted = "<redacted>";

using detail::yaml_quote;


// Writes block YAML while tracking the key path, so that values that came from the
// environment can be redacted by path.
class Emitter {
 public:
  explicit Emitter(const Config& cfg) : cfg_(cfg) {}

  std::string take() { return std::move(out_); }

  void section(std::string_view key, const std::function<void()>& body) {
    line(std::string(key) + ":");
    push(key);
    ++depth_;
    body();
    --depth_;
    pop();
  }

  // `plain` is already valid YAML (a number, a duration, a bool, an enum word).
  void plain(std::string_view key, const std::string& value) {
    line(std::string(key) + ": " + (secret_path(key) ? std::string(kRedacted) : value));
  }
  void str(std::string_view key, const std::string& value) { plain(key, yaml_quote(value)); }
  void secret(std::string_view key, const Secret& value) {
    plain(key, value.empty() ? yaml_quote("") : std::string(kRedacted));
  }
  void flag(std::string_view key, bool value) { plain(key, value ? "true" : "false"); }
  void duration(std::string_view key, milliseconds d) { plain(key, format_duration(d)); }
  void size(std::string_view key, Bytes b) { plain(key, format_size(b)); }
  void number(std::string_view key, double v) { plain(key, detail::format_number(v)); }
  void integer(std::string_view key, std::uint64_t v) { plain(key, std::to_string(v)); }
  void host_port(std::string_view key, const HostPort& hp) { str(key, hp.str()); }

  // A flow list of scalars; `format` gives each item's YAML text.
  template <class T, class Format>
  void list(std::string_view key, const std::vector<T>& items, Format format) {
    std::string text = "[";
    std::string base = join(key);
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i > 0) text += ", ";
      bool hidden = cfg_.interpolated.count(base + "[" + std::to_string(i) + "]") > 0;
      text += hidden ? std::string(kRedacted) : format(items[i]);
    }
    line(std::string(key) + ": " + text + "]");
  }

  // A block list of mappings; `item` writes the keys of one entry.
  template <class T>
  void items(std::string_view key, const std::vector<T>& all,
             const std::function<void(const T&)>& item) {
    if (all.empty()) {
      line(std::string(key) + ": []");
      return;
    }
    line(std::string(key) + ":");
    for (std::size_t i = 0; i < all.size(); ++i) {
      push(std::string(key) + "[" + std::to_string(i) + "]");
      // The first key of an item goes on the "- " line.
      first_in_item_ = true;
      depth_ += 2;
      item(all[i]);
      depth_ -= 2;
      pop();
    }
  }

  void string_map(std::string_view key, const std::map<std::string, std::string>& m) {
    if (m.empty()) {
      line(std::string(key) + ": {}");
      return;
    }
    section(key, [&] {
      for (const auto& [name, value] : m) str(name, value);
    });
  }

 private:
  std::string join(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_.back() + "." + std::string(key);
  }
  bool secret_path(std::string_view key) const { return cfg_.interpolated.count(join(key)) > 0; }
  void push(std::string_view key) { path_.push_back(join(key)); }
  void pop() { path_.pop_back(); }

  void line(const std::string& text) {
    if (first_in_item_) {
      out_ += std::string(static_cast<std::size_t>(depth_ - 2) * 2, ' ') + "  - " + text + "\n";
      first_in_item_ = false;
      return;
    }
    out_ += std::string(static_cast<std::size_t>(depth_) * 2, ' ') + text + "\n";
  }

  const Config& cfg_;
  std::string out_;
  std::vector<std::string> path_;
  int depth_ = 0;
  bool first_in_item_ = false;
};

std::string quoted(const std::string& s) { return yaml_quote(s); }

void emit_agent(Emitter& e, const AgentConfig& a) {
  e.str("model", a.model);
  e.list("extra_args", a.extra_args, quoted);
}

}  // namespace

std::string effective_yaml(const Config& c) {
  Emitter e(c);
  e.str("data_dir", c.data_dir);
  e.section("log", [&] {
    e.plain("level", std::string(to_string(c.log.level)));
    e.plain("format", std::string(to_string(c.log.format)));
    e.str("access_log", c.log.access_log);
  });
  e.section("control", [&] {
    e.host_port("listen", c.control.listen);
    e.str("public_host", c.control.public_host);
    e.size("max_json_body", c.control.max_json_body);
  });
  e.section("auth", [&] {
    e.items<ApiToken>("tokens", c.auth.tokens, [&](const ApiToken& t) {
      e.str("name", t.name);
      e.secret("secret", t.secret);
      e.flag("read_only", t.read_only);
      e.str("user_id", t.user_id);
    });
    e.plain("required", std::string(to_string(c.auth.required)));
    e.section("preview", [&] {
      e.items<PreviewKey>("secrets", c.auth.preview.secrets, [&](const PreviewKey& k) {
        e.str("kid", k.kid);
        e.secret("secret", k.secret);
      });
      e.duration("cookie_ttl", c.auth.preview.cookie_ttl);
      e.str("redirect_url", c.auth.preview.redirect_url);
    });
  });
  e.section("preview", [&] {
    e.str("domain", c.preview.domain);
    e.str("suffix", c.preview.suffix);
    e.list("allowed_ports", c.preview.allowed_ports, [](const PortRange& r) {
      return r.first == r.last ? std::to_string(r.first)
                               : std::to_string(r.first) + "-" + std::to_string(r.last);
    });
    e.plain("undeclared_ports", std::string(to_string(c.preview.undeclared_ports)));
  });
  e.section("edge", [&] {
    const EdgeConfig& g = c.edge;
    e.section("http", [&] { e.host_port("listen", g.http.listen); });
    e.section("https", [&] { e.host_port("listen", g.https.listen); });
    e.flag("redirect_http", g.redirect_http);
    e.integer("workers", g.workers);
    e.section("limits", [&] {
      e.size("max_header_bytes", g.limits.max_header_bytes);
      e.integer("max_connections", g.limits.max_connections);
      e.integer("max_connections_per_client", g.limits.max_connections_per_client);
      e.integer("max_connections_per_sandbox", g.limits.max_connections_per_sandbox);
      e.integer("max_held_requests_per_sandbox", g.limits.max_held_requests_per_sandbox);
      e.integer("max_held_requests_total", g.limits.max_held_requests_total);
      e.size("max_request_body", g.limits.max_request_body);
    });
    e.section("timeouts", [&] {
      e.duration("header_read", g.timeouts.header_read);
      e.duration("keepalive_idle", g.timeouts.keepalive_idle);
      e.duration("upstream_connect", g.timeouts.upstream_connect);
      e.duration("upstream_response_header", g.timeouts.upstream_response_header);
      e.duration("websocket_idle", g.timeouts.websocket_idle);
      e.duration("body_idle", g.timeouts.body_idle);
      e.duration("shutdown_drain", g.timeouts.shutdown_drain);
    });
    e.section("upstream", [&] {
      e.duration("idle_timeout", g.upstream.idle_timeout);
      e.integer("max_idle_per_backend", g.upstream.max_idle_per_backend);
    });
    e.list("trusted_proxies", g.trusted_proxies, [](const Cidr& r) { return quoted(r.str()); });
    e.flag("forwarded_header", g.forwarded_header);
    e.duration("hsts_max_age", g.hsts_max_age);
  });
  e.section("tls", [&] {
    e.plain("mode", std::string(to_string(c.tls.mode)));
    e.section("files", [&] {
      e.str("cert", c.tls.files.cert);
      e.str("key", c.tls.files.key);
    });
    e.str("min_version", std::string(to_string(c.tls.min_version)));
  });
  e.section("acme", [&] {
    const AcmeConfig& a = c.acme;
    e.str("directory_url", a.directory_url);
    e.str("email", a.email);
    e.str("ca_bundle", a.ca_bundle);
    e.section("eab", [&] {
      e.str("kid", a.eab.kid);
      e.secret("hmac", a.eab.hmac);
    });
    e.plain("key_type", std::string(to_string(a.key_type)));
    e.str("profile", a.profile);
    e.number("renew_ratio", a.renew_ratio);
    e.section("dns", [&] {
      const DnsConfig& d = a.dns;
      e.str("provider", std::string(to_string(d.provider)));
      e.section("propagation", [&] {
        e.duration("delay", d.propagation.delay);
        e.duration("timeout", d.propagation.timeout);
        e.plain("check", std::string(to_string(d.propagation.check)));
        e.list("nameservers", d.propagation.nameservers,
               [](const HostPort& hp) { return quoted(hp.str()); });
      });
      e.section("rfc2136", [&] {
        e.str("nameserver", d.rfc2136.nameserver ? d.rfc2136.nameserver->str() : "");
        e.str("tsig_name", d.rfc2136.tsig_name);
        e.secret("tsig_secret", d.rfc2136.tsig_secret);
        e.plain("tsig_algorithm", std::string(to_string(d.rfc2136.tsig_algorithm)));
      });
      e.section("cloudflare", [&] {
        e.secret("api_token", d.cloudflare.api_token);
        e.str("zone_id", d.cloudflare.zone_id);
        e.str("base_url", d.cloudflare.base_url);
      });
      e.section("exec", [&] { e.str("command", d.exec.command); });
      e.section("httpreq", [&] {
        e.str("url", d.httpreq.url);
        e.str("username", d.httpreq.username);
        e.secret("password", d.httpreq.password);
      });
    });
  });
  e.section("docker", [&] {
    e.str("socket", c.docker.socket);
    e.str("image", c.docker.image);
    e.str("network", c.docker.network);
    e.str("runtime", c.docker.runtime);
    e.duration("stop_timeout", c.docker.stop_timeout);
  });
  e.section("sandbox", [&] {
    const SandboxConfig& s = c.sandbox;
    e.str("user", std::to_string(s.user.uid) + ":" + std::to_string(s.user.gid));
    e.size("memory", s.memory);
    e.integer("pids", s.pids);
    e.integer("nofile", s.nofile);
    e.number("cpus", s.cpus);
    e.size("tmpfs_size", s.tmpfs_size);
    e.str("skeleton", s.skeleton);
    e.string_map("env", s.env);
    e.list("env_passthrough", s.env_passthrough, quoted);
    e.list("env_blocklist", s.env_blocklist, quoted);
    e.str("project_dir", s.project_dir);
    e.str("dev_command", s.dev_command);
    e.integer("dev_port", s.dev_port);
  });
  e.section("wake", [&] {
    e.duration("timeout", c.wake.timeout);
    e.duration("probe_interval", c.wake.probe_interval);
    e.integer("max_concurrent", c.wake.max_concurrent);
    e.section("admission", [&] {
      const MemoryFloor& f = c.wake.admission.min_available_memory;
      e.plain("min_available_memory",
              f.is_percent ? format_percent(f.percent) : format_size(f.bytes));
      e.size("estimate_per_sandbox", c.wake.admission.estimate_per_sandbox);
    });
  });
  e.section("idle", [&] {
    e.duration("threshold", c.idle.threshold);
    e.duration("check_interval", c.idle.check_interval);
    e.flag("websockets_count_as_activity", c.idle.websockets_count_as_activity);
    e.duration("keepalive_max", c.idle.keepalive_max);
    e.duration("stop_timeout", c.idle.stop_timeout);
  });
  e.section("pressure", [&] {
    e.flag("enabled", c.pressure.enabled);
    e.duration("check_interval", c.pressure.check_interval);
    e.integer("max_stops_per_tick", c.pressure.max_stops_per_tick);
    e.items<PressureBand>("bands", c.pressure.bands, [&](const PressureBand& b) {
      e.plain("below", format_percent(b.below));
      e.duration("stop_idle_for", b.stop_idle_for);
    });
  });
  e.section("tasks", [&] {
    const TasksConfig& t = c.tasks;
    e.plain("default_agent", std::string(to_string(t.default_agent)));
    e.duration("timeout", t.timeout);
    e.integer("max_queued", t.max_queued);
    e.duration("cancel_grace", t.cancel_grace);
    e.size("max_output", t.max_output);
    e.duration("event_retention", t.event_retention);
    e.section("agents", [&] {
      e.section("opencode", [&] { emit_agent(e, t.agents.opencode); });
      e.section("claude-code", [&] { emit_agent(e, t.agents.claude_code); });
    });
  });
  e.section("exec", [&] {
    e.duration("timeout", c.exec.timeout);
    e.duration("max_timeout", c.exec.max_timeout);
    e.size("max_output", c.exec.max_output);
  });
  e.section("files", [&] {
    e.size("read_max", c.files.read_max);
    e.size("write_max", c.files.write_max);
    e.integer("list_max_entries", c.files.list_max_entries);
    e.integer("list_max_depth", c.files.list_max_depth);
    e.list("list_skip", c.files.list_skip, quoted);
    e.list("export_exclude", c.files.export_exclude, quoted);
  });
  e.section("store", [&] {
    e.integer("read_connections", c.store.read_connections);
    e.duration("busy_timeout", c.store.busy_timeout);
    e.duration("activity_flush", c.store.activity_flush);
    e.duration("audit_retention", c.store.audit_retention);
    e.integer("audit_max_rows", c.store.audit_max_rows);
  });
  e.section("metrics", [&] {
    e.flag("enabled", c.metrics.enabled);
    e.flag("per_sandbox_labels", c.metrics.per_sandbox_labels);
    e.integer("per_sandbox_limit", c.metrics.per_sandbox_limit);
  });
  return e.take();
}

std::string summary(const Config& c, const LoadResult& loaded) {
  std::string out;
  auto row = [&](std::string_view label, const std::string& value) {
    std::string padded(label);
    padded.resize(16, ' ');
    out += padded + value + "\n";
  };
  row("config file:", loaded.file.empty() ? "none (built-in defaults)" : loaded.file);
  row("edge http:", c.edge.http.listen.str());
  row("edge https:",
      c.tls.mode == TlsMode::off ? "off (tls.mode is off)" : c.edge.https.listen.str());
  row("control:",
      c.control.listen.str() + (c.auth_required() ? " (auth required)" : " (auth not required)"));
  if (!c.control.public_host.empty()) row("public host:", c.control.public_host);
  const bool tls = c.tls.mode != TlsMode::off;
  const HostPort& edge = tls ? c.edge.https.listen : c.edge.http.listen;
  std::string port;
  if (edge.port != (tls ? 443 : 80)) port = ":" + std::to_string(edge.port);
  row("preview suffix:", c.preview_suffix() + " (" + (tls ? "https" : "http") +
                             "://s-<id>-<port>." + c.preview_suffix() + port + "/)");
  row("tls mode:", std::string(to_string(c.tls.mode)));
  std::size_t read_only = 0;
  for (const auto& t : c.auth.tokens) read_only += t.read_only ? 1 : 0;
  row("api tokens:", std::to_string(c.auth.tokens.size()) +
                         (read_only > 0 ? " (" + std::to_string(read_only) + " read-only)" : ""));
  row("preview keys:", std::to_string(c.auth.preview.secrets.size()));
  row("warnings:", loaded.warnings.empty() ? "none" : std::to_string(loaded.warnings.size()));
  for (const Diagnostic& w : loaded.warnings) {
    std::string text = w.str();
    // Indent every line of the warning, including its hint.
    out += "  ";
    for (char ch : text) {
      out += ch;
      if (ch == '\n') out += "  ";
    }
    out += "\n";
  }
  return out;
}

}  // namespace sandboxd::config
