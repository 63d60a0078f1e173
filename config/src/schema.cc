// The key table of §9.2 as code: one function per section, in the order of the spec. Each
// `take`/`read_*` call both declares a key (for unknown-key suggestions and
// known_key_paths()) and reads it, so the schema cannot drift from the reader. Rules that
// involve a single value or a single list item live here; rules across keys live in
// checks.cc.
#include "schema.h"

#include <algorithm>

#include "enums.h"
#include "reader.h"

namespace sandboxd::config::detail {
namespace {

ValueResult<std::string> absolute_path(std::string_view t) {
  if (t.empty() || t[0] != '/') {
    return ValueError{"must be an absolute path, got " + quote(t), ""};
  }
  return std::string(t);
}

ValueResult<std::string> non_empty(std::string_view t) {
  if (t.empty()) return ValueError{"must not be empty", ""};
  return std::string(t);
}

bool visible_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

bool base64_text(std::string_view s, bool url_alphabet) {
  // Padding is optional in base64url and required to complete a group in base64.
  std::size_t end = s.size();
  while (end > 0 && s[end - 1] == '=') --end;
  if (s.size() - end > 2) return false;
  for (std::size_t i = 0; i < end; ++i) {
    char c = s[i];
    bool ok = is_alpha(c) || is_digit(c) ||
              (url_alphabet ? (c == '-' || c == '_') : (c == '+' || c == '/'));
    if (!ok) return false;
  }
  if (!url_alphabet && s.size() % 4 != 0) return false;
  return end > 0;
}

// Environment names and the globs of env_passthrough / env_blocklist.
bool env_glob(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return is_alpha(c) || is_digit(c) || c == '_' || c == '*' || c == '?';
  });
}

bool env_name(std::string_view s) {
  if (s.empty() || is_digit(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return is_alpha(c) || is_digit(c) || c == '_'; });
}

ValueResult<std::string> parse_glob(std::string_view t) {
  if (!env_glob(t)) {
    return ValueError{"expected a variable name or glob like AWS_*, got " + quote(t), ""};
  }
  return std::string(t);
}

ValueResult<std::string> plain_string(std::string_view t) { return std::string(t); }

// --- log, control -----------------------------------------------------------------------

void read_log(Section& s, LogConfig& c) {
  read_enum(s, "level", c.level, kLogLevels, "level");
  read_enum(s, "format", c.format, kLogFormats, "format");
  read_string(s, "access_log", c.access_log);
}

void read_control(Section& s, ControlConfig& c) {
  read_host_port(s, "listen", c.listen);
  read_hostname(s, "public_host", c.public_host, true);
  read_size(s, "max_json_body", c.max_json_body);
}

// --- auth -------------------------------------------------------------------------------

