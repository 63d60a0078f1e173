// Loading and validating whole files: the bad-config table asserts the exact text of every
// diagnostic, so a reworded message is a visible change.
#include "config/load.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

namespace sandboxd::config {
namespace {

using namespace std::chrono_literals;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::vector<std::string> strs(const std::vector<Diagnostic>& ds) {
  std::vector<std::string> out;
  for (const auto& d : ds) out.push_back(d.str());
  return out;
}

LoadResult parse(std::string_view text, std::map<std::string, std::string> vars = {}) {
  return parse_config(text, "sandboxd.yaml", env_of(std::move(vars)));
}

struct BadCase {
  std::string name;
  std::string yaml;
  std::vector<std::string> errors;
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

// MEM and IMAGE are set in the environment of these cases; nothing else is.
const BadCase kBadCases[] = {
    {"misspelled key suggests its sibling",
     "wake:\n"
     "  timout: 5s\n",
     {"sandboxd.yaml:2:3: wake.timout: unknown key (did you mean wake.timeout?)"}},
    {"right key in the wrong section",
     "wake:\n"
     "  timeout: 60s\n"
     "  threshold: 5m\n",
     {"sandboxd.yaml:3:3: wake.threshold: unknown key (did you mean idle.threshold?)"}},
    {"unknown top-level key lists the known ones",
     "bogus: 1\n",
     {"sandboxd.yaml:1:1: bogus: unknown key\n  hint: known keys here: data_dir, log, control, "
      "auth, preview, edge, tls, acme, docker, sandbox, wake, idle, pressure, tasks, exec, files, "
      "store, metrics"}},
    {"enum typo",
     "acme:\n"
     "  dns:\n"
     "    provider: cloudfare\n",
     {"sandboxd.yaml:3:15: acme.dns.provider: unknown provider \"cloudfare\" (did you mean "
      "\"cloudflare\"?)"}},
    {"enum without a close match",
     "log:\n"
     "  format: xml\n",
     {"sandboxd.yaml:2:11: log.format: unknown format \"xml\" (expected one of text, json)"}},
    {"size that is not a size",
     "edge:\n"
     "  limits:\n"
     "    max_header_bytes: lots\n",
     {"sandboxd.yaml:3:23: edge.limits.max_header_bytes: expected a size like 64KiB, got "
      "\"lots\""}},
    {"size with a docker-style unit",
     "sandbox:\n"
     "  memory: 512m\n",
     {"sandboxd.yaml:2:11: sandbox.memory: expected a size like 64KiB, got \"512m\"\n  hint: did "
      "you mean 512MiB?"}},
    {"duration without a unit",
     "idle:\n"
     "  threshold: 30\n",
     {"sandboxd.yaml:2:14: idle.threshold: expected a duration like 30s, got \"30\"\n  hint: did "
      "you mean 30s?"}},
    {"bool spelled yes",
     "metrics:\n"
     "  enabled: yes\n",
     {"sandboxd.yaml:2:12: metrics.enabled: expected true or false, got \"yes\"\n  hint: did you "
      "mean true?"}},
    {"port out of range",
     "control:\n"
     "  listen: 127.0.0.1:70000\n",
     {"sandboxd.yaml:2:11: control.listen: port 70000 is out of range (0-65535)"}},
    {"ipv6 without brackets",
     "control:\n"
     "  listen: \"::1:9090\"\n",
     {"sandboxd.yaml:2:11: control.listen: expected host:port like 127.0.0.1:9090, got "
      "\"::1:9090\"\n  hint: write IPv6 addresses in brackets, like [::1]:9090"}},
    {"section given a scalar",
     "edge: fast\n",
     {"sandboxd.yaml:1:7: edge: expected a mapping of keys, got a scalar"}},
    {"list given a scalar",
     "preview:\n"
     "  allowed_ports: 3000\n",
     {"sandboxd.yaml:2:18: preview.allowed_ports: expected a list, got a scalar"}},
    {"scalar given a list",
     "log:\n"
     "  level: [info]\n",
     {"sandboxd.yaml:2:10: log.level: expected one of debug, info, warn, error, got a list"}},
    {"integer out of range",
     "store:\n"
     "  read_connections: 100\n",
     {"sandboxd.yaml:2:21: store.read_connections: must be between 1 and 64, got 100"}},
    {"duration out of range",
     "tasks:\n"
     "  timeout: 48h\n"
     "  max_queued: 101\n",
     {"sandboxd.yaml:2:12: tasks.timeout: must be between 1s and 24h, got 48h",
      "sandboxd.yaml:3:15: tasks.max_queued: must be at most 100, got 101"}},
    {"number out of range",
     "acme:\n"
     "  renew_ratio: 0.95\n",
     {"sandboxd.yaml:2:16: acme.renew_ratio: must be between 0.5 and 0.9, got 0.95"}},
    {"size above its cap",
     "files:\n"
     "  read_max: 2GiB\n"
     "  write_max: 5GiB\n",
     {"sandboxd.yaml:2:13: files.read_max: must be at most 1GiB, got 2GiB",
      "sandboxd.yaml:3:14: files.write_max: must be at most 4GiB, got 5GiB"}},
    {"allowed ports items",
     "preview:\n"
     "  allowed_ports: [0, 3000, 5000-4000]\n",
     {"sandboxd.yaml:2:19: preview.allowed_ports[0]: port 0 is out of range (1-65535)",
      "sandboxd.yaml:2:28: preview.allowed_ports[2]: range 5000-4000 ends before it starts\n  "
      "hint: did you mean 4000-5000?"}},
    {"token name and secret rules",
     "auth:\n"
     "  tokens:\n"
     "    - name: CI\n"
     "      secret: short\n",
     {"sandboxd.yaml:3:13: auth.tokens[0].name: expected a token name matching "
      "[a-z0-9][a-z0-9_-]{0,63}, got \"CI\"\n  hint: did you mean \"ci\"?",
      "sandboxd.yaml:4:15: auth.tokens[0].secret: must be at least 16 characters, got 5\n  hint: "
      "generate one with: openssl rand -hex 32"}},
    {"token user id with a comma",
     "auth:\n"
     "  tokens:\n"
     "    - name: ci\n"
     "      secret: 0123456789abcdef\n"
     "      user_id: a,b\n",
     {"sandboxd.yaml:5:16: auth.tokens[0].user_id: must not contain a comma"}},
    {"token without a secret",
     "auth:\n"
     "  tokens:\n"
     "    - name: ci\n",
     {"sandboxd.yaml:3:7: auth.tokens[0].secret: required but missing"}},
    {"duplicate token names",
     "auth:\n"
     "  tokens:\n"
     "    - name: ci\n"
     "      secret: 0123456789abcdef\n"
     "    - name: ci\n"
     "      secret: fedcba9876543210\n",
     {"sandboxd.yaml:5:7: auth.tokens[1].name: duplicate token name \"ci\" (also "
      "auth.tokens[0].name)"}},
    {"preview keys: short secret, duplicate kid",
     "auth:\n"
     "  preview:\n"
     "    secrets:\n"
     "      - kid: k1\n"
     "        secret: 0123456789abcdef0123456789abcdef\n"
     "      - kid: k1\n"
     "        secret: tooshort\n",
     {"sandboxd.yaml:6:9: auth.preview.secrets[1].kid: duplicate kid \"k1\" (also "
      "auth.preview.secrets[0].kid)",
      "sandboxd.yaml:7:17: auth.preview.secrets[1].secret: must be at least 32 bytes, got 8\n  "
      "hint: generate one with: openssl rand -hex 32"}},
    {"auth required with no tokens",
     "auth:\n"
     "  required: true\n",
     {"sandboxd.yaml:2:3: auth.tokens: auth.required is true but no tokens are configured\n  hint: "
      "add a token under auth.tokens"}},
    {"auth off on a public listener",
     "control:\n"
     "  listen: \":9090\"\n"
     "auth:\n"
     "  required: false\n",
     {"sandboxd.yaml:4:3: auth.required: auth cannot be turned off when control.listen \":9090\" "
      "is not a loopback address\n  hint: bind to 127.0.0.1 or configure tokens"}},
    {"auto auth on a public listener with no tokens",
     "control:\n"
     "  listen: 0.0.0.0:9090\n",
     {"sandboxd.yaml:2:3: auth.tokens: auth is required because control.listen \"0.0.0.0:9090\" is "
      "not a loopback address, but no tokens are configured\n  hint: add a token under "
      "auth.tokens, or bind control.listen to 127.0.0.1"}},
    {"public host without auth or tls",
     "control:\n"
     "  public_host: api.example.com\n",
     {"sandboxd.yaml:2:3: control.public_host: needs auth tokens: the API always requires a token "
      "through the public host\n  hint: add a token under auth.tokens",
      "sandboxd.yaml:2:3: control.public_host: needs TLS, but tls.mode is off\n  hint: set "
      "tls.mode to files or acme"}},
    {"public host shaped like a preview host",
     "control:\n"
     "  public_host: s-01ARZ3NDEKTSV4RRFFQ69G5FAV-8080.preview.localhost\n"
     "auth:\n"
     "  tokens:\n"
     "    - name: ops\n"
     "      secret: 0123456789abcdef\n",
     {"sandboxd.yaml:2:3: control.public_host: needs TLS, but tls.mode is off\n  hint: set "
      "tls.mode to files or acme",
      "sandboxd.yaml:2:3: control.public_host: "
      "\"s-01arz3ndektsv4rrffq69g5fav-8080.preview.localhost\" has the shape of a preview host "
      "(s-<id>-<port>.preview.localhost)\n  hint: use a name outside that pattern, like "
      "api.localhost"}},
    {"tls files without files",
     "tls:\n"
     "  mode: files\n",
     {"sandboxd.yaml:2:3: tls.files.cert: required when tls.mode is files",
      "sandboxd.yaml:2:3: tls.files.key: required when tls.mode is files"}},
    {"tls files that cannot be read",
     "tls:\n"
     "  mode: files\n"
     "  files:\n"
     "    cert: /nonexistent/fullchain.pem\n"
     "    key: /nonexistent/privkey.pem\n",
     {"sandboxd.yaml:4:5: tls.files.cert: cannot read \"/nonexistent/fullchain.pem\": No such file "
      "or directory",
      "sandboxd.yaml:5:5: tls.files.key: cannot read \"/nonexistent/privkey.pem\": No such file or "
      "directory"}},
    {"acme without a provider",
     "preview:\n"
     "  domain: example.com\n"
     "tls:\n"
     "  mode: acme\n"
     "acme:\n"
     "  email: ops@example.com\n",
     {"sandboxd.yaml:4:3: acme.dns.provider: required when tls.mode is acme\n  hint: one of "
      "rfc2136, cloudflare, exec, httpreq"}},
    {"acme on localhost and a provider without its token",
     "tls:\n"
     "  mode: acme\n"
     "acme:\n"
     "  email: ops@example.com\n"
     "  dns:\n"
     "    provider: cloudflare\n",
     {"sandboxd.yaml:2:3: preview.domain: ACME cannot issue certificates for "
      "\"preview.localhost\"\n  hint: set preview.domain to a DNS name you control, or use "
      "tls.mode: off or files",
      "sandboxd.yaml:6:5: acme.dns.cloudflare.api_token: required when acme.dns.provider is "
      "cloudflare"}},
    {"acme under an ip address",
     "preview:\n"
     "  domain: 203.0.113.5\n"
     "tls:\n"
     "  mode: acme\n"
     "acme:\n"
     "  email: ops@example.com\n"
     "  dns:\n"
     "    provider: exec\n"
     "    exec:\n"
     "      command: /usr/local/bin/dns-hook\n",
     {"sandboxd.yaml:2:3: preview.domain: ACME cannot issue a wildcard certificate under an IP "
      "address\n  hint: set preview.domain to a DNS name you control"}},
    {"rfc2136 without nameserver, tsig half set",
     "preview:\n"
     "  domain: example.com\n"
     "tls:\n"
     "  mode: acme\n"
     "acme:\n"
     "  email: ops@example.com\n"
     "  dns:\n"
     "    provider: rfc2136\n"
     "    rfc2136:\n"
     "      tsig_name: sandboxd.\n",
     {"sandboxd.yaml:8:5: acme.dns.rfc2136.nameserver: required when acme.dns.provider is rfc2136",
      "sandboxd.yaml:10:7: acme.dns.rfc2136.tsig_secret: required when acme.dns.rfc2136.tsig_name "
      "is set\n  hint: set both or neither"}},
    {"two listeners on one address",
     "edge:\n"
     "  http:\n"
     "    listen: 127.0.0.1:9090\n",
     {"sandboxd.yaml:3:5: edge.http.listen: \"127.0.0.1:9090\" is also the address of "
      "control.listen\n  hint: give each listener its own port"}},
    {"https listener on the http address",
     "edge:\n"
     "  http:\n"
     "    listen: \":8443\"\n"
     "  https:\n"
     "    listen: \":8443\"\n"
     "tls:\n"
     "  mode: files\n"
     "  files:\n"
     "    cert: /nonexistent/c.pem\n"
     "    key: /nonexistent/k.pem\n",
     {"sandboxd.yaml:5:5: edge.https.listen: \":8443\" is also the address of edge.http.listen\n  "
      "hint: give each listener its own port",
      "sandboxd.yaml:9:5: tls.files.cert: cannot read \"/nonexistent/c.pem\": No such file or "
      "directory",
      "sandboxd.yaml:10:5: tls.files.key: cannot read \"/nonexistent/k.pem\": No such file or "
      "directory"}},
    {"pressure bands out of order",
     "pressure:\n"
     "  bands:\n"
     "    - below: 10%\n"
     "      stop_idle_for: 1m\n"
     "    - below: 15%\n"
     "      stop_idle_for: 5m\n",
     {"sandboxd.yaml:5:7: pressure.bands[1].below: must be lower than pressure.bands[0].below "
      "(10%)\n  hint: list bands from the highest below to the lowest",
      "sandboxd.yaml:6:7: pressure.bands[1].stop_idle_for: must not be longer than "
      "pressure.bands[0].stop_idle_for (1m)\n  hint: a lower band is more urgent, so it may stop "
      "sandboxes that were idle for less"}},
    {"pressure band missing a field",
     "pressure:\n"
     "  bands:\n"
     "    - below: 10%\n",
     {"sandboxd.yaml:3:7: pressure.bands[0].stop_idle_for: required but missing"}},
    {"check interval longer than the threshold",
     "idle:\n"
     "  threshold: 10m\n"
     "  check_interval: 1h\n",
     {"sandboxd.yaml:3:3: idle.check_interval: must not be longer than idle.threshold (10m)"}},
    {"root gid",
     "sandbox:\n"
     "  user: \"1000:0\"\n",
     {"sandboxd.yaml:2:9: sandbox.user: gid 0 (root) is not allowed\n  hint: use an unprivileged "
      "user, like \"1000:1000\""}},
    {"relative data_dir",
     "data_dir: var/lib/sandboxd\n",
     {"sandboxd.yaml:1:11: data_dir: must be an absolute path, got \"var/lib/sandboxd\""}},
    {"docker socket over tcp",
     "docker:\n"
     "  socket: tcp://127.0.0.1:2375\n",
     {"sandboxd.yaml:2:11: docker.socket: only unix:// sockets are supported, got "
      "\"tcp://127.0.0.1:2375\""}},
    {"docker socket as a bare path",
     "docker:\n"
     "  socket: /var/run/docker.sock\n",
     {"sandboxd.yaml:2:11: docker.socket: only unix:// sockets are supported, got "
      "\"/var/run/docker.sock\"\n  hint: did you mean \"unix:///var/run/docker.sock\"?"}},
    {"eab kid without hmac",
     "acme:\n"
     "  eab:\n"
     "    kid: kid-1\n",
     {"sandboxd.yaml:3:5: acme.eab.hmac: required when acme.eab.kid is set\n  hint: set both or "
      "neither"}},
    {"duplicate key",
     "log:\n"
     "  level: info\n"
     "  level: debug\n",
     {"sandboxd.yaml:3:3: log.level: duplicate key (first set on line 2)"}},
    {"duplicate section",
     "log:\n"
     "  level: info\n"
     "idle:\n"
     "  threshold: 5m\n"
     "log:\n"
     "  format: json\n",
     {"sandboxd.yaml:5:1: log: duplicate key (first set on line 1)"}},
    {"yaml syntax error",
     "log:\n"
     "  level: [info\n",
     {"sandboxd.yaml:3:1: YAML syntax error: end of sequence flow not found"}},
    {"tab indentation",
     "log:\n"
     "\tlevel: info\n",
     {"sandboxd.yaml:2:7: YAML syntax error: illegal map value"}},
    {"unset environment variable",
     "# API tokens\n"
     "auth:\n"
     "  tokens:\n"
     "  - name: ci\n"
     "    secret: ${SANDBOXD_TOKEN_CI}\n",
     {"sandboxd.yaml:5:13: auth.tokens[0].secret: environment variable SANDBOXD_TOKEN_CI is not "
      "set"}},
    {"malformed interpolation",
     "docker:\n"
     "  image: \"${IMAGE\"\n",
     {"sandboxd.yaml:2:10: docker.image: malformed variable reference: \"${\" without a closing "
      "\"}\"\n  hint: write $${ for a literal ${"}},
    {"enum typo in tls mode",
     "tls:\n"
     "  mode: acem\n",
     {"sandboxd.yaml:2:9: tls.mode: unknown mode \"acem\" (did you mean \"acme\"?)"}},
    {"bad value from the environment is not echoed",
     "sandbox:\n"
     "  memory: ${MEM}\n",
     {"sandboxd.yaml:2:11: sandbox.memory: expected a size like 64KiB, got a value from the "
      "environment"}},
    {"typo inside a list item",
     "auth:\n"
     "  tokens:\n"
     "    - name: ci\n"
     "      secert: 0123456789abcdef\n",
     {"sandboxd.yaml:3:7: auth.tokens[0].secret: required but missing",
      "sandboxd.yaml:4:7: auth.tokens[0].secert: unknown key (did you mean "
      "auth.tokens[0].secret?)"}},
    {"sandbox env names",
     "sandbox:\n"
     "  env:\n"
     "    HOME: /root\n"
     "    1BAD: x\n"
     "    GOOD: ok\n",
     {"sandboxd.yaml:3:5: sandbox.env.HOME: reserved name\n  hint: HOME and names starting with "
      "SANDBOX_ or SANDBOXD_ are set by sandboxd",
      "sandboxd.yaml:4:5: sandbox.env.1BAD: expected a variable name matching "
      "[A-Za-z_][A-Za-z0-9_]*"}},
    {"control character in a value",
     "log:\n"
     "  access_log: \"a\\tb\"\n",
     {"sandboxd.yaml:2:15: log.access_log: must not contain control characters (such as a newline "
      "or tab)"}},
    {"top level is a list",
     "- log\n"
     "- idle\n",
     {"sandboxd.yaml:1:1: the top level must be a mapping of keys, got a list\n  hint: start with "
      "a key such as \"preview:\""}},
    {"key that is not a string",
     "? [a, b]\n"
     ": 1\n",
     {"sandboxd.yaml:1:3: keys must be plain strings, got a list"}},
    {"two documents",
     "log:\n"
     "  level: info\n"
     "---\n"
     "idle:\n"
     "  threshold: 5m\n",
     {"sandboxd.yaml:4:1: only one YAML document is allowed"}},
    {"dotted key",
     "idle.threshold: 5m\n",
     {"sandboxd.yaml:1:1: idle.threshold: unknown key (did you mean idle.threshold?)\n  hint: keys "
      "are nested: write \"idle:\" and the rest indented under it"}},
    {"host name with a scheme",
     "preview:\n"
     "  domain: https://example.com\n",
     {"sandboxd.yaml:2:11: preview.domain: expected a host name like example.com, got "
      "\"https://example.com\"\n  hint: give only the host name, without a scheme"}},
    {"plain http url to a public host",
     "acme:\n"
     "  directory_url: http://ca.example.com/dir\n",
     {"sandboxd.yaml:2:18: acme.directory_url: must use https:// unless the host is loopback, got "
      "\"http://ca.example.com/dir\""}},
    {"exec timeout above its maximum",
     "exec:\n"
     "  timeout: 2h\n"
     "  max_timeout: 1h\n",
     {"sandboxd.yaml:2:3: exec.timeout: must not be longer than exec.max_timeout (1h)"}},
    {"redirect url with an unknown placeholder",
     "auth:\n"
     "  preview:\n"
     "    redirect_url: https://login.example.com/?id={id}\n",
     {"sandboxd.yaml:3:19: auth.preview.redirect_url: unknown placeholder \"{id}\" in "
      "\"https://login.example.com/?id={id}\"\n  hint: the placeholders are {sandbox_id} and "
      "{return}"}},
    {"memory floor that is neither percent nor size",
     "wake:\n"
     "  admission:\n"
     "    min_available_memory: 10 percent\n"
     "  probe_interval: 2ms\n",
     {"sandboxd.yaml:3:27: wake.admission.min_available_memory: expected a percentage like 10% or "
      "a size like 1GiB, got \"10 percent\"",
      "sandboxd.yaml:4:19: wake.probe_interval: must be between 5ms and 1s, got 2ms"}},
    {"trusted proxy that is not a CIDR",
     "edge:\n"
     "  trusted_proxies: [10.0.0.0/8, proxy.local]\n",
     {"sandboxd.yaml:2:33: edge.trusted_proxies[1]: expected a CIDR like 10.0.0.0/8, got "
      "\"proxy.local\""}},
    {"tsig secret that is not base64",
     "acme:\n"
     "  dns:\n"
     "    rfc2136:\n"
     "      tsig_name: k.\n"
     "      tsig_secret: not*base64\n",
     {"sandboxd.yaml:5:20: acme.dns.rfc2136.tsig_secret: must be base64, like the secret of a BIND "
      "key file"}},
    {"empty value for a duration",
     "idle:\n"
     "  threshold:\n",
     {"sandboxd.yaml:2:3: idle.threshold: expected a duration like 30s, got \"\""}}

};

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, ReportsExactly) {
  const BadCase& c = GetParam();
  LoadResult r = parse(c.yaml, {{"MEM", "lots"}, {"IMAGE", "img"}});
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.config.has_value());
  EXPECT_EQ(strs(r.errors), c.errors) << c.yaml;
}

INSTANTIATE_TEST_SUITE_P(Table, BadConfig, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& param_info) {
                           std::string n;
                           for (char ch : param_info.param.name) {
                             n += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           }
                           return n;
                         });

