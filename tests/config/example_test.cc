// The shipped example and the printed config stay complete: both must name every key the
// parser accepts, the example must validate as is, and --print must never show a secret.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "config/load.h"
#include "config/print.h"

namespace sandboxd::config {
namespace {

using namespace std::chrono_literals;

const std::string kExample = std::string(SANDBOXD_SOURCE_DIR) + "/config/sandboxd.example.yaml";

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The example's convention: "#" in the first column followed directly by a key, or by the
// indentation of one, is a disabled setting. Everything else stays a comment.
bool is_commented_setting(const std::string& line) {
  if (line.size() < 2 || line[0] != '#') return false;
  if (line[1] != ' ') return line[1] != '\t';
  std::size_t i = 1;
  while (i < line.size() && line[i] == ' ') ++i;
  return i >= 3 && i < line.size();
}

std::string enable_commented_settings(const std::string& text) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    out += is_commented_setting(line) ? line.substr(1) : line;
    out += "\n";
  }
  return out;
}

// The key paths written in a YAML text, in known_key_paths() notation. Free-form leaves
// (sandbox.env) are not descended into.
void collect(const YAML::Node& node, const std::string& path, const std::set<std::string>& leaves,
             std::set<std::string>& out) {
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    std::string p = path.empty() ? key : path + "." + key;
    const YAML::Node& v = kv.second;
    if (leaves.count(p) > 0) {
      out.insert(p);
    } else if (v.IsMap()) {
      collect(v, p, leaves, out);
    } else if (v.IsSequence() && v.size() > 0 && v[0].IsMap()) {
      for (const auto& item : v) collect(item, p + "[]", leaves, out);
    } else {
      out.insert(p);  // not a known leaf: reported by the caller
    }
  }
}

std::set<std::string> key_paths_of(const std::string& yaml) {
  std::vector<std::string> known = known_key_paths();
  std::set<std::string> leaves(known.begin(), known.end());
  std::set<std::string> out;
  collect(YAML::Load(yaml), "", leaves, out);
  return out;
}

void expect_same_keys(const std::set<std::string>& got, const std::string& what) {
  std::vector<std::string> known = known_key_paths();
  std::set<std::string> want(known.begin(), known.end());
  for (const auto& k : want) EXPECT_EQ(got.count(k), 1u) << what << " does not mention " << k;
  for (const auto& k : got) EXPECT_EQ(want.count(k), 1u) << what << " has unknown key " << k;
}

// `explicit_` records where a value came from, not what it is.
Config without_origin(Config c) {
  c.control.listen.explicit_ = false;
  c.edge.http.listen.explicit_ = false;
  c.edge.https.listen.explicit_ = false;
  if (c.acme.dns.rfc2136.nameserver) c.acme.dns.rfc2136.nameserver->explicit_ = false;
  for (auto& ns : c.acme.dns.propagation.nameservers) ns.explicit_ = false;
  return c;
}

TEST(ConfigExample, ValidatesAndSetsOnlyDefaults) {
  LoadResult r = load_config_file(kExample, env_of({}));
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].str());
  EXPECT_TRUE(r.warnings.empty()) << r.warnings[0].str();
  EXPECT_EQ(without_origin(*r.config), default_config());
}

TEST(ConfigExample, NamesEveryKey) {
  expect_same_keys(key_paths_of(enable_commented_settings(read_file(kExample))), "the example");
}

