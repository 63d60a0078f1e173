#include "config/legacy_env.h"

#include "config/config.h"
#include "config/values.h"
#include "text.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <string_view>
#include <tuple>

extern char** environ;

namespace sandboxd::config {

namespace {

// ---------------------------------------------------------------------------- the fragment

// A YAML mapping built key by key ("idle.threshold"), rendered nested, sections in the
// order they were first used.
class Fragment {
 public:
  using Item = std::vector<std::pair<std::string, std::string>>;  // key, rendered scalar

  void scalar(std::string_view path, std::string rendered) { node(path).scalar = std::move(rendered); }
  void list(std::string_view path, std::vector<Item> items) { node(path).items = std::move(items); }
  void comment(std::string line) { comments_.push_back(std::move(line)); }

  std::string render() const {
    std::string out;
    for (const auto& c : comments_) out += "# " + c + "\n";
    for (const auto& child : root_.children) render(child, 0, out);
    return out;
  }

 private:
  struct Node {
    std::string name;
    std::optional<std::string> scalar;
    std::vector<Item> items;
    std::vector<Node> children;
  };

  Node& node(std::string_view path) {
    Node* at = &root_;
    while (!path.empty()) {
      const auto dot = path.find('.');
      const std::string_view name = path.substr(0, dot);
      path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
      auto it = std::find_if(at->children.begin(), at->children.end(),
                             [&](const Node& n) { return n.name == name; });
      if (it == at->children.end()) {
        at->children.push_back(Node{std::string(name), std::nullopt, {}, {}});
        it = std::prev(at->children.end());
      }
      at = &*it;
    }
    return *at;
  }

  static void render(const Node& n, std::size_t indent, std::string& out) {
    const std::string pad(indent, ' ');
    if (n.scalar) {
      out += pad + n.name + ": " + *n.scalar + "\n";
      return;
    }
    out += pad + n.name + ":\n";
    for (const Item& item : n.items) {
      for (std::size_t i = 0; i < item.size(); ++i) {
        out += pad + (i == 0 ? "  - " : "    ") + item[i].first + ": " + item[i].second + "\n";
      }
    }
    for (const auto& child : n.children) render(child, indent + 2, out);
  }