TEST(ConfigLoad, BadTableIsLarge) { EXPECT_GE(std::size(kBadCases), 30u); }

TEST(ConfigLoad, EveryProblemIsReportedSortedByPosition) {
  // Problems of every kind, written so that file order differs from check order.
  const char* yaml =
      "metrics:\n"
      "  enabled: on\n"
      "idle:\n"
      "  threshold: 10m\n"
      "  check_interval: 1h\n"
      "wake:\n"
      "  threshold: 5m\n"
      "  probe_interval: 0\n"
      "control:\n"
      "  listen: \"0.0.0.0:9090\"\n"
      "auth:\n"
      "  required: flase\n"
      "log:\n"
      "  level: info\n"
      "  level: debug\n"
      "sandbox:\n"
      "  memory: 4g\n"
      "  user: \"0:0\"\n"
      "edge:\n"
      "  http:\n"
      "    listen: \":9090\"\n"
      "data_dir: relative\n";
  LoadResult r = parse(yaml);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(strs(r.errors),
            (std::vector<std::string>{
                "sandboxd.yaml:2:12: metrics.enabled: expected true or false, got \"on\"\n"
                "  hint: did you mean true?",
                "sandboxd.yaml:5:3: idle.check_interval: must not be longer than idle.threshold "
                "(10m)",
                "sandboxd.yaml:7:3: wake.threshold: unknown key (did you mean idle.threshold?)",
                "sandboxd.yaml:8:19: wake.probe_interval: must be between 5ms and 1s, got 0",
                "sandboxd.yaml:12:13: auth.required: unknown value \"flase\" (did you mean "
                "\"false\"?)",
                "sandboxd.yaml:15:3: log.level: duplicate key (first set on line 14)",
                "sandboxd.yaml:17:11: sandbox.memory: expected a size like 64KiB, got \"4g\"\n"
                "  hint: did you mean 4GiB?",
                "sandboxd.yaml:18:9: sandbox.user: uid 0 (root) is not allowed\n"
                "  hint: use an unprivileged user, like \"1000:1000\"",
                "sandboxd.yaml:21:5: edge.http.listen: \":9090\" is also the address of "
                "control.listen\n"
                "  hint: give each listener its own port",
                "sandboxd.yaml:22:11: data_dir: must be an absolute path, got \"relative\"",
            }));
  for (std::size_t i = 1; i < r.errors.size(); ++i) {
    const Diagnostic& a = r.errors[i - 1];
    const Diagnostic& b = r.errors[i];
    EXPECT_TRUE(a.line < b.line || (a.line == b.line && a.col <= b.col)) << b.str();
  }
}

