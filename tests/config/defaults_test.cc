// Every default of the §9.2 key table, written out again here on purpose: a changed default
// must be a deliberate edit in two places.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config/load.h"

namespace sandboxd::config {
namespace {

using namespace std::chrono_literals;

EnvLookup no_env() {
  return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

TEST(ConfigDefaults, MatchTheKeyTable) {
  const Config c = default_config();
  EXPECT_EQ(c.data_dir, "/var/lib/sandboxd");

  EXPECT_EQ(c.log.level, log::Level::info);
  EXPECT_EQ(c.log.format, log::Format::text);
  EXPECT_EQ(c.log.access_log, "");

  EXPECT_EQ(c.control.listen.str(), "127.0.0.1:9090");
  EXPECT_FALSE(c.control.listen.explicit_);
  EXPECT_EQ(c.control.public_host, "");
  EXPECT_EQ(c.control.max_json_body, 1u << 20);

  EXPECT_TRUE(c.auth.tokens.empty());
  EXPECT_EQ(c.auth.required, AuthRequired::automatic);
  EXPECT_TRUE(c.auth.preview.secrets.empty());
  EXPECT_EQ(c.auth.preview.cookie_ttl, 12h);
  EXPECT_EQ(c.auth.preview.redirect_url, "");

  EXPECT_EQ(c.preview.domain, "localhost");
  EXPECT_EQ(c.preview.suffix, "");
  EXPECT_EQ(c.preview.allowed_ports, (std::vector<PortRange>{{1024, 65535}}));
  EXPECT_EQ(c.preview.undeclared_ports, UndeclaredPorts::deny);

  EXPECT_EQ(c.edge.http.listen.str(), ":80");
  EXPECT_FALSE(c.edge.http.listen.explicit_);
  EXPECT_EQ(c.edge.https.listen.str(), ":443");
  EXPECT_TRUE(c.edge.redirect_http);
  EXPECT_EQ(c.edge.workers, 0u);
  EXPECT_EQ(c.edge.limits.max_header_bytes, 64u * 1024);
  EXPECT_EQ(c.edge.limits.max_connections, 20000u);
  EXPECT_EQ(c.edge.limits.max_connections_per_client, 256u);
  EXPECT_EQ(c.edge.limits.max_connections_per_sandbox, 1024u);
  EXPECT_EQ(c.edge.limits.max_held_requests_per_sandbox, 256u);
  EXPECT_EQ(c.edge.limits.max_held_requests_total, 4096u);
  EXPECT_EQ(c.edge.limits.max_request_body, 0u);
  EXPECT_EQ(c.edge.timeouts.header_read, 15s);
  EXPECT_EQ(c.edge.timeouts.keepalive_idle, 75s);
  EXPECT_EQ(c.edge.timeouts.upstream_connect, 5s);
  EXPECT_EQ(c.edge.timeouts.upstream_response_header, 0s);
  EXPECT_EQ(c.edge.timeouts.websocket_idle, 1h);
  EXPECT_EQ(c.edge.timeouts.body_idle, 60s);
  EXPECT_EQ(c.edge.timeouts.shutdown_drain, 30s);
  EXPECT_EQ(c.edge.upstream.idle_timeout, 4s);
  EXPECT_EQ(c.edge.upstream.max_idle_per_backend, 16u);
  EXPECT_TRUE(c.edge.trusted_proxies.empty());
  EXPECT_FALSE(c.edge.forwarded_header);
  EXPECT_EQ(c.edge.hsts_max_age, 0s);

  EXPECT_EQ(c.tls.mode, TlsMode::off);
  EXPECT_EQ(c.tls.files.cert, "");
  EXPECT_EQ(c.tls.files.key, "");
  EXPECT_EQ(c.tls.min_version, TlsVersion::v1_2);

  EXPECT_EQ(c.acme.directory_url, "https://acme-v02.api.letsencrypt.org/directory");
  EXPECT_EQ(c.acme.email, "");
  EXPECT_EQ(c.acme.ca_bundle, "");
  EXPECT_EQ(c.acme.eab.kid, "");
  EXPECT_TRUE(c.acme.eab.hmac.empty());
  EXPECT_EQ(c.acme.key_type, AcmeKeyType::ec256);
  EXPECT_EQ(c.acme.profile, "");
  EXPECT_DOUBLE_EQ(c.acme.renew_ratio, 0.6667);
  EXPECT_EQ(c.acme.dns.provider, DnsProvider::none);
  EXPECT_EQ(c.acme.dns.propagation.delay, 0s);
  EXPECT_EQ(c.acme.dns.propagation.timeout, 120s);
  EXPECT_EQ(c.acme.dns.propagation.check, PropagationCheck::authoritative);
  EXPECT_TRUE(c.acme.dns.propagation.nameservers.empty());
  EXPECT_FALSE(c.acme.dns.rfc2136.nameserver.has_value());
  EXPECT_EQ(c.acme.dns.rfc2136.tsig_name, "");
  EXPECT_TRUE(c.acme.dns.rfc2136.tsig_secret.empty());
  EXPECT_EQ(c.acme.dns.rfc2136.tsig_algorithm, TsigAlgorithm::hmac_sha256);
  EXPECT_TRUE(c.acme.dns.cloudflare.api_token.empty());
  EXPECT_EQ(c.acme.dns.cloudflare.zone_id, "");
  EXPECT_EQ(c.acme.dns.cloudflare.base_url, "https://api.cloudflare.com/client/v4");
  EXPECT_EQ(c.acme.dns.exec.command, "");
  EXPECT_EQ(c.acme.dns.httpreq.url, "");
  EXPECT_EQ(c.acme.dns.httpreq.username, "");
  EXPECT_TRUE(c.acme.dns.httpreq.password.empty());

  EXPECT_EQ(c.docker.socket, "unix:///var/run/docker.sock");
  EXPECT_EQ(c.docker.image, "sandboxd-base:latest");
  EXPECT_EQ(c.docker.network, "sandboxd_net");
  EXPECT_EQ(c.docker.runtime, "");
  EXPECT_EQ(c.docker.stop_timeout, 10s);

  EXPECT_EQ(c.sandbox.user, (SandboxUser{1000, 1000}));
  EXPECT_EQ(c.sandbox.memory, 2ULL << 30);
  EXPECT_EQ(c.sandbox.pids, 1024u);
  EXPECT_EQ(c.sandbox.nofile, 65536u);
  EXPECT_EQ(c.sandbox.cpus, 0);
  EXPECT_EQ(c.sandbox.tmpfs_size, 512ULL << 20);
  EXPECT_EQ(c.sandbox.skeleton, "");
  EXPECT_TRUE(c.sandbox.env.empty());
  EXPECT_TRUE(c.sandbox.env_passthrough.empty());
  EXPECT_EQ(c.sandbox.env_blocklist, (std::vector<std::string>{"AWS_*", "GITHUB_TOKEN"}));
  EXPECT_EQ(c.sandbox.project_dir, "workspace/app");
  EXPECT_EQ(c.sandbox.dev_command, "");
  EXPECT_EQ(c.sandbox.dev_port, 0);

  EXPECT_EQ(c.wake.timeout, 60s);
  EXPECT_EQ(c.wake.probe_interval, 25ms);
  EXPECT_EQ(c.wake.max_concurrent, 4u);
  EXPECT_TRUE(c.wake.admission.min_available_memory.is_percent);
  EXPECT_EQ(c.wake.admission.min_available_memory.percent, 10);
  EXPECT_EQ(c.wake.admission.estimate_per_sandbox, 512ULL << 20);

  EXPECT_EQ(c.idle.threshold, 35min);
  EXPECT_EQ(c.idle.check_interval, 30s);
  EXPECT_TRUE(c.idle.websockets_count_as_activity);
  EXPECT_EQ(c.idle.keepalive_max, 24h);
  EXPECT_EQ(c.idle.stop_timeout, 10s);

  EXPECT_TRUE(c.pressure.enabled);
  EXPECT_EQ(c.pressure.check_interval, 10s);
  EXPECT_EQ(c.pressure.max_stops_per_tick, 4u);
  EXPECT_EQ(c.pressure.bands, (std::vector<PressureBand>{{15, 5min}, {10, 1min}, {5, 0s}}));

  EXPECT_EQ(c.tasks.default_agent, Agent::opencode);
  EXPECT_EQ(c.tasks.timeout, 2h);
  EXPECT_EQ(c.tasks.max_queued, 8u);
  EXPECT_EQ(c.tasks.cancel_grace, 5s);
  EXPECT_EQ(c.tasks.max_output, 16ULL << 20);
  EXPECT_EQ(c.tasks.event_retention, 30 * 24h);
  EXPECT_EQ(c.tasks.agents.opencode, AgentConfig{});
  EXPECT_EQ(c.tasks.agents.claude_code, AgentConfig{});
  EXPECT_EQ(c.tasks.agents.opencode.model, "");
  EXPECT_TRUE(c.tasks.agents.claude_code.extra_args.empty());

  EXPECT_EQ(c.exec.timeout, 5min);
  EXPECT_EQ(c.exec.max_timeout, 24h);
  EXPECT_EQ(c.exec.max_output, 1ULL << 20);

  EXPECT_EQ(c.files.read_max, 8ULL << 20);
  EXPECT_EQ(c.files.write_max, 32ULL << 20);
  EXPECT_EQ(c.files.list_max_entries, 10000u);
  EXPECT_EQ(c.files.list_max_depth, 32u);
  EXPECT_EQ(c.files.list_skip, (std::vector<std::string>{"node_modules", ".git"}));
  EXPECT_EQ(c.files.export_exclude, (std::vector<std::string>{"node_modules"}));

  EXPECT_EQ(c.store.read_connections, 4u);
  EXPECT_EQ(c.store.busy_timeout, 5s);
  EXPECT_EQ(c.store.activity_flush, 5s);
  EXPECT_EQ(c.store.audit_retention, 90 * 24h);
  EXPECT_EQ(c.store.audit_max_rows, 1'000'000u);

  EXPECT_TRUE(c.metrics.enabled);
  EXPECT_FALSE(c.metrics.per_sandbox_labels);
  EXPECT_EQ(c.metrics.per_sandbox_limit, 500u);

  EXPECT_TRUE(c.interpolated.empty());
}

TEST(ConfigDefaults, DerivedValues) {
  Config c;
  EXPECT_EQ(c.preview_suffix(), "preview.localhost");
  EXPECT_FALSE(c.auth_required());  // loopback control.listen
  c.preview.domain = "example.com";
  EXPECT_EQ(c.preview_suffix(), "preview.example.com");
  c.preview.suffix = "p.example.net";
  EXPECT_EQ(c.preview_suffix(), "p.example.net");

  c.control.listen.host = "";
  EXPECT_TRUE(c.auth_required());
  c.control.listen.host = "::1";
  EXPECT_FALSE(c.auth_required());
  c.control.listen.host = "localhost";
  EXPECT_FALSE(c.auth_required());
  c.control.listen.host = "127.5.5.5";
  EXPECT_FALSE(c.auth_required());
  c.control.listen.host = "10.0.0.1";
  EXPECT_TRUE(c.auth_required());
  c.auth.required = AuthRequired::no;
  EXPECT_FALSE(c.auth_required());
  c.control.listen.host = "127.0.0.1";
  c.auth.required = AuthRequired::yes;
  EXPECT_TRUE(c.auth_required());
}

TEST(ConfigDefaults, EmptyAndCommentOnlyFilesGiveDefaults) {
  for (std::string text :
       {"", "\n\n", "# only a comment\n  # another\n", "---\n", "~\n", "---\n# comment\n...\n"}) {
    LoadResult r = parse_config(text, "sandboxd.yaml", no_env());
    ASSERT_TRUE(r.ok()) << text << (r.errors.empty() ? "" : r.errors[0].str());
    EXPECT_EQ(*r.config, default_config()) << text;
    EXPECT_TRUE(r.warnings.empty());
  }
}

TEST(ConfigDefaults, EmptySectionsGiveDefaults) {
  LoadResult r = parse_config("log:\nedge:\n  limits:\n  timeouts: {}\nauth:\n  tokens: []\n",
                              "sandboxd.yaml", no_env());
  ASSERT_TRUE(r.ok()) << r.errors[0].str();
  EXPECT_EQ(*r.config, default_config());
}

}  // namespace
}  // namespace sandboxd::config