ValueResult<std::string> parse_token_name(std::string_view t) {
  bool ok = !t.empty() && t.size() <= 64 && (is_digit(t[0]) || (t[0] >= 'a' && t[0] <= 'z'));
  for (char c : t) ok = ok && ((c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-');
  if (ok) return std::string(t);
  std::string hint;
  if (std::string l = lower(t); l != t && parse_token_name(l))
    hint = "did you mean " + quote(l) + "?";
  return ValueError{"expected a token name matching [a-z0-9][a-z0-9_-]{0,63}, got " + quote(t),
                    hint};
}

// External ids (SPEC §1.2): 1-256 bytes, no control characters, no comma. Empty stands for
// "none" (an operator's token).
ValueResult<std::string> parse_external_id(std::string_view t) {
  if (t.size() > 256) {
    return ValueError{"expected 1-256 bytes, got " + std::to_string(t.size()), ""};
  }
  for (unsigned char c : t) {
    if (c < 0x20 || c == 0x7f) return ValueError{"must not contain control characters", ""};
    if (c == ',') return ValueError{"must not contain a comma", ""};
  }
  return std::string(t);
}

ValueResult<Secret> parse_token_secret(std::string_view t) {
  if (t.size() < 16) {
    return ValueError{"must be at least 16 characters, got " + std::to_string(t.size()),
                      "generate one with: openssl rand -hex 32"};
  }
  // Bearer tokens are 1-512 visible ASCII characters (§2.3); anything else never matches.
  if (t.size() > 512) {
    return ValueError{"must be at most 512 characters, got " + std::to_string(t.size()), ""};
  }
  if (!visible_ascii(t)) {
    return ValueError{"must be visible ASCII characters, without spaces", ""};
  }
  return Secret(std::string(t));
}

ValueResult<std::string> parse_kid(std::string_view t) {
  if (t.empty() || t.size() > 64 || !visible_ascii(t)) {
    return ValueError{"expected 1 to 64 visible ASCII characters, got " + quote(t), ""};
  }
  return std::string(t);
}

ValueResult<Secret> parse_preview_secret(std::string_view t) {
  if (t.size() < 32) {
    return ValueError{"must be at least 32 bytes, got " + std::to_string(t.size()),
                      "generate one with: openssl rand -hex 32"};
  }
  return Secret(std::string(t));
}

ValueResult<std::string> parse_redirect_template(std::string_view t) {
  if (t.empty()) return std::string();
  // Check the URL with the placeholders filled in; braces are not URL characters.
  std::string filled;
  for (std::size_t i = 0; i < t.size();) {
    if (t[i] == '{') {
      std::size_t close = t.find('}', i);
      std::string_view name =
          close == std::string_view::npos ? t.substr(i) : t.substr(i, close - i + 1);
      if (name != "{sandbox_id}" && name != "{return}") {
        return ValueError{"unknown placeholder " + quote(name) + " in " + quote(t),
                          "the placeholders are {sandbox_id} and {return}"};
      }
      filled += "x";
      i = close + 1;
    } else {
      filled += t[i++];
    }
  }
  auto url = parse_url(filled);
  if (!url) {
    return ValueError{
        "expected an absolute URL like https://login.example.com/?next={return}, "
        "got " +
            quote(t),
        ""};
  }
  return std::string(t);
}

void check_unique(Reader& r, const std::vector<std::pair<std::string, std::string>>& names,
                  std::string_view what) {
  // names: (value, key path of the value)
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (names[i].first != names[j].first) continue;
      r.conflict(r.where(names[i].second), names[i].second,
                 "duplicate " + std::string(what) + " " + quote(names[i].first) + " (also " +
                     names[j].second + ")");
      break;
    }
  }
}

void read_auth(Section& s, AuthConfig& c) {
  Reader& r = s.reader();
  std::vector<ApiToken> tokens;
  std::vector<std::pair<std::string, std::string>> names;
  read_items(s, "tokens", [&](Section& item, std::size_t) {
    ApiToken t;
    bool has_name = read(item, "name", t.name, "a token name", parse_token_name);
    bool has_secret = read(item, "secret", t.secret, "a string", parse_token_secret);
    read_bool(item, "read_only", t.read_only);
    read(item, "user_id", t.user_id, "an external user id", parse_external_id);
    if (!item.exists()) return;
    for (auto [key, ok] : {std::pair{"name", has_name}, std::pair{"secret", has_secret}}) {
      std::string path = join_path(item.path(), key);
      if (!ok && !r.failed(path)) r.error(item.pos(), path, "required but missing");
    }
    if (has_name) names.emplace_back(t.name, join_path(item.path(), "name"));
    tokens.push_back(std::move(t));
  });
  check_unique(r, names, "token name");
  c.tokens = std::move(tokens);

  read_enum(s, "required", c.required, kAuthRequired, "value");

  read_section(s, "preview", [&](Section& p) {
    std::vector<PreviewKey> keys;
    std::vector<std::pair<std::string, std::string>> kids;
    read_items(p, "secrets", [&](Section& item, std::size_t) {
      PreviewKey k;
      bool has_kid = read(item, "kid", k.kid, "a key id", parse_kid);
      bool has_secret = read(item, "secret", k.secret, "a string", parse_preview_secret);
      if (!item.exists()) return;
      for (auto [key, ok] : {std::pair{"kid", has_kid}, std::pair{"secret", has_secret}}) {
        std::string path = join_path(item.path(), key);
        if (!ok && !r.failed(path)) r.error(item.pos(), path, "required but missing");
      }
      if (has_kid) kids.emplace_back(k.kid, join_path(item.path(), "kid"));
      keys.push_back(std::move(k));
    });
    check_unique(r, kids, "kid");
    c.preview.secrets = std::move(keys);
    read_duration(p, "cookie_ttl", c.preview.cookie_ttl, std::chrono::seconds(1));
    read(p, "redirect_url", c.preview.redirect_url, "a URL", parse_redirect_template);
  });
}