TEST(ConfigLoad, WarningsDoNotBlock) {
  LoadResult r = parse(
      "preview:\n"
      "  domain: example.com\n"
      "sandbox:\n"
      "  memory: 1GiB\n"
      "  tmpfs_size: 1GiB\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(strs(r.warnings),
            (std::vector<std::string>{
                "sandboxd.yaml:2:3: tls.mode: TLS is off, but preview.domain \"example.com\" is a "
                "public name: previews and tokens travel unencrypted\n"
                "  hint: set tls.mode to acme or files",
                "sandboxd.yaml:5:3: sandbox.tmpfs_size: 1GiB is not below sandbox.memory (1GiB): "
                "a full /tmp can use all of a sandbox's memory",
            }));
  for (const auto& w : r.warnings) EXPECT_TRUE(w.warning);
}

TEST(ConfigLoad, AcmeWithoutEmailWarns) {
  LoadResult r = parse(
      "preview:\n"
      "  domain: example.com\n"
      "tls:\n"
      "  mode: acme\n"
      "acme:\n"
      "  dns:\n"
      "    provider: httpreq\n"
      "    httpreq:\n"
      "      url: https://dns-hook.example.com/\n");
  ASSERT_TRUE(r.ok()) << r.errors[0].str();
  EXPECT_EQ(strs(r.warnings),
            (std::vector<std::string>{
                "sandboxd.yaml:4:3: acme.email: empty: the CA cannot reach you about problems "
                "with your certificate\n"
                "  hint: set acme.email to an address you read"}));
  EXPECT_EQ(r.config->acme.dns.provider, DnsProvider::httpreq);
}