  Node root_;
  std::vector<std::string> comments_;
};

// ---------------------------------------------------------------------------- values

// A whole number in [lo, hi], through the config's own integer parser.
std::optional<std::uint64_t> whole(std::string_view s, std::uint64_t lo, std::uint64_t hi) {
  auto v = parse_integer(s, lo, hi);
  if (!v) return std::nullopt;
  return *v;
}

// The original's booleans were loose ("1", "yes"); sandboxd.yaml's are true or false.
std::optional<bool> truth(std::string_view s) {
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "0" || lower == "false" || lower == "no" || lower == "off" || lower.empty()) return false;
  return std::nullopt;
}

std::string seconds_text(std::uint64_t seconds) {
  return format_duration(std::chrono::seconds(static_cast<std::int64_t>(seconds)));
}

// "a=b,c=d" as (a, b), (c, d); nullopt when an entry has no '=' or an empty side.
std::optional<std::vector<std::pair<std::string, std::string>>> pairs(std::string_view s) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    const std::string_view entry = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == entry.size()) return std::nullopt;
    out.emplace_back(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// ---------------------------------------------------------------------------- the table

struct Convert {
  const EnvVars& env;
  Fragment& out;
  std::vector<std::string>& problems;

  const std::string* get(std::string_view name) const {
    for (const auto& [k, v] : env) {
      if (k == name) return &v;
    }
    return nullptr;
  }
  void bad(std::string_view name, std::string_view why) {
    problems.push_back(std::string(name) + ": " + std::string(why) + "; left out");
  }
  // A whole number of seconds ≥ `lo` as a duration at `key`.
  void seconds(std::string_view name, std::string_view key, std::uint64_t lo = 0) {
    const std::string* v = get(name);
    if (!v) return;
    if (auto n = whole(*v, lo, 100ULL * 365 * 24 * 3600)) {
      out.scalar(key, seconds_text(*n));
    } else {
      bad(name, "not a whole number of seconds");
    }
  }
  // A port (1-65535) at `key`, rendered by `render`.
  void port(std::string_view name, std::string_view key,
            const std::function<std::string(std::uint64_t)>& render) {
    const std::string* v = get(name);
    if (!v) return;
    if (auto p = whole(*v, 1, 65535)) {
      out.scalar(key, render(*p));
    } else {
      bad(name, "not a port (1-65535)");
    }
  }
  void text(std::string_view name, std::string_view key) {
    if (const std::string* v = get(name)) out.scalar(key, detail::yaml_quote(*v));
  }
};

struct Legacy {
  std::string_view name;         // a trailing '*' names a family
  std::string_view replacement;  // "" when there is none
  std::string_view why;          // why there is none
};

constexpr std::string_view kNoTraefik = "there is no Traefik, and activity comes from the edge";
constexpr std::string_view kEmbedded = "migrations are embedded and the database path is fixed";
constexpr std::string_view kNotInRelease = "not part of this release";
constexpr std::string_view kRuntimedFixed = "the runtimed paths are fixed (SPEC §6.2)";

constexpr Legacy kLegacy[] = {
    {"PREVIEW_DOMAIN", "preview.domain", ""},
    {"HTTP_PORT", "edge.http.listen", ""},
    {"HTTPS_PORT", "edge.https.listen", ""},
    {"PREVIEW_TLS", "tls.mode (files or acme; TLS is built in)", ""},
    {"SANDBOXD_DATA_DIR", "data_dir", ""},
    {"SANDBOXED_DATA_DIR", "data_dir", ""},
    {"SANDBOXD_API_BIND", "control.listen", ""},
    {"SANDBOXED_API_BIND", "control.listen", ""},
    {"SANDBOXD_ADDR", "control.listen", ""},
    {"SANDBOXD_API_AUTH_DISABLED", "auth.required: false (loopback control.listen only)", ""},
    {"SANDBOXD_API_TOKENS", "auth.tokens", ""},
    {"SANDBOXD_PREVIEW_TOKEN_SECRETS", "auth.preview.secrets", ""},
    {"SANDBOXD_AUTH_REDIRECT_URL", "auth.preview.redirect_url", ""},
    {"SANDBOXD_IDLE_THRESHOLD_SECONDS", "idle.threshold", ""},
    {"SANDBOXD_IDLE_REAP_INTERVAL_SECONDS", "idle.check_interval", ""},
    {"SANDBOXD_KEEPALIVE_MAX_SECONDS", "idle.keepalive_max", ""},
    {"SANDBOXD_PRESSURE_INTERVAL_SECONDS", "pressure.check_interval / pressure.enabled", ""},
    {"SANDBOXD_MEM_HEADROOM_PCT", "pressure.bands[0].below", ""},
    {"SANDBOXD_MEM_REFUSE_WAKES_PCT", "pressure.bands[1].below and wake.admission.min_available_memory", ""},
    {"SANDBOXD_MEM_EMERGENCY_PCT", "pressure.bands[2].below", ""},
    {"SANDBOXD_WAKE_COST_MB", "wake.admission.estimate_per_sandbox", ""},
    {"SANDBOXD_WAKE_TCP_READY_TIMEOUT_SECONDS", "wake.timeout", ""},
    {"SANDBOXD_IMAGE", "docker.image", ""},
    {"SANDBOXD_NETWORK", "docker.network", ""},
    {"RUNTIMED_DEV_CMD", "sandbox.dev_command (or a sandbox's dev settings)", ""},
    {"RUNTIMED_PREVIEW_PORT", "sandbox.dev_port (or a sandbox's dev settings)", ""},
    {"RUNTIMED_APP_DIR", "sandbox.project_dir", ""},
    {"SANDBOXD_DEBUG", "log.level: debug", ""},
    {"SANDBOXD_LOG_DIR", "log.access_log", ""},
    {"SANDBOXD_ACCESS_LOG", "log.access_log", ""},
    {"SANDBOXD_ENV_FILE", "", "SIGHUP re-reads sandboxd.yaml"},
    {"PREVIEW_ENTRYPOINT", "", kNoTraefik},
    {"SANDBOXD_FORWARD_AUTH_DENY_MODE", "", kNoTraefik},
    {"SANDBOXD_TAILER_OFFSET", "", kNoTraefik},
    {"SANDBOXD_POLLER_*", "", kNoTraefik},
    {"SANDBOXD_MIGRATIONS", "", kEmbedded},
    {"SANDBOXD_DB", "", kEmbedded},
    {"SANDBOXD_WAKE_GRACE_SECONDS", "", "a held request waits until the port answers, up to wake.timeout"},
    {"SANDBOXD_SET_MEMORY_HIGH", "", "memory is a hard limit (sandbox.memory)"},
    {"SANDBOXD_USERNS", "", "user namespaces are the Docker daemon's userns-remap"},
    {"SANDBOXD_SNAPSHOT_*", "", kNotInRelease},
    {"SANDBOXD_TEMPLATES_DIR", "", "templates live at <data_dir>/templates/<name>/"},
    {"SANDBOXD_LIBRARY_DIR", "", "templates live at <data_dir>/templates/<name>/"},
    {"SANDBOXD_GIT_TOKEN_PATH", "", kNotInRelease},
    {"SANDBOXD_LLM_TXT_PATH", "", kNotInRelease},
    {"RUNTIMED_SOCKET", "", kRuntimedFixed},
    {"RUNTIMED_DIR", "", kRuntimedFixed},
    {"RUNTIMED_PROBE_INTERVAL_SECONDS", "", kRuntimedFixed},
};

bool matches(std::string_view pattern, std::string_view name) {
  if (pattern.ends_with('*')) return name.starts_with(pattern.substr(0, pattern.size() - 1));
  return name == pattern;
}

// The set variables `pattern` names, in the environment's order.
std::vector<std::string_view> set_names(const EnvVars& env, std::string_view pattern) {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : env) {
    if (matches(pattern, k)) out.push_back(k);
  }
  return out;
}

