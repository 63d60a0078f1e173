// The cross-key rules of §9.3. Each problem points at the key that has to change; when that
// key is not in the file (its default is the problem), at the closest key that is.
#include <arpa/inet.h>

#include <cstdio>
#include <utility>

#include "config/values.h"
#include "schema.h"
#include "tls_check.h"

namespace sandboxd::config::detail {
namespace {

bool is_ip_literal(std::string_view host) {
  std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

bool is_localhost_name(std::string_view name) {
  return name == "localhost" || name.ends_with(".localhost");
}

// Names that never get a public certificate or public DNS; TLS off for them is normal.
bool is_private_name(std::string_view name) {
  if (name.find('.') == std::string_view::npos || is_ip_literal(name)) return true;
  for (std::string_view tld : {".localhost", ".local", ".internal", ".test", ".lan", ".home.arpa",
                               ".example", ".invalid"}) {
    if (name.ends_with(tld)) return true;
  }
  return name == "localhost";
}

// §1.4: one label "s-<anything>-<anything>" right under the suffix. Wider than the grammar
// on purpose: the edge answers the whole preview shape (with 404 for a bad id or port, §3.4)
// before it looks for control.public_host, so such a name could never reach the API.
bool has_preview_shape(std::string_view host, std::string_view suffix) {
  std::string tail = "." + lower(suffix);
  if (!host.ends_with(tail)) return false;
  std::string_view label = host.substr(0, host.size() - tail.size());
  if (label.find('.') != std::string_view::npos || !label.starts_with("s-")) return false;
  std::size_t dash = label.rfind('-');
  return dash > 1 && dash + 1 < label.size();
}

bool wildcard_host(std::string_view h) { return h.empty() || h == "0.0.0.0" || h == "::"; }

bool same_address(const HostPort& a, const HostPort& b) {
  if (a.port != b.port || a.port == 0) return false;
  if (wildcard_host(a.host) || wildcard_host(b.host)) return true;
  auto canon = [](const std::string& h) -> std::string {
    return h == "localhost" ? "127.0.0.1" : h;
  };
  return canon(a.host) == canon(b.host);
}

bool before(Pos a, Pos b) { return a.line < b.line || (a.line == b.line && a.col < b.col); }

void check_auth(Reader& r, const Config& c) {
  const std::string listen = c.control.listen.str();
  if (r.failed("control.listen") || r.failed("auth.required")) return;
  if (c.auth_required() && c.auth.tokens.empty() && !r.failed("auth.tokens")) {
    if (c.auth.required == AuthRequired::yes) {
      r.conflict(r.where("auth.tokens", {"auth.required"}), "auth.tokens",
                 "auth.required is true but no tokens are configured",
                 "add a token under auth.tokens");
    } else if (c.auth.required == AuthRequired::automatic) {
      r.conflict(r.where("auth.tokens", {"control.listen"}), "auth.tokens",
                 "auth is required because control.listen " + quote(listen) +
                     " is not a loopback address, but no tokens are configured",
                 "add a token under auth.tokens, or bind control.listen to 127.0.0.1");
    }
  }
  if (c.auth.required == AuthRequired::no && !c.control.listen.is_loopback()) {
    r.conflict(r.where("auth.required"), "auth.required",
               "auth cannot be turned off when control.listen " + quote(listen) +
                   " is not a loopback address",
               "bind to 127.0.0.1 or configure tokens");
  }
  const std::string& host = c.control.public_host;
  if (host.empty() || r.failed("control.public_host")) return;
  Pos at = r.where("control.public_host");
  if (c.auth.tokens.empty() && !r.failed("auth.tokens")) {
    r.conflict(at, "control.public_host",
               "needs auth tokens: the API always requires a token through the public host",
               "add a token under auth.tokens");
  }
  if (c.tls.mode == TlsMode::off && !r.failed("tls.mode")) {
    r.conflict(at, "control.public_host", "needs TLS, but tls.mode is off",
               "set tls.mode to files or acme");
  }
  if (has_preview_shape(host, c.preview_suffix())) {
    r.conflict(
        at, "control.public_host",
        quote(host) + " has the shape of a preview host (s-<id>-<port>." + c.preview_suffix() + ")",
        "use a name outside that pattern, like api." + c.preview.domain);
  }
}

void check_tls(Reader& r, const Config& c) {
  if (r.failed("tls.mode")) return;
  const std::string suffix = c.preview_suffix();
  if (c.tls.mode == TlsMode::files) {
    for (auto [key, value] : {std::pair{"tls.files.cert", &c.tls.files.cert},
                              std::pair{"tls.files.key", &c.tls.files.key}}) {
      if (value->empty() && !r.failed(key)) {
        r.conflict(r.where(key, {"tls.mode"}), key, "required when tls.mode is files");
      }
    }
    // OpenSSL reads the pair here, so a bad certificate stops check-config, not the edge.
    for (const TlsFileProblem& p : check_tls_files(c.tls.files.cert, c.tls.files.key, suffix)) {
      r.conflict(r.where(p.key, {"tls.mode"}), p.key, p.message, p.hint);
    }
  }
  if (c.tls.mode != TlsMode::acme) return;

  const AcmeConfig& a = c.acme;
  if (a.directory_url.empty() && !r.failed("acme.directory_url")) {
    r.conflict(r.where("acme.directory_url", {"tls.mode"}), "acme.directory_url",
               "required when tls.mode is acme");
  }
  if (a.email.empty() && !r.failed("acme.email")) {
    r.warning(r.where("acme.email", {"tls.mode"}), "acme.email",
              "empty: the CA cannot reach you about problems with your certificate",
              "set acme.email to an address you read");
  }
  if (!a.ca_bundle.empty()) {
    if (std::FILE* f = std::fopen(a.ca_bundle.c_str(), "rb")) {
      std::fclose(f);
    } else {
      r.conflict(r.where("acme.ca_bundle"), "acme.ca_bundle", "cannot read " + quote(a.ca_bundle));
    }
  }
  // The certificate is for *.<suffix>; CAs refuse names that only exist locally.
  const bool suffix_set = !c.preview.suffix.empty();
  const std::string name_key = suffix_set ? "preview.suffix" : "preview.domain";
  const std::string& name = suffix_set ? c.preview.suffix : c.preview.domain;
  if (!r.failed(name_key)) {
    if (is_localhost_name(name) || is_localhost_name(suffix)) {
      r.conflict(r.where(name_key, {"tls.mode"}), name_key,
                 "ACME cannot issue certificates for " + quote(suffix),
                 "set preview.domain to a DNS name you control, or use tls.mode: off or files");
    } else if (is_ip_literal(c.preview.domain) || is_ip_literal(name)) {
      r.conflict(r.where(name_key, {"tls.mode"}), name_key,
                 "ACME cannot issue a wildcard certificate under an IP address",
                 "set preview.domain to a DNS name you control");
    }
  }
  const DnsConfig& d = a.dns;
  if (r.failed("acme.dns.provider")) return;
  auto require = [&](bool ok, const std::string& key) {
    if (ok || r.failed(key)) return;
    r.conflict(r.where(key, {"acme.dns.provider"}), key,
               "required when acme.dns.provider is " + std::string(to_string(d.provider)));
  };
  switch (d.provider) {
    case DnsProvider::none:
      r.conflict(r.where("acme.dns.provider", {"tls.mode"}), "acme.dns.provider",
                 "required when tls.mode is acme", "one of rfc2136, cloudflare, exec, httpreq");
      break;
    case DnsProvider::rfc2136:
      require(d.rfc2136.nameserver.has_value(), "acme.dns.rfc2136.nameserver");
      break;
    case DnsProvider::cloudflare:
      require(!d.cloudflare.api_token.empty(), "acme.dns.cloudflare.api_token");
      break;
    case DnsProvider::exec:
      require(!d.exec.command.empty(), "acme.dns.exec.command");
      break;
    case DnsProvider::httpreq:
      require(!d.httpreq.url.empty(), "acme.dns.httpreq.url");
      break;
  }
}

// Rules that hold whatever the TLS mode: values that only make sense in pairs.
void check_pairs(Reader& r, const Config& c) {
  auto both_or_neither = [&](bool a_set, const std::string& a, bool b_set, const std::string& b) {
    if (a_set == b_set || r.failed(a) || r.failed(b)) return;
    const std::string& missing = a_set ? b : a;
    const std::string& given = a_set ? a : b;
    r.conflict(r.where(missing, {given}), missing, "required when " + given + " is set",
               "set both or neither");
  };
  both_or_neither(!c.acme.eab.kid.empty(), "acme.eab.kid", !c.acme.eab.hmac.empty(),
                  "acme.eab.hmac");
  both_or_neither(!c.acme.dns.rfc2136.tsig_name.empty(), "acme.dns.rfc2136.tsig_name",
                  !c.acme.dns.rfc2136.tsig_secret.empty(), "acme.dns.rfc2136.tsig_secret");
}

void check_listeners(Reader& r, const Config& c) {
  struct Listener {
    std::string key;
    const HostPort* addr;
  };
  std::vector<Listener> all{{"control.listen", &c.control.listen},
                            {"edge.http.listen", &c.edge.http.listen}};
  if (c.tls.mode != TlsMode::off) all.push_back({"edge.https.listen", &c.edge.https.listen});
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (std::size_t j = i + 1; j < all.size(); ++j) {
      if (r.failed(all[i].key) || r.failed(all[j].key)) continue;
      if (!same_address(*all[i].addr, *all[j].addr)) continue;
      // Blame the one written last: it is the one that was just added or changed.
      const Listener* blame = &all[j];
      const Listener* other = &all[i];
      bool i_written = r.present(all[i].key);
      bool j_written = r.present(all[j].key);
      if ((i_written && !j_written) ||
          (i_written && j_written && before(r.where(all[j].key), r.where(all[i].key)))) {
        std::swap(blame, other);
      }
      r.conflict(r.where(blame->key), blame->key,
                 quote(blame->addr->str()) + " is also the address of " + other->key,
                 "give each listener its own port");
    }
  }
}

void check_order(Reader& r, const Config& c) {
  const auto& bands = c.pressure.bands;
  for (std::size_t i = 1; i < bands.size(); ++i) {
    std::string prev = "pressure.bands[" + std::to_string(i - 1) + "]";
    std::string cur = "pressure.bands[" + std::to_string(i) + "]";
    if (bands[i].below >= bands[i - 1].below && !r.failed(cur + ".below")) {
      r.conflict(
          r.where(cur + ".below"), cur + ".below",
          "must be lower than " + prev + ".below (" + format_percent(bands[i - 1].below) + ")",
          "list bands from the highest below to the lowest");
    }
    if (bands[i].stop_idle_for > bands[i - 1].stop_idle_for && !r.failed(cur + ".stop_idle_for")) {
      r.conflict(r.where(cur + ".stop_idle_for"), cur + ".stop_idle_for",
                 "must not be longer than " + prev + ".stop_idle_for (" +
                     format_duration(bands[i - 1].stop_idle_for) + ")",
                 "a lower band is more urgent, so it may stop sandboxes that were idle for less");
    }
  }
  if (c.idle.check_interval > c.idle.threshold && !r.failed("idle.check_interval") &&
      !r.failed("idle.threshold")) {
    r.conflict(
        r.where("idle.check_interval", {"idle.threshold"}), "idle.check_interval",
        "must not be longer than idle.threshold (" + format_duration(c.idle.threshold) + ")");
  }
  if (c.exec.timeout > c.exec.max_timeout && !r.failed("exec.timeout") &&
      !r.failed("exec.max_timeout")) {
    r.conflict(
        r.where("exec.timeout", {"exec.max_timeout"}), "exec.timeout",
        "must not be longer than exec.max_timeout (" + format_duration(c.exec.max_timeout) + ")");
  }
}

void check_warnings(Reader& r, const Config& c) {
  if (c.tls.mode == TlsMode::off && !is_private_name(c.preview.domain) && !r.failed("tls.mode")) {
    r.warning(r.where("tls.mode", {"preview.domain"}), "tls.mode",
              "TLS is off, but preview.domain " + quote(c.preview.domain) +
                  " is a public name: previews and tokens travel unencrypted",
              "set tls.mode to acme or files");
  }
  // sandbox.memory 0 would mean no limit, and then the tmpfs cannot exceed it.
  if (c.sandbox.memory > 0 && c.sandbox.tmpfs_size >= c.sandbox.memory) {
    r.warning(r.where("sandbox.tmpfs_size", {"sandbox.memory"}), "sandbox.tmpfs_size",
              format_size(c.sandbox.tmpfs_size) + " is not below sandbox.memory (" +
                  format_size(c.sandbox.memory) +
                  "): a full /tmp can use all of a sandbox's memory");
  }
}

}  // namespace

void check_document(Reader& r) {
  const Config& c = r.cfg();
  check_auth(r, c);
  check_tls(r, c);
  check_pairs(r, c);
  check_listeners(r, c);
  check_order(r, c);
  check_warnings(r, c);
}

}  // namespace sandboxd::config::detail