TEST(ConfigLoad, ReadsEveryKindOfValue) {
  LoadResult r = parse(
      "data_dir: /srv/sandboxd\n"
      "log: {level: debug, format: json, access_log: stderr}\n"
      "control:\n"
      "  listen: \"[::1]:0\"\n"
      "  max_json_body: 2MB\n"
      "auth:\n"
      "  required: true\n"
      "  tokens:\n"
      "    - {name: ci, secret: 0123456789abcdef, read_only: true}\n"
      "    - name: ops-1\n"
      "      secret: ${OPS_TOKEN}\n"
      "  preview:\n"
      "    secrets: [{kid: k1, secret: 0123456789abcdef0123456789abcdef}]\n"
      "    redirect_url: https://login.example.com/?s={sandbox_id}&r={return}\n"
      "preview:\n"
      "  domain: Example.COM\n"
      "  allowed_ports: [3000, 8000-8999]\n"
      "  undeclared_ports: allow\n"
      "edge:\n"
      "  http: {listen: \":8080\"}\n"
      "  trusted_proxies: [10.0.0.0/8, \"fd00::/8\"]\n"
      "sandbox:\n"
      "  user: \"1001:1002\"\n"
      "  cpus: 1.5\n"
      "  env: {NODE_ENV: production, LITERAL: \"$${HOME}\"}\n"
      "wake:\n"
      "  admission: {min_available_memory: 1GiB}\n"
      "pressure:\n"
      "  bands: [{below: 20%, stop_idle_for: 10m}]\n"
      "tasks:\n"
      "  default_agent: claude-code\n"
      "  agents:\n"
      "    claude-code: {model: sonnet, extra_args: [--verbose]}\n",
      {{"OPS_TOKEN", "ops-secret-0123456789"}});
  ASSERT_TRUE(r.ok()) << r.errors[0].str();
  const Config& c = *r.config;
  EXPECT_EQ(c.data_dir, "/srv/sandboxd");
  EXPECT_EQ(c.log.level, log::Level::debug);
  EXPECT_EQ(c.log.format, log::Format::json);
  EXPECT_EQ(c.log.access_log, "stderr");
  EXPECT_EQ(c.control.listen, (HostPort{"::1", 0, true}));
  EXPECT_EQ(c.control.max_json_body, 2000000u);
  ASSERT_EQ(c.auth.tokens.size(), 2u);
  EXPECT_EQ(c.auth.tokens[0].name, "ci");
  EXPECT_TRUE(c.auth.tokens[0].read_only);
  EXPECT_EQ(c.auth.tokens[1].secret.reveal(), "ops-secret-0123456789");
  EXPECT_FALSE(c.auth.tokens[1].read_only);
  EXPECT_EQ(c.auth.preview.secrets.at(0).kid, "k1");
  EXPECT_EQ(c.preview.domain, "example.com");
  EXPECT_EQ(c.preview_suffix(), "preview.example.com");
  EXPECT_EQ(c.preview.allowed_ports, (std::vector<PortRange>{{3000, 3000}, {8000, 8999}}));
  EXPECT_EQ(c.preview.undeclared_ports, UndeclaredPorts::allow);
  EXPECT_EQ(c.edge.http.listen, (HostPort{"", 8080, true}));
  EXPECT_FALSE(c.edge.https.listen.explicit_);
  EXPECT_EQ(c.edge.trusted_proxies.size(), 2u);
  EXPECT_EQ(c.sandbox.user, (SandboxUser{1001, 1002}));
  EXPECT_DOUBLE_EQ(c.sandbox.cpus, 1.5);
  EXPECT_EQ(c.sandbox.env, (std::map<std::string, std::string>{{"LITERAL", "${HOME}"},
                                                               {"NODE_ENV", "production"}}));
  EXPECT_FALSE(c.wake.admission.min_available_memory.is_percent);
  EXPECT_EQ(c.wake.admission.min_available_memory.bytes, 1ULL << 30);
  EXPECT_EQ(c.pressure.bands, (std::vector<PressureBand>{{20, 10min}}));
  EXPECT_EQ(c.tasks.default_agent, Agent::claude_code);
  EXPECT_EQ(c.tasks.agents.claude_code.model, "sonnet");
  EXPECT_EQ(c.tasks.agents.claude_code.extra_args, std::vector<std::string>{"--verbose"});
  EXPECT_EQ(c.interpolated, std::set<std::string>{"auth.tokens[1].secret"});
  EXPECT_TRUE(c.auth_required());
}