// --- preview, edge ----------------------------------------------------------------------

void read_preview(Section& s, PreviewConfig& c) {
  read_hostname(s, "domain", c.domain, false);
  read_hostname(s, "suffix", c.suffix, true);
  read_list(s, "allowed_ports", c.allowed_ports, "a port or a range like 1024-65535",
            parse_port_range);
  read_enum(s, "undeclared_ports", c.undeclared_ports, kUndeclaredPorts, "value");
}

void read_edge(Section& s, EdgeConfig& c) {
  read_section(s, "http", [&](Section& l) { read_host_port(l, "listen", c.http.listen); });
  read_section(s, "https", [&](Section& l) { read_host_port(l, "listen", c.https.listen); });
  read_bool(s, "redirect_http", c.redirect_http);
  // One thread each: more than 1024 is a typo, not a machine.
  read_u32(s, "workers", c.workers, 0, 1024);
  read_section(s, "limits", [&](Section& l) {
    EdgeLimits& m = c.limits;
    read_size(l, "max_header_bytes", m.max_header_bytes);
    read_u32(l, "max_connections", m.max_connections, 1);
    read_u32(l, "max_connections_per_client", m.max_connections_per_client, 1);
    read_u32(l, "max_connections_per_sandbox", m.max_connections_per_sandbox, 1);
    read_u32(l, "max_held_requests_per_sandbox", m.max_held_requests_per_sandbox, 1);
    read_u32(l, "max_held_requests_total", m.max_held_requests_total, 1);
    read_size(l, "max_request_body", m.max_request_body);
  });
  read_section(s, "timeouts", [&](Section& t) {
    EdgeTimeouts& m = c.timeouts;
    read_duration(t, "header_read", m.header_read, milliseconds(1));
    read_duration(t, "keepalive_idle", m.keepalive_idle, milliseconds(1));
    read_duration(t, "upstream_connect", m.upstream_connect, milliseconds(1));
    read_duration(t, "upstream_response_header", m.upstream_response_header);
    read_duration(t, "websocket_idle", m.websocket_idle);
    read_duration(t, "body_idle", m.body_idle, milliseconds(1));
    read_duration(t, "shutdown_drain", m.shutdown_drain);
  });
  read_section(s, "upstream", [&](Section& u) {
    read_duration(u, "idle_timeout", c.upstream.idle_timeout);
    read_u32(u, "max_idle_per_backend", c.upstream.max_idle_per_backend);
  });
  read_list(s, "trusted_proxies", c.trusted_proxies, "a CIDR like 10.0.0.0/8", parse_cidr);
  read_bool(s, "forwarded_header", c.forwarded_header);
  read_duration(s, "hsts_max_age", c.hsts_max_age);
}

// --- tls, acme --------------------------------------------------------------------------

void read_tls(Section& s, TlsConfig& c) {
  read_enum(s, "mode", c.mode, kTlsModes, "mode");
  read_section(s, "files", [&](Section& f) {
    read_string(f, "cert", c.files.cert);
    read_string(f, "key", c.files.key);
  });
  read_enum(s, "min_version", c.min_version, kTlsVersions, "version");
}

ValueResult<std::string> parse_email(std::string_view t) {
  std::size_t at = t.find('@');
  if (t.empty()) return std::string();
  if (at == std::string_view::npos || at == 0 || at + 1 == t.size() || !visible_ascii(t)) {
    return ValueError{"expected an email address like ops@example.com, got " + quote(t), ""};
  }
  return std::string(t);
}