TEST(ConfigExample, EnabledSettingsAreValidToo) {
  // With the commented settings enabled and their variables set, only the pairs that the
  // example deliberately leaves half-filled (eab, tsig) are reported.
  std::map<std::string, std::string> vars{{"SANDBOXD_TOKEN_CI", "0123456789abcdef0123"}, {"SANDBOXD_TOKEN_ACME", "0123456789abcdef0124"},
                                          {"SANDBOXD_PREVIEW_KEY_K1", std::string(40, 'k')},
                                          {"SANDBOXD_ACME_EAB_HMAC", "aGVsbG8td29ybGQ"},
                                          {"SANDBOXD_TSIG_SECRET", "c2VjcmV0"},
                                          {"CLOUDFLARE_API_TOKEN", "cf-token"},
                                          {"SANDBOXD_HTTPREQ_PASSWORD", "pw"}};
  LoadResult r =
      parse_config(enable_commented_settings(read_file(kExample)), "example", env_of(vars));
  std::vector<std::string> keys;
  for (const auto& d : r.errors) keys.push_back(d.key_path + ": " + d.message);
  EXPECT_EQ(keys,
            (std::vector<std::string>{
                "acme.eab.kid: required when acme.eab.hmac is set",
                "acme.dns.rfc2136.tsig_name: required when acme.dns.rfc2136.tsig_secret is set",
            }));
}

TEST(ConfigPrint, DefaultsReadBack) {
  std::string yaml = effective_yaml(default_config());
  LoadResult r = parse_config(yaml, "printed", env_of({}));
  ASSERT_TRUE(r.ok()) << r.errors[0].str() << "\n" << yaml;
  EXPECT_EQ(without_origin(*r.config), default_config());
}

const char* kRich =
    "data_dir: /srv/sbx\n"
    "log: {level: warn, format: json, access_log: /var/log/sandboxd/access.log}\n"
    "control: {listen: \"[::1]:9999\", public_host: api.example.com, max_json_body: 3MB}\n"
    "auth:\n"
    "  required: true\n"
    "  tokens:\n"
    "    - {name: ci, secret: TOKEN-SECRET-0123456789, read_only: true}\n"
    "  preview:\n"
    "    secrets: [{kid: k1, secret: PREVIEW-SECRET-0123456789-0123456789}]\n"
    "    cookie_ttl: 90m\n"
    "    redirect_url: \"https://login.example.com/?s={sandbox_id}&r={return}\"\n"
    "preview: {domain: example.com, suffix: p.example.com, allowed_ports: [3000, 8000-8100],\n"
    "          undeclared_ports: allow}\n"
    "edge:\n"
    "  http: {listen: \":8080\"}\n"
    "  https: {listen: \"0.0.0.0:8443\"}\n"
    "  redirect_http: false\n"
    "  workers: 3\n"
    "  limits: {max_header_bytes: 1500, max_request_body: 1GB, max_connections: 7}\n"
    "  timeouts: {websocket_idle: 2h, upstream_response_header: 90s}\n"
    "  upstream: {idle_timeout: 1500ms, max_idle_per_backend: 0}\n"
    "  trusted_proxies: [10.0.0.0/8, \"fd00::/8\"]\n"
    "  forwarded_header: true\n"
    "  hsts_max_age: 365d\n"
    "tls: {mode: acme, min_version: \"1.3\"}\n"
    "acme:\n"
    "  directory_url: https://127.0.0.1:14000/dir\n"
    "  email: ${EMAIL}\n"
    "  ca_bundle: /dev/null\n"
    "  eab: {kid: kid-1, hmac: EAB-HMAC-SECRET}\n"
    "  key_type: rsa4096\n"
    "  profile: shortlived\n"
    "  renew_ratio: 0.75\n"
    "  dns:\n"
    "    provider: rfc2136\n"
    "    propagation: {delay: 2s, timeout: 1m, check: \"off\", nameservers: [\"[::1]:5353\"]}\n"
    "    rfc2136: {nameserver: \"127.0.0.1:53\", tsig_name: k., tsig_secret: VFNJRy1TRUNSRVQ=,\n"
    "              tsig_algorithm: hmac-sha512}\n"
    "    cloudflare: {api_token: CF-API-TOKEN-SECRET, zone_id: z1}\n"
    "    exec: {command: /bin/true}\n"
    "    httpreq: {url: https://hook.example.com, username: u, password: HTTPREQ-PASSWORD}\n"
    "docker: {socket: \"unix:///run/docker.sock\", image: img:1, network: net1, runtime: runsc,\n"
    "         stop_timeout: 3s}\n"
    "sandbox:\n"
    "  user: \"2000:3000\"\n"
    "  memory: 4GiB\n"
    "  pids: 77\n"
    "  nofile: 1024\n"
    "  cpus: 2.5\n"
    "  tmpfs_size: 1GiB\n"
    "  skeleton: /srv/skel\n"
    "  env: {A: \"1\", B: \"${ENV_B}\"}\n"
    "  env_passthrough: [\"LC_*\"]\n"
    "  env_blocklist: [\"AWS_*\"]\n"
    "  project_dir: code/app\n"
    "  dev_command: npm run dev\n"
    "  dev_port: 5173\n"
    "wake: {timeout: 30s, probe_interval: 10ms, max_concurrent: 2,\n"
    "       admission: {min_available_memory: 2.5%, estimate_per_sandbox: 1GiB}}\n"
    "idle: {threshold: 1h, check_interval: 1m, websockets_count_as_activity: false,\n"
    "       keepalive_max: 2h, stop_timeout: 5s}\n"
    "pressure: {enabled: false, check_interval: 5s, max_stops_per_tick: 2,\n"
    "           bands: [{below: 20%, stop_idle_for: 10m}, {below: 2.5%, stop_idle_for: 0s}]}\n"
    "tasks:\n"
    "  default_agent: command\n"
    "  timeout: 3h\n"
    "  max_queued: 0\n"
    "  cancel_grace: 1s\n"
    "  max_output: 1MiB\n"
    "  event_retention: 7d\n"
    "  agents:\n"
    "    opencode: {model: m1, extra_args: [\"--a\", \"b c\"]}\n"
    "    claude-code: {model: m2, extra_args: []}\n"
    "exec: {timeout: 1m, max_timeout: 1h, max_output: 2MiB}\n"
    "files: {read_max: 1GiB, write_max: 4GiB, list_max_entries: 5, list_max_depth: 2,\n"
    "        list_skip: [dist], export_exclude: [\"*.log\"]}\n"
    "store: {read_connections: 64, busy_timeout: 1s, activity_flush: 1s, audit_retention: 1d,\n"
    "        audit_max_rows: 5000}\n"
    "metrics: {enabled: false, per_sandbox_labels: true, per_sandbox_limit: 10}\n";