TEST(ConfigLoad, EmptyListsAreEmpty) {
  LoadResult r = parse(
      "preview: {allowed_ports: []}\n"
      "pressure: {bands: []}\n"
      "sandbox: {env_blocklist: []}\n"
      "files: {list_skip: }\n");
  ASSERT_TRUE(r.ok()) << r.errors[0].str();
  EXPECT_TRUE(r.config->preview.allowed_ports.empty());
  EXPECT_TRUE(r.config->pressure.bands.empty());
  EXPECT_TRUE(r.config->sandbox.env_blocklist.empty());
  EXPECT_TRUE(r.config->files.list_skip.empty());
}

TEST(ConfigInterpolation, InConfigValues) {
  // Interpolation happens before typing, so any type can come from the environment.
  LoadResult r = parse(
      "idle:\n"
      "  threshold: ${IDLE}\n"
      "metrics:\n"
      "  enabled: ${METRICS}\n"
      "acme:\n"
      "  email: ${EMAIL}\n"
      "docker:\n"
      "  image: \"cost-$5-$${NOT}\"\n",
      {{"IDLE", "1h30m"}, {"METRICS", "false"}, {"EMAIL", "ops@example.com"}});
  ASSERT_TRUE(r.ok()) << r.errors[0].str();
  EXPECT_EQ(r.config->idle.threshold, 90min);
  EXPECT_FALSE(r.config->metrics.enabled);
  EXPECT_EQ(r.config->acme.email, "ops@example.com");
  EXPECT_EQ(r.config->docker.image, "cost-$5-${NOT}");
  EXPECT_EQ(r.config->interpolated,
            (std::set<std::string>{"acme.email", "idle.threshold", "metrics.enabled"}));
}