void read_dns(Section& s, DnsConfig& c) {
  read_enum(s, "provider", c.provider, kDnsProviders, "provider");
  read_section(s, "propagation", [&](Section& p) {
    read_duration(p, "delay", c.propagation.delay);
    read_duration(p, "timeout", c.propagation.timeout, milliseconds(1));
    read_enum(p, "check", c.propagation.check, kPropagationChecks, "check");
    read_list(p, "nameservers", c.propagation.nameservers, "host:port like 192.0.2.53:53",
              [](std::string_view t) -> ValueResult<HostPort> {
                auto hp = parse_host_port(t);
                if (hp) hp->explicit_ = true;
                return hp;
              });
  });
  read_section(s, "rfc2136", [&](Section& r) {
    read(r, "nameserver", c.rfc2136.nameserver, "host:port like 192.0.2.53:53",
         [](std::string_view t) -> ValueResult<std::optional<HostPort>> {
           if (t.empty()) return std::optional<HostPort>();
           auto hp = parse_host_port(t);
           if (!hp) return hp.error();
           hp->explicit_ = true;
           return std::optional<HostPort>(*hp);
         });
    read_string(r, "tsig_name", c.rfc2136.tsig_name);
    read(r, "tsig_secret", c.rfc2136.tsig_secret, "a string",
         [](std::string_view t) -> ValueResult<Secret> {
           if (!t.empty() && !base64_text(t, false)) {
             return ValueError{"must be base64, like the secret of a BIND key file", ""};
           }
           return Secret(std::string(t));
         });
    read_enum(r, "tsig_algorithm", c.rfc2136.tsig_algorithm, kTsigAlgorithms, "algorithm");
  });
  read_section(s, "cloudflare", [&](Section& cf) {
    read_secret(cf, "api_token", c.cloudflare.api_token);
    read_string(cf, "zone_id", c.cloudflare.zone_id);
    read_url(cf, "base_url", c.cloudflare.base_url, false);
  });
  read_section(s, "exec", [&](Section& e) { read_string(e, "command", c.exec.command); });
  read_section(s, "httpreq", [&](Section& h) {
    read_url(h, "url", c.httpreq.url, true);
    read_string(h, "username", c.httpreq.username);
    read_secret(h, "password", c.httpreq.password);
  });
}

void read_acme(Section& s, AcmeConfig& c) {
  read_url(s, "directory_url", c.directory_url, false);
  read(s, "email", c.email, "an email address", parse_email);
  read_string(s, "ca_bundle", c.ca_bundle);
  read_section(s, "eab", [&](Section& e) {
    read_string(e, "kid", c.eab.kid);
    read(e, "hmac", c.eab.hmac, "a string", [](std::string_view t) -> ValueResult<Secret> {
      if (!t.empty() && !base64_text(t, true)) {
        return ValueError{"must be base64url, as the CA gave it", ""};
      }
      return Secret(std::string(t));
    });
  });
  read_enum(s, "key_type", c.key_type, kKeyTypes, "key type");
  read_string(s, "profile", c.profile);
  read(s, "renew_ratio", c.renew_ratio, "a number",
       [](std::string_view t) { return parse_number(t, 0.5, 0.9); });
  read_section(s, "dns", [&](Section& d) { read_dns(d, c.dns); });
}

// --- docker, sandbox --------------------------------------------------------------------

ValueResult<std::string> parse_docker_socket(std::string_view t) {
  if (t.starts_with("unix://") && t.size() > 8 && t[7] == '/') return std::string(t);
  std::string hint;
  if (t.starts_with("/")) hint = "did you mean " + quote("unix://" + std::string(t)) + "?";
  if (t.starts_with("unix://")) {
    return ValueError{"expected unix:// and an absolute path, got " + quote(t), hint};
  }
  return ValueError{"only unix:// sockets are supported, got " + quote(t), hint};
}

ValueResult<std::string> parse_docker_name(std::string_view t) {
  // Docker's rule for network names, which also keeps shell and path characters out.
  bool ok = !t.empty() && t.size() <= 128 && (is_alpha(t[0]) || is_digit(t[0]));
  for (char c : t) ok = ok && (is_alpha(c) || is_digit(c) || c == '_' || c == '.' || c == '-');
  if (!ok)
    return ValueError{"expected a Docker network name like sandboxd_net, got " + quote(t), ""};
  return std::string(t);
}