void convert(Convert& c) {
  c.text("PREVIEW_DOMAIN", "preview.domain");
  auto listen = [](std::uint64_t p) { return detail::yaml_quote(":" + std::to_string(p)); };
  c.port("HTTP_PORT", "edge.http.listen", listen);
  c.port("HTTPS_PORT", "edge.https.listen", listen);
  if (const std::string* v = c.get("PREVIEW_TLS")) {
    if (auto on = truth(*v); !on) {
      c.bad("PREVIEW_TLS", "neither true nor false");
    } else if (*on) {
      c.out.scalar("tls.mode", "acme  # or files, with tls.files.cert and tls.files.key");
    }
  }
  c.text(c.get("SANDBOXD_DATA_DIR") ? "SANDBOXD_DATA_DIR" : "SANDBOXED_DATA_DIR", "data_dir");
  for (const char* name : {"SANDBOXD_ADDR", "SANDBOXED_API_BIND", "SANDBOXD_API_BIND"}) {
    c.text(name, "control.listen");  // the last one set wins: SANDBOXD_API_BIND first
  }
  if (const std::string* v = c.get("SANDBOXD_API_AUTH_DISABLED")) {
    if (auto off = truth(*v); !off) {
      c.bad("SANDBOXD_API_AUTH_DISABLED", "neither true nor false");
    } else if (*off) {
      c.out.scalar("auth.required", "false  # only with a loopback control.listen");
    }
  }
  for (auto [name, key, id] : {std::tuple{"SANDBOXD_API_TOKENS", "auth.tokens", "name"},
                               std::tuple{"SANDBOXD_PREVIEW_TOKEN_SECRETS", "auth.preview.secrets", "kid"}}) {
    const std::string* v = c.get(name);
    if (!v) continue;
    auto list = pairs(*v);
    if (!list) {
      c.bad(name, "not a comma-separated list of name=secret");
      continue;
    }
    std::vector<Fragment::Item> items;
    for (const auto& [n, secret] : *list) items.push_back({{id, detail::yaml_quote(n)}, {"secret", detail::yaml_quote(secret)}});
    c.out.list(key, std::move(items));
  }
  c.text("SANDBOXD_AUTH_REDIRECT_URL", "auth.preview.redirect_url");
  c.seconds("SANDBOXD_IDLE_THRESHOLD_SECONDS", "idle.threshold", 1);
  c.seconds("SANDBOXD_IDLE_REAP_INTERVAL_SECONDS", "idle.check_interval", 1);
  c.seconds("SANDBOXD_KEEPALIVE_MAX_SECONDS", "idle.keepalive_max", 1);
  if (const std::string* v = c.get("SANDBOXD_PRESSURE_INTERVAL_SECONDS")) {
    // ≤ 0 turned the pressure loop off.
    const bool negative = v->starts_with('-');
    auto n = whole(negative ? std::string_view(*v).substr(1) : std::string_view(*v), 0, 1'000'000'000);
    if (!n) {
      c.bad("SANDBOXD_PRESSURE_INTERVAL_SECONDS", "not a whole number of seconds");
    } else if (negative || *n == 0) {
      c.out.scalar("pressure.enabled", "false");
    } else {
      c.out.scalar("pressure.check_interval", seconds_text(*n));
    }
  }
  // The three bands are written whole (a list replaces the default list), with the
  // defaults' stop_idle_for.
  const char* band_vars[] = {"SANDBOXD_MEM_HEADROOM_PCT", "SANDBOXD_MEM_REFUSE_WAKES_PCT",
                             "SANDBOXD_MEM_EMERGENCY_PCT"};
  std::vector<PressureBand> bands = PressureConfig{}.bands;
  bool any_band = false;
  bool bands_ok = true;
  for (std::size_t i = 0; i < bands.size() && i < std::size(band_vars); ++i) {
    const std::string* v = c.get(band_vars[i]);
    if (!v) continue;
    if (auto p = parse_number(*v, 0, 100)) {
      bands[i].below = *p;
      any_band = true;
    } else {
      c.bad(band_vars[i], "not a percentage (0-100)");
      bands_ok = false;
    }
  }
  if (any_band && bands_ok) {
    std::vector<Fragment::Item> items;
    for (const auto& b : bands) {
      items.push_back({{"below", format_percent(b.below)}, {"stop_idle_for", format_duration(b.stop_idle_for)}});
    }
    c.out.list("pressure.bands", std::move(items));
    if (c.get(band_vars[1])) c.out.scalar("wake.admission.min_available_memory", format_percent(bands[1].below));
  }
  if (const std::string* v = c.get("SANDBOXD_WAKE_COST_MB")) {
    if (auto mb = whole(*v, 1, 1'000'000)) {
      c.out.scalar("wake.admission.estimate_per_sandbox", format_size(*mb * kMiB));
    } else {
      c.bad("SANDBOXD_WAKE_COST_MB", "not a whole number of MB");
    }
  }
  c.seconds("SANDBOXD_WAKE_TCP_READY_TIMEOUT_SECONDS", "wake.timeout", 1);
  c.text("SANDBOXD_IMAGE", "docker.image");
  c.text("SANDBOXD_NETWORK", "docker.network");
  c.text("RUNTIMED_DEV_CMD", "sandbox.dev_command");
  c.port("RUNTIMED_PREVIEW_PORT", "sandbox.dev_port", [](std::uint64_t p) { return std::to_string(p); });
  c.text("RUNTIMED_APP_DIR", "sandbox.project_dir");
  if (const std::string* v = c.get("SANDBOXD_DEBUG")) {
    if (auto on = truth(*v); !on) {
      c.bad("SANDBOXD_DEBUG", "neither true nor false");
    } else if (*on) {
      c.out.scalar("log.level", "debug");
    }
  }
  if (const std::string* v = c.get("SANDBOXD_ACCESS_LOG")) {
    c.out.scalar("log.access_log", detail::yaml_quote(*v));
  } else if (const std::string* dir = c.get("SANDBOXD_LOG_DIR")) {
    c.out.scalar("log.access_log", detail::yaml_quote(*dir + "/access.log"));
  }
}

}  // namespace

EnvVars process_env_vars() {
  EnvVars out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace_back(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return out;
}

std::vector<std::string> legacy_env_warnings(const EnvVars& env) {
  std::vector<std::string> out;
  for (const Legacy& l : kLegacy) {
    for (std::string_view name : set_names(env, l.name)) {
      if (!l.replacement.empty()) {
        out.push_back(std::string(name) + " is not read; use " + std::string(l.replacement) +
                      " in sandboxd.yaml (sandboxd config from-env prints it)");
      } else {
        out.push_back(std::string(name) + " is not read and has no replacement: " + std::string(l.why));
      }
    }
  }
  return out;
}

FromEnv yaml_from_env(const EnvVars& env) {
  FromEnv result;
  Fragment fragment;
  for (const Legacy& l : kLegacy) {
    for (std::string_view name : set_names(env, l.name)) {
      result.any = true;
      fragment.comment(l.replacement.empty()
                           ? std::string(name) + ": no replacement; " + std::string(l.why)
                           : std::string(name) + " → " + std::string(l.replacement));
    }
  }
  Convert c{env, fragment, result.problems};
  convert(c);
  result.yaml = fragment.render();
  return result;
}

}  // namespace sandboxd::config