TEST(ConfigInterpolation, EmptyVariableThenTheKeysOwnRules) {
  LoadResult r =
      parse("auth:\n  tokens:\n    - name: ci\n      secret: ${TOKEN}\n", {{"TOKEN", ""}});
  EXPECT_EQ(strs(r.errors),
            std::vector<std::string>{
                "sandboxd.yaml:4:15: auth.tokens[0].secret: must be at least 16 characters, got 0\n"
                "  hint: generate one with: openssl rand -hex 32"});
}

TEST(ConfigInterpolation, NeverInKeys) {
  LoadResult r = parse("${SECTION}:\n  level: info\n", {{"SECTION", "log"}});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].key_path, "${SECTION}");
  EXPECT_EQ(r.errors[0].message, "unknown key");
}

TEST(ConfigInterpolation, ValuesFromTheEnvironmentAreNotEchoed) {
  LoadResult r = parse("control:\n  listen: ${LISTEN}\nlog:\n  level: ${LEVEL}\n",
                       {{"LISTEN", "hunter2-listen"}, {"LEVEL", "hunter2-level"}});
  ASSERT_EQ(r.errors.size(), 2u);
  for (const auto& d : r.errors) {
    EXPECT_EQ(d.str().find("hunter2"), std::string::npos) << d.str();
    EXPECT_EQ(d.hint, "");
  }
  EXPECT_EQ(r.errors[0].message,
            "expected host:port like 127.0.0.1:9090, got a value from the environment");
  EXPECT_EQ(r.errors[1].message,
            "unknown level a value from the environment (expected one of debug, info, warn, "
            "error)");
}