ValueResult<SandboxUser> parse_user(std::string_view t) {
  auto bad = [&]() -> ValueError {
    return {"expected \"uid:gid\" like \"1000:1000\", got " + quote(t), ""};
  };
  std::size_t colon = t.find(':');
  if (colon == std::string_view::npos) return bad();
  auto uid = parse_integer(t.substr(0, colon), 0, 0xfffffffe);
  auto gid = parse_integer(t.substr(colon + 1), 0, 0xfffffffe);
  if (!uid || !gid) return bad();
  if (*uid == 0 || *gid == 0) {
    return ValueError{std::string(*uid == 0 ? "uid" : "gid") + " 0 (root) is not allowed",
                      "use an unprivileged user, like \"1000:1000\""};
  }
  return SandboxUser{static_cast<std::uint32_t>(*uid), static_cast<std::uint32_t>(*gid)};
}

ValueResult<std::string> parse_project_dir(std::string_view t) {
  bool ok = !t.empty() && t[0] != '/';
  for (std::size_t start = 0; ok && start <= t.size();) {
    std::size_t slash = t.find('/', start);
    if (slash == std::string_view::npos) slash = t.size();
    std::string_view part = t.substr(start, slash - start);
    ok = part != ".." && !(part.empty() && slash != t.size());
    start = slash + 1;
  }
  if (!ok) {
    return ValueError{
        "expected a relative path inside the workspace like workspace/app, got " + quote(t), ""};
  }
  return std::string(t);
}

void read_env_map(Section& s, std::map<std::string, std::string>& out) {
  Reader& r = s.reader();
  std::optional<Value> v = s.take("env");
  if (!v || v->node->kind == YamlNode::Kind::null) return;
  if (v->node->kind != YamlNode::Kind::mapping) {
    r.error(v->pos, v->path,
            "expected a mapping of names to values, got " + std::string(describe(v->node)));
    return;
  }
  std::map<std::string, std::string> env;
  std::map<std::string, Pos> first;
  for (const auto& [key, value] : v->node->entries) {
    if (key->kind != YamlNode::Kind::scalar) {
      r.error(key->pos, v->path, "keys must be plain strings, got " + std::string(describe(key)));
      continue;
    }
    std::string path = v->path + "." + key->text;
    if (auto it = first.find(key->text); it != first.end()) {
      r.error(key->pos, path,
              "duplicate key (first set on line " + std::to_string(it->second.line) + ")");
      continue;
    }
    first.emplace(key->text, key->pos);
    r.mark_present(path, key->pos);
    if (!env_name(key->text)) {
      r.error(key->pos, path, "expected a variable name matching [A-Za-z_][A-Za-z0-9_]*");
      continue;
    }
    if (key->text == "HOME" || key->text.starts_with("SANDBOX_") ||
        key->text.starts_with("SANDBOXD_")) {
      r.error(key->pos, path, "reserved name",
              "HOME and names starting with SANDBOX_ or SANDBOXD_ are set by sandboxd");
      continue;
    }
    Pos pos = value->kind == YamlNode::Kind::null ? key->pos : value->pos;
    std::string text;
    if (read_value(r, Value{value, pos, path}, text, "a string", plain_string)) {
      env[key->text] = std::move(text);
    }
  }
  out = std::move(env);
}

void read_sandbox(Section& s, SandboxConfig& c) {
  read(s, "user", c.user, "\"uid:gid\"", parse_user);
  read_size(s, "memory", c.memory);
  read_u32(s, "pids", c.pids, 1);
  read_u32(s, "nofile", c.nofile, 1);
  // Docker's --cpus; the cap only catches typos.
  read(s, "cpus", c.cpus, "a number", [](std::string_view t) { return parse_number(t, 0, 1024); });
  read_size(s, "tmpfs_size", c.tmpfs_size);
  read_string(s, "skeleton", c.skeleton);
  read_env_map(s, c.env);
  read_list(s, "env_passthrough", c.env_passthrough, "a variable name or glob", parse_glob);
  read_list(s, "env_blocklist", c.env_blocklist, "a variable name or glob", parse_glob);
  read(s, "project_dir", c.project_dir, "a relative path", parse_project_dir);
  read_string(s, "dev_command", c.dev_command);
  read(s, "dev_port", c.dev_port, "a port", [](std::string_view t) -> ValueResult<std::uint16_t> {
    auto n = parse_integer(t, 0, 65535);
    if (!n) return n.error();
    return static_cast<std::uint16_t>(*n);
  });
}