const std::map<std::string, std::string> kRichEnv{{"EMAIL", "ENV-EMAIL@example.com"},
                                                  {"ENV_B", "ENV-B-VALUE"}};

TEST(ConfigPrint, RichConfigLoads) {
  LoadResult r = parse_config(kRich, "rich", env_of(kRichEnv));
  ASSERT_TRUE(r.ok()) << r.errors[0].str();
  EXPECT_EQ(r.config->interpolated, (std::set<std::string>{"acme.email", "sandbox.env.B"}));
  EXPECT_EQ(r.config->edge.hsts_max_age, 365 * 24h);
}

TEST(ConfigPrint, NamesEveryKey) {
  LoadResult r = parse_config(kRich, "rich", env_of(kRichEnv));
  ASSERT_TRUE(r.ok());
  expect_same_keys(key_paths_of(effective_yaml(*r.config)), "effective_yaml");
}

TEST(ConfigPrint, NeverShowsSecrets) {
  LoadResult r = parse_config(kRich, "rich", env_of(kRichEnv));
  ASSERT_TRUE(r.ok());
  std::string printed = effective_yaml(*r.config) + summary(*r.config, r);
  for (std::string secret :
       {"TOKEN-SECRET", "PREVIEW-SECRET", "EAB-HMAC-SECRET", "VFNJRy1TRUNSRVQ",
        "CF-API-TOKEN-SECRET", "HTTPREQ-PASSWORD", "ENV-EMAIL", "ENV-B-VALUE"}) {
    EXPECT_EQ(printed.find(secret), std::string::npos) << secret << " in\n" << printed;
  }
  EXPECT_NE(printed.find("      secret: <redacted>\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("  email: <redacted>\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("    B: <redacted>\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("    A: \"1\"\n"), std::string::npos) << printed;
}

TEST(ConfigPrint, NonSecretValuesReadBack) {
  // Without secrets (which print redacted), the printed config is the same config.
  std::string yaml = kRich;
  for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"${EMAIL}", "ops@example.com"}, {"${ENV_B}", "b"}}) {
    yaml.replace(yaml.find(from), from.size(), to);
  }
  LoadResult first = parse_config(yaml, "rich", env_of({}));
  ASSERT_TRUE(first.ok()) << first.errors[0].str();
  Config c = *first.config;
  c.auth.tokens.clear();
  c.auth.required = AuthRequired::no;
  c.control.listen = HostPort{"127.0.0.1", 9999, true};
  c.control.public_host.clear();
  c.auth.preview.secrets.clear();
  c.acme.eab = EabConfig{};
  c.acme.dns.rfc2136.tsig_name.clear();
  c.acme.dns.rfc2136.tsig_secret = Secret();
  c.acme.dns.cloudflare.api_token = Secret();
  c.acme.dns.httpreq.password = Secret();
  std::string printed = effective_yaml(c);
  LoadResult again = parse_config(printed, "printed", env_of({}));
  ASSERT_TRUE(again.ok()) << again.errors[0].str() << "\n" << printed;
  EXPECT_EQ(without_origin(*again.config), without_origin(c)) << printed;
}