TEST(ConfigDiagnostic, Str) {
  Diagnostic d{"f.yaml", 3, 7, "a.b", "bad", "", false};
  EXPECT_EQ(d.str(), "f.yaml:3:7: a.b: bad");
  d.hint = "try this";
  EXPECT_EQ(d.str(), "f.yaml:3:7: a.b: bad\n  hint: try this");
  d = Diagnostic{"f.yaml", 0, 0, "", "cannot read", "", false};
  EXPECT_EQ(d.str(), "f.yaml: cannot read");
  d = Diagnostic{"f.yaml", 2, 1, "", "YAML syntax error: x", "", false};
  EXPECT_EQ(d.str(), "f.yaml:2:1: YAML syntax error: x");
}

TEST(ConfigLoad, KnownKeyPaths) {
  std::vector<std::string> keys = known_key_paths();
  std::set<std::string> unique(keys.begin(), keys.end());
  EXPECT_EQ(unique.size(), keys.size());
  for (std::string k : {"data_dir", "log.level", "auth.tokens[].name", "auth.tokens[].read_only",
                        "auth.preview.secrets[].kid", "auth.preview.redirect_url",
                        "edge.limits.max_held_requests_total", "edge.https.listen",
                        "acme.dns.rfc2136.tsig_algorithm", "acme.dns.cloudflare.base_url",
                        "acme.dns.propagation.nameservers", "sandbox.env",
                        "wake.admission.min_available_memory", "pressure.bands[].stop_idle_for",
                        "tasks.agents.claude-code.extra_args", "metrics.per_sandbox_limit"}) {
    EXPECT_EQ(unique.count(k), 1u) << k;
  }
  EXPECT_EQ(unique.count("edge"), 0u);  // sections are not leaves
}

// --- files and lookup -------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "config_test.XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ConfigFile, ReadsAndLabelsWithItsPath) {
  TempDir dir;
  std::string p = dir.file("s.yaml", "log:\n  level: loud\n");
  LoadResult r = load_config_file(p, env_of({}));
  EXPECT_FALSE(r.unreadable);
  EXPECT_EQ(r.file, p);
  EXPECT_EQ(strs(r.errors),
            std::vector<std::string>{p + ":2:10: log.level: unknown level \"loud\" (expected one "
                                         "of debug, info, warn, error)"});
  std::string good = dir.file("good.yaml", "idle:\n  threshold: 5m\n");
  r = load_config_file(good, env_of({}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->idle.threshold, 5min);
}