// --- wake, idle, pressure ---------------------------------------------------------------

ValueResult<MemoryFloor> parse_memory_floor(std::string_view t) {
  MemoryFloor out;
  if (!t.empty() && t.back() == '%') {
    auto p = parse_percent(t);
    if (!p) return p.error();
    out.is_percent = true;
    out.percent = *p;
    return out;
  }
  auto b = parse_size(t);
  if (!b) {
    return ValueError{"expected a percentage like 10% or a size like 1GiB, got " + quote(t),
                      b.error().hint};
  }
  out.is_percent = false;
  out.percent = 0;
  out.bytes = *b;
  return out;
}

void read_wake(Section& s, WakeConfig& c) {
  read_duration(s, "timeout", c.timeout, milliseconds(1));
  read_duration(s, "probe_interval", c.probe_interval, milliseconds(5), std::chrono::seconds(1));
  read_u32(s, "max_concurrent", c.max_concurrent, 1);
  read_section(s, "admission", [&](Section& a) {
    read(a, "min_available_memory", c.admission.min_available_memory, "a percentage or a size",
         parse_memory_floor);
    read_size(a, "estimate_per_sandbox", c.admission.estimate_per_sandbox);
  });
}

void read_idle(Section& s, IdleConfig& c) {
  read_duration(s, "threshold", c.threshold, milliseconds(1));
  read_duration(s, "check_interval", c.check_interval, milliseconds(1));
  read_bool(s, "websockets_count_as_activity", c.websockets_count_as_activity);
  read_duration(s, "keepalive_max", c.keepalive_max);
  read_duration(s, "stop_timeout", c.stop_timeout);
}

void read_pressure(Section& s, PressureConfig& c) {
  Reader& r = s.reader();
  read_bool(s, "enabled", c.enabled);
  read_duration(s, "check_interval", c.check_interval, milliseconds(1));
  read_u32(s, "max_stops_per_tick", c.max_stops_per_tick, 1);
  std::optional<std::vector<PressureBand>> bands;
  read_items(s, "bands", [&](Section& item, std::size_t) {
    PressureBand b;
    bool has_below = read(item, "below", b.below, "a percentage like 10%", parse_percent);
    bool has_idle = false;
    if (auto v = item.take("stop_idle_for")) {
      has_idle = read_value(r, *v, b.stop_idle_for, "a duration like 30s", parse_duration);
    }
    if (!item.exists()) return;
    for (auto [key, ok] : {std::pair{"below", has_below}, std::pair{"stop_idle_for", has_idle}}) {
      std::string path = join_path(item.path(), key);
      if (!ok && !r.failed(path)) r.error(item.pos(), path, "required but missing");
    }
    if (!bands) bands.emplace();
    bands->push_back(b);
  });
  if (bands) {
    c.bands = std::move(*bands);
  } else if (auto v = s.take("bands", false); v) {
    // Written, but as an empty list: no bands at all.
    if (v->node->kind != YamlNode::Kind::mapping && v->node->kind != YamlNode::Kind::scalar) {
      c.bands.clear();
    }
  }
}

// --- tasks, exec, files, store, metrics -------------------------------------------------

void read_agent(Section& s, AgentConfig& c) {
  read_string(s, "model", c.model);
  read_list(s, "extra_args", c.extra_args, "a string", plain_string);
}

void read_tasks(Section& s, TasksConfig& c) {
  read_enum(s, "default_agent", c.default_agent, kAgents, "agent");
  read_duration(s, "timeout", c.timeout, std::chrono::seconds(1), std::chrono::hours(24));
  read_u32(s, "max_queued", c.max_queued, 0, 100);
  read_duration(s, "cancel_grace", c.cancel_grace);
  read_size(s, "max_output", c.max_output);
  read_duration(s, "event_retention", c.event_retention);
  read_section(s, "agents", [&](Section& a) {
    read_section(a, "opencode", [&](Section& o) { read_agent(o, c.agents.opencode); });
    read_section(a, "claude-code", [&](Section& o) { read_agent(o, c.agents.claude_code); });
  });
}