TEST(ConfigPrint, ItemsAreBlockLists) {
  Config c;
  c.auth.tokens.push_back(ApiToken{"ci", Secret("0123456789abcdef"), true});
  std::string yaml = effective_yaml(c);
  EXPECT_NE(yaml.find("auth:\n"
                      "  tokens:\n"
                      "    - name: \"ci\"\n"
                      "      secret: <redacted>\n"
                      "      read_only: true\n"
                      "      user_id: \"\"\n"
                      "  required: auto\n"),
            std::string::npos)
      << yaml;
}

TEST(ConfigSummary, Defaults) {
  LoadResult none;
  EXPECT_EQ(summary(default_config(), none),
            "config file:    none (built-in defaults)\n"
            "edge http:      :80\n"
            "edge https:     off (tls.mode is off)\n"
            "control:        127.0.0.1:9090 (auth not required)\n"
            "preview suffix: preview.localhost (http://s-<id>-<port>.preview.localhost/)\n"
            "tls mode:       off\n"
            "api tokens:     0\n"
            "preview keys:   0\n"
            "warnings:       none\n");
}

TEST(ConfigSummary, WithTlsTokensAndWarnings) {
  LoadResult r = parse_config(
      "control: {listen: \"0.0.0.0:9090\", public_host: api.example.com}\n"
      "preview: {domain: example.com}\n"
      "edge: {https: {listen: \":8443\"}}\n"
      "tls: {mode: acme}\n"
      "acme: {dns: {provider: exec, exec: {command: /usr/bin/hook}}}\n"
      "auth:\n"
      "  tokens:\n"
      "    - {name: ci, secret: 0123456789abcdef}\n"
      "    - {name: ro, secret: 0123456789abcdef-ro, read_only: true}\n"
      "  preview: {secrets: [{kid: a, secret: 0123456789abcdef0123456789abcdef}]}\n",
      "/etc/sandboxd/sandboxd.yaml", env_of({}));
  ASSERT_TRUE(r.ok()) << r.errors[0].str();
  EXPECT_EQ(
      summary(*r.config, r),
      "config file:    /etc/sandboxd/sandboxd.yaml\n"
      "edge http:      :80\n"
      "edge https:     :8443\n"
      "control:        0.0.0.0:9090 (auth required)\n"
      "public host:    api.example.com\n"
      "preview suffix: preview.example.com (https://s-<id>-<port>.preview.example.com:8443/)\n"
      "tls mode:       acme\n"
      "api tokens:     2 (1 read-only)\n"
      "preview keys:   1\n"
      "warnings:       1\n"
      "  /etc/sandboxd/sandboxd.yaml:4:7: acme.email: empty: the CA cannot reach you about "
      "problems with your certificate\n"
      "    hint: set acme.email to an address you read\n");
}

}  // namespace
}  // namespace sandboxd::config