TEST(ConfigFile, UnreadableIsFlagged) {
  TempDir dir;
  LoadResult r = load_config_file(dir.path() + "/missing.yaml", env_of({}));
  EXPECT_TRUE(r.unreadable);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(strs(r.errors),
            std::vector<std::string>{dir.path() +
                                     "/missing.yaml: cannot read the config file: No such file or "
                                     "directory"});
  r = load_config_file(dir.path(), env_of({}));
  EXPECT_TRUE(r.unreadable);
  EXPECT_EQ(r.errors.at(0).message, "cannot read the config file: it is a directory");
}

TEST(ConfigFile, LookupOrder) {
  TempDir dir;
  std::string etc = dir.path() + "/etc.yaml";
  std::string local = dir.path() + "/local.yaml";
  std::vector<std::string> candidates{etc, local};
  auto env = env_of({{"SANDBOXD_CONFIG", "/from/env.yaml"}});

  EXPECT_EQ(find_config_path(std::nullopt, env_of({}), candidates), "");
  dir.file("local.yaml", "");
  EXPECT_EQ(find_config_path(std::nullopt, env_of({}), candidates), local);
  dir.file("etc.yaml", "");
  EXPECT_EQ(find_config_path(std::nullopt, env_of({}), candidates), etc);
  EXPECT_EQ(find_config_path(std::nullopt, env, candidates), "/from/env.yaml");
  EXPECT_EQ(find_config_path(std::string("/from/flag.yaml"), env, candidates), "/from/flag.yaml");
  // An empty $SANDBOXD_CONFIG is as good as unset.
  EXPECT_EQ(find_config_path(std::nullopt, env_of({{"SANDBOXD_CONFIG", ""}}), candidates), etc);
  EXPECT_EQ(default_config_candidates(),
            (std::vector<std::string>{"/etc/sandboxd/sandboxd.yaml", "sandboxd.yaml"}));
}

// --- hostile input ----------------------------------------------------------------------

void expect_survives(const std::string& text) {
  LoadResult r;
  EXPECT_NO_THROW(r = parse(text, {{"A", "1"}}));
  EXPECT_EQ(r.ok(), r.errors.empty());
  for (const auto& d : r.errors) {
    EXPECT_GE(d.line, 1) << d.str();
    EXPECT_GE(d.col, 1) << d.str();
  }
}

TEST(ConfigHostile, MalformedInputGivesDiagnostics) {
  const std::string cases[] = {
      std::string("\0\0\0", 3),
      "\xff\xfe\x00l\x00o\x00g",
      "log: {level: [}\n",
      "a: &x [*x]\nlog: *x\n",
      "log: &l {level: info}\nidle: *l\n",
      "auth: {tokens: &t [{name: a, secret: *t}]}\n",
      "? \n: \n",
      "!!binary aGVsbG8=\n",
      "log: !!map {level: info}\n",
      "---\n---\n---\n",
      "log:\n  level: \"\\u0000\"\n",
      "edge: {workers: 99999999999999999999999999999999999999999999}\n",
      "acme: {renew_ratio: 1e308}\n",
      "sandbox: {cpus: -0}\n",
      "control: {listen: \"[\"}\n",
      "preview: {allowed_ports: [\"-\", \"65535-\", 99999999999999999999]}\n",
      std::string(100000, '['),
      std::string(100000, '{'),
      "a:\n" + std::string(5000, ' ') + "b: c\n",
      "log: " + std::string(1 << 20, 'x') + "\n",
      "docker: {image: \"${" + std::string(1000, 'A') + "}\"}\n",
  };
  for (const std::string& c : cases) expect_survives(c);
}

TEST(ConfigHostile, DeepNestingIsAnError) {
  std::string deep = "log: ";
  for (int i = 0; i < 50000; ++i) deep += "[";
  LoadResult r = parse(deep);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].message, "the document is nested too deeply");
}

TEST(ConfigHostile, RandomBytesAndMutationsNeverThrow) {
  std::mt19937 rng(20261122);
  const std::string seed =
      "auth:\n  tokens:\n    - name: ci\n      secret: ${A}0123456789abcdef\n"
      "edge:\n  limits: {max_header_bytes: 64KiB}\n  http: {listen: \":80\"}\n"
      "pressure:\n  bands: [{below: 15%, stop_idle_for: 5m}]\n";
  for (int i = 0; i < 2000; ++i) {
    std::string text = seed;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      std::size_t at = rng() % (text.size() + 1);
      switch (rng() % 3) {
        case 0:
          text.insert(at, 1, static_cast<char>(rng() % 256));
          break;
        case 1:
          if (at < text.size()) text.erase(at, 1);
          break;
        default:
          if (at < text.size()) text[at] = static_cast<char>(rng() % 256);
      }
    }
    expect_survives(text);
  }
  for (int i = 0; i < 300; ++i) {
    std::string text(rng() % 512, '\0');
    for (char& ch : text) ch = static_cast<char>(rng() % 256);
    expect_survives(text);
  }
}

}  // namespace
}  // namespace sandboxd::config