void read_exec(Section& s, ExecConfig& c) {
  read_duration(s, "timeout", c.timeout, milliseconds(1));
  read_duration(s, "max_timeout", c.max_timeout, milliseconds(1));
  read_size(s, "max_output", c.max_output);
}

ValueResult<std::string> parse_file_name(std::string_view t) {
  if (t.empty() || t == "." || t == ".." || t.find('/') != std::string_view::npos) {
    return ValueError{"expected a file name like node_modules, got " + quote(t), ""};
  }
  return std::string(t);
}

void read_files(Section& s, FilesConfig& c) {
  read_size(s, "read_max", c.read_max, kGiB);
  read_size(s, "write_max", c.write_max, 4 * kGiB);
  read_u32(s, "list_max_entries", c.list_max_entries, 1);
  read_u32(s, "list_max_depth", c.list_max_depth, 1);
  read_list(s, "list_skip", c.list_skip, "a file name", parse_file_name);
  read_list(s, "export_exclude", c.export_exclude, "a pattern", non_empty);
}

void read_store(Section& s, StoreConfig& c) {
  read_u32(s, "read_connections", c.read_connections, 1, 64);
  read_duration(s, "busy_timeout", c.busy_timeout);
  read_duration(s, "activity_flush", c.activity_flush, milliseconds(1));
  read_duration(s, "audit_retention", c.audit_retention);
  read_u32(s, "audit_max_rows", c.audit_max_rows, 1);
}

void read_metrics(Section& s, MetricsConfig& c) {
  read_bool(s, "enabled", c.enabled);
  read_bool(s, "per_sandbox_labels", c.per_sandbox_labels);
  read_u32(s, "per_sandbox_limit", c.per_sandbox_limit, 1);
}

}  // namespace

void read_document(Reader& r, const YamlNode* root) {
  Config& c = r.cfg();
  Section top(r, root, root != nullptr ? root->pos : Pos{1, 1}, "");
  read(top, "data_dir", c.data_dir, "an absolute path", absolute_path);
  read_section(top, "log", [&](Section& s) { read_log(s, c.log); });
  read_section(top, "control", [&](Section& s) { read_control(s, c.control); });
  read_section(top, "auth", [&](Section& s) { read_auth(s, c.auth); });
  read_section(top, "preview", [&](Section& s) { read_preview(s, c.preview); });
  read_section(top, "edge", [&](Section& s) { read_edge(s, c.edge); });
  read_section(top, "tls", [&](Section& s) { read_tls(s, c.tls); });
  read_section(top, "acme", [&](Section& s) { read_acme(s, c.acme); });
  read_section(top, "docker", [&](Section& s) {
    read(s, "socket", c.docker.socket, "a unix:// URL", parse_docker_socket);
    read(s, "image", c.docker.image, "an image name", non_empty);
    read(s, "network", c.docker.network, "a network name", parse_docker_name);
    read_string(s, "runtime", c.docker.runtime);
    read_duration(s, "stop_timeout", c.docker.stop_timeout);
  });
  read_section(top, "sandbox", [&](Section& s) { read_sandbox(s, c.sandbox); });
  read_section(top, "wake", [&](Section& s) { read_wake(s, c.wake); });
  read_section(top, "idle", [&](Section& s) { read_idle(s, c.idle); });
  read_section(top, "pressure", [&](Section& s) { read_pressure(s, c.pressure); });
  read_section(top, "tasks", [&](Section& s) { read_tasks(s, c.tasks); });
  read_section(top, "exec", [&](Section& s) { read_exec(s, c.exec); });
  read_section(top, "files", [&](Section& s) { read_files(s, c.files); });
  read_section(top, "store", [&](Section& s) { read_store(s, c.store); });
  read_section(top, "metrics", [&](Section& s) { read_metrics(s, c.metrics); });
  top.finish();
}

}  // namespace sandboxd::config::detail
