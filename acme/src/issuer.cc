#include "acme/issuer.h"

#include "acme_client.h"
#include "base/json.h"
#include "base/log.h"
#include "base64.h"
#include "crypto.h"
#include "http_client.h"
#include "propagation.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

namespace sandboxd::acme {

using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr log::Logger kLog{"acme"};
constexpr std::string_view kPendingKey = "pending.json";

const boost::json::object* as_object(const boost::json::value& v) {
  return v.is_object() ? &v.get_object() : nullptr;
}

std::string str_of(const boost::json::object* o, std::string_view key) {
  if (o == nullptr) return {};
  const auto* v = o->if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

Failure fail(std::string code, std::string step, std::string message) {
  return Failure{std::move(code), std::move(step), std::move(message), std::nullopt};
}

Failure transport_failure(const Error& e, const std::string& step) {
  if (e.code == Errc::cancelled) return fail("cancelled", step, "attempt cancelled");
  if (e.code == Errc::invalid_argument) return fail("invalid_config", step, e.detail);
  return fail("ca_unavailable", step, "ACME server unreachable: " + e.detail);
}

Failure problem_failure(const AcmeResponse& r, const std::string& step) {
  const Problem& p = *r.problem;
  const std::string kind = p.short_type();
  if (kind == "rateLimited") {
    Failure f = fail("rate_limited", step, p.describe());
    f.retry_after = r.retry_after;
    return f;
  }
  if (p.status >= 500 || kind == "serverInternal" || kind == "badNonce") {
    return fail("ca_unavailable", step, p.describe());
  }
  if (kind == "externalAccountRequired" ||
      (step == "account" && (kind == "unauthorized" || kind == "malformed"))) {
    return fail("account", step, p.describe() + "; check acme.eab.kid and acme.eab.hmac");
  }
  if (step == "account" || kind == "accountDoesNotExist" || kind == "invalidContact" ||
      kind == "unsupportedContact") {
    return fail("account", step, p.describe());
  }
  return fail("ca_rejected", step, p.describe());
}

// Retry-After clamped to 1–60 s, else 1 s doubling up to 10 s (SPEC §10.1 step 10).
milliseconds next_poll_wait(const std::optional<seconds>& retry_after, milliseconds& backoff) {
  if (retry_after) return std::clamp<milliseconds>(*retry_after, seconds(1), seconds(60));
  const milliseconds d = backoff;
  backoff = std::min<milliseconds>(backoff * 2, seconds(10));
  return d;
}

using Step = boost::system::result<void, Failure>;

struct Authorization {
  std::string url;
  std::string identifier;  // as the CA wrote it (no "*.")
  std::string challenge_url;
  std::string fqdn;
  std::string value;
};

}  // namespace

void throw_exception_from_error(const Failure& f, const boost::source_location&) {
  throw std::runtime_error(f.code + " at " + f.step + ": " + f.message);
}

std::string cert_storage_prefix(std::string_view cert_name) {
  return "certs/" + std::string(cert_name);
}

class Issuer::Impl {
 public:
  Impl(IssuerOptions o, DnsProvider& p, Storage& s, const Clock& c)
      : opts_(std::move(o)),
        provider_(p),
        storage_(s),
        clock_(c),
        http_(HttpClientOptions{.ca_file = opts_.ca_bundle,
                                .system_cas = opts_.trust_system_cas,
                                .user_agent = opts_.user_agent,
                                .timeout = opts_.http_timeout,
                                .max_body = 4 * 1024 * 1024}) {}

  IssueResult obtain() {
    const auto start = std::chrono::steady_clock::now();
    kLog.info("issuance started", {{"names", join_names()}, {"ca", opts_.directory_url},
                                   {"provider", provider_.name()}});
    if (auto left = cleanup_leftovers(); !left) {
      kLog.warn("leftover TXT records not removed", {{"error", left.error().detail}});
    }
    IssueResult result = run();
    const auto step_start = std::chrono::steady_clock::now();
    Status cleaned = cleanup_presented();
    step_ms_.emplace_back("cleanup", ms_since(step_start));
    if (!cleaned) {
      kLog.warn("TXT cleanup failed; kept in pending.json for the next attempt",
                {{"error", cleaned.error().detail}});
    }
    const auto total = ms_since(start);
    if (result) {
      result->step_ms = step_ms_;
      kLog.info("certificate issued", {{"names", join_names()},
                                       {"serial", result->bundle.serial},
                                       {"not_after", format_rfc3339(result->bundle.not_after)},
                                       {"ms", total}});
    } else {
      if (is_cancelled() && result.error().code != "cancelled") {
        result = fail("cancelled", result.error().step, "attempt cancelled");
      }
      kLog.warn("issuance failed", {{"code", result.error().code},
                                    {"step", result.error().step},
                                    {"error", result.error().message},
                                    {"ms", total}});
    }
    return result;
  }

  Status cleanup_leftovers() {
    auto pending = load_pending();
    if (!pending) return pending.error();
    Status first = ok();
    for (const auto& r : *pending) {
      if (auto c = provider_.cleanup(r.fqdn, r.value); !c) {
        if (first) first = c.error();
        continue;
      }
      kLog.info("leftover TXT record removed", {{"fqdn", r.fqdn}});
      if (auto s = remove_pending(r); !s && first) first = s.error();
    }
    return first;
  }

  void cancel() {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
    http_.abort();
  }

 private:
  static std::int64_t ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t).count();
  }
  std::string join_names() const {
    std::string out;
    for (const auto& n : opts_.names) out += (out.empty() ? "" : ",") + n;
    return out;
  }

  bool is_cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }

  // False when cancelled.
  bool sleep(milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [this] { return cancelled_; });
  }

  // Runs one step and records its duration.
  template <class Fn>
  auto timed(const char* step, Fn fn) {
    const auto t = std::chrono::steady_clock::now();
    auto r = fn();
    step_ms_.emplace_back(step, ms_since(t));
    return r;
  }

  IssueResult run() {
    if (opts_.names.empty()) return fail("invalid_config", "order", "no names to certify");

    // 1. Directory.
    auto dir = timed("directory", [&]() -> Result<Directory> {
      account_key_ = load_or_create_account_key();
      if (!account_key_) return account_key_.error();
      client_ = std::make_unique<AcmeClient>(http_, account_key_->get(), clock_,
                                             opts_.max_bad_nonce_retries);
      return client_->fetch_directory(opts_.directory_url);
    });
    if (!dir) {
      if (dir.error().code == Errc::io) return fail("store", "account", dir.error().detail);
      return transport_failure(dir.error(), "directory");
    }
    directory_ = *dir;
    if (!opts_.profile.empty() &&
        std::find(dir->profiles.begin(), dir->profiles.end(), opts_.profile) == dir->profiles.end()) {
      return fail("invalid_config", "order",
                  "acme.profile \"" + opts_.profile + "\" is not offered by the CA");
    }

    // 2. Account.
    auto acct = timed("account", [&] { return ensure_account(); });
    if (!acct) return acct.error();

    // 3. Order.
    auto order = timed("order", [&] { return create_order(); });
    if (!order) return order.error();
    const std::string order_url = order->first;
    const boost::json::value order_json = order->second;

    std::vector<Authorization> authzs;
    auto authz_status = timed("authorizations", [&] { return read_authorizations(order_json, authzs); });
    if (!authz_status) return authz_status.error();

    // 4. TXT records.
    auto presented = timed("dns_present", [&] { return present_all(authzs); });
    if (!presented) return presented.error();

    // 5. Propagation.
    if (!authzs.empty()) {
      auto visible = timed("propagation", [&]() -> Step {
        auto s = wait_for_propagation(opts_.propagation, presented_,
                                      [this](milliseconds d) { return sleep(d); });
        if (s) return {};
        if (s.error().code == Errc::cancelled) return fail("cancelled", "propagation", "attempt cancelled");
        if (s.error().code == Errc::invalid_argument) {
          return fail("invalid_config", "propagation", s.error().detail);
        }
        return fail("propagation_timeout", "propagation", s.error().detail);
      });
      if (!visible) return visible.error();
    }

    // 6. Respond and poll the authorizations.
    auto validated = timed("validation", [&] { return validate(authzs); });
    if (!validated) return validated.error();

    // 7. Finalize.
    std::string key_pem;
    auto cert_url = timed("finalize", [&] { return finalize(order_url, key_pem); });
    if (!cert_url) return cert_url.error();

    // 8. Download.
    return timed("download", [&] { return download(*cert_url, key_pem); });
  }

  // --- account -----------------------------------------------------------------------

  std::string account_prefix() const { return account_storage_prefix(opts_.directory_url); }

  Result<PkeyPtr> load_or_create_account_key() {
    const std::string key = account_prefix() + "/account.key";
    auto stored = storage_.load(key);
    if (!stored) return stored.error();
    if (*stored) {
      auto k = load_private_key(**stored);
      if (k) return k;
      kLog.warn("stored account key does not parse; registering a new account", {});
    }
    auto k = generate_key(KeyType::ec256);
    if (!k) return k.error();
    auto pem = private_key_pem(k->get());
    if (!pem) return pem.error();
    if (auto s = storage_.store(key, *pem); !s) return s.error();
    (void)storage_.remove(account_prefix() + "/account.json");
    return k;
  }

  Step ensure_account() {
    auto stored = storage_.load(account_prefix() + "/account.json");
    if (stored && *stored) {
      auto json = parse_json_object(**stored);
      if (json && str_of(&*json, "directory_url") == opts_.directory_url &&
          !str_of(&*json, "url").empty()) {
        client_->set_account_url(str_of(&*json, "url"));
        account_from_storage_ = true;
        return {};
      }
    }
    return register_account();
  }

  Step register_account() {
    if (directory_.external_account_required && opts_.eab_kid.empty()) {
      return fail("account", "account",
                  "the CA requires external account binding; set acme.eab.kid and acme.eab.hmac");
    }
    boost::json::object payload;
    payload["termsOfServiceAgreed"] = true;
    if (!opts_.email.empty()) {
      payload["contact"] = boost::json::array{boost::json::value("mailto:" + opts_.email)};
    }
    if (!opts_.eab_kid.empty()) {
      auto mac_key = base64url_decode(opts_.eab_hmac);
      if (!mac_key || mac_key->empty()) {
        return fail("invalid_config", "account", "acme.eab.hmac is not valid base64url");
      }
      payload["externalAccountBinding"] = boost::json::parse(
          eab_jws(client_->account_jwk(), opts_.eab_kid, *mac_key, directory_.new_account));
    }
    auto r = client_->post(directory_.new_account, boost::json::serialize(payload), true);
    if (!r) return transport_failure(r.error(), "account");
    if (r->problem) return problem_failure(*r, "account");
    if (r->location.empty()) return fail("ca_rejected", "account", "newAccount answered without Location");
    client_->set_account_url(r->location);
    account_from_storage_ = false;
    kLog.info("account ready", {{"status", r->status == 201 ? "created" : "found"},
                                {"url", r->location}});
    boost::json::object record;
    record["url"] = r->location;
    record["directory_url"] = opts_.directory_url;
    record["contact"] = opts_.email.empty() ? "" : "mailto:" + opts_.email;
    record["eab_kid"] = opts_.eab_kid;
    record["created_at"] = format_rfc3339(clock_.wall());
    if (auto s = storage_.store(account_prefix() + "/account.json", boost::json::serialize(record)); !s) {
      return fail("store", "account", s.error().detail);
    }
    return {};
  }

  // --- order -------------------------------------------------------------------------

  boost::system::result<std::pair<std::string, boost::json::value>, Failure> create_order() {
    boost::json::object payload;
    boost::json::array ids;
    for (const auto& n : opts_.names) {
      boost::json::object id;
      id["type"] = "dns";
      id["value"] = n;
      ids.push_back(std::move(id));
    }
    payload["identifiers"] = std::move(ids);
    if (!opts_.profile.empty()) payload["profile"] = opts_.profile;
    const std::string body = boost::json::serialize(payload);
    auto r = client_->post(directory_.new_order, body);
    if (!r) return transport_failure(r.error(), "order");
    if (r->problem && r->problem->short_type() == "accountDoesNotExist" && account_from_storage_) {
      // The CA forgot the stored account (a new pebble, a reset staging CA): register again.
      kLog.info("stored account unknown to the CA; registering again", {});
      auto reg = register_account();
      if (!reg) return reg.error();
      r = client_->post(directory_.new_order, body);
      if (!r) return transport_failure(r.error(), "order");
    }
    if (r->problem) return problem_failure(*r, "order");
    if (r->location.empty() || !r->json.is_object()) {
      return fail("ca_rejected", "order", "newOrder answered without Location or order object");
    }
    kLog.info("order created", {{"url", r->location}});
    return std::make_pair(r->location, std::move(r->json));
  }

  Step read_authorizations(
      const boost::json::value& order, std::vector<Authorization>& out) {
    const auto* o = as_object(order);
    const auto* list = o ? o->if_contains("authorizations") : nullptr;
    if (list == nullptr || !list->is_array()) {
      return fail("ca_rejected", "order", "order has no authorizations");
    }
    for (const auto& u : list->get_array()) {
      if (!u.is_string()) continue;
      const std::string url(u.get_string());
      auto r = client_->post(url, "");
      if (!r) return transport_failure(r.error(), "order");
      if (r->problem) return problem_failure(*r, "order");
      const auto* a = as_object(r->json);
      const std::string status = str_of(a, "status");
      const auto* ident = a ? a->if_contains("identifier") : nullptr;
      const std::string value = ident ? str_of(as_object(*ident), "value") : "";
      if (status == "valid") {
        kLog.info("authorization already valid", {{"identifier", value}});
        continue;
      }
      if (status != "pending") {
        return fail("challenge_invalid", "order", "authorization for " + value + " is " + status);
      }
      Authorization az;
      az.url = url;
      const auto* wildcard = a->if_contains("wildcard");
      const bool is_wildcard = wildcard != nullptr && wildcard->is_bool() && wildcard->get_bool();
      az.identifier = is_wildcard && !value.starts_with("*.") ? "*." + value : value;
      if (const auto* chs = a->if_contains("challenges"); chs != nullptr && chs->is_array()) {
        for (const auto& c : chs->get_array()) {
          const auto* co = as_object(c);
          if (str_of(co, "type") != "dns-01") continue;
          az.challenge_url = str_of(co, "url");
          az.value = dns01_txt_value(str_of(co, "token"), client_->thumbprint());
        }
      }
      if (az.challenge_url.empty()) {
        return fail("ca_rejected", "order", "the CA offers no dns-01 challenge for " + value);
      }
      std::string base = value.starts_with("*.") ? value.substr(2) : value;
      az.fqdn = "_acme-challenge." + base + (base.ends_with('.') ? "" : ".");
      out.push_back(std::move(az));
    }
    return {};
  }

  // --- DNS ---------------------------------------------------------------------------

  Step present_all(const std::vector<Authorization>& authzs) {
    for (const auto& az : authzs) {
      if (is_cancelled()) return fail("cancelled", "dns_present", "attempt cancelled");
      const TxtRecord rec{az.fqdn, az.value};
      // Written down before the provider is called, so a crash cannot forget it.
      if (auto s = add_pending(rec); !s) return fail("store", "dns_present", s.error().detail);
      auto p = provider_.present(rec.fqdn, rec.value);
      if (!p) {
        // The provider may have added it anyway (a lost answer): cleanup will try it too.
        presented_.push_back(rec);
        const std::string code = p.error().code == Errc::invalid_argument ? "dns_auth" : "dns_unavailable";
        return fail(code, "dns_present", p.error().detail);
      }
      presented_.push_back(rec);
      kLog.info("TXT record presented", {{"fqdn", rec.fqdn}, {"identifier", az.identifier}});
    }
    return {};
  }

  Status cleanup_presented() {
    Status first = ok();
    std::vector<TxtRecord> kept;
    for (const auto& r : presented_) {
      if (auto c = provider_.cleanup(r.fqdn, r.value); !c) {
        if (first) first = c.error();
        kept.push_back(r);
        continue;
      }
      kLog.info("TXT record removed", {{"fqdn", r.fqdn}});
      if (auto s = remove_pending(r); !s && first) first = s.error();
    }
    presented_ = std::move(kept);
    return first;
  }

  Result<std::vector<TxtRecord>> load_pending() {
    auto raw = storage_.load(kPendingKey);
    if (!raw) return raw.error();
    std::vector<TxtRecord> out;
    if (!*raw) return out;
    auto json = parse_json(**raw);
    if (!json || !json->is_array()) {
      kLog.warn("pending.json does not parse; ignoring it", {});
      return out;
    }
    for (const auto& v : json->get_array()) {
      const auto* o = as_object(v);
      TxtRecord r{str_of(o, "fqdn"), str_of(o, "value")};
      if (!r.fqdn.empty() && !r.value.empty()) out.push_back(std::move(r));
    }
    return out;
  }

  Status save_pending(const std::vector<TxtRecord>& records) {
    if (records.empty()) return storage_.remove(kPendingKey);
    boost::json::array arr;
    for (const auto& r : records) {
      boost::json::object o;
      o["fqdn"] = r.fqdn;
      o["value"] = r.value;
      o["provider"] = provider_.name();
      arr.push_back(std::move(o));
    }
    return storage_.store(kPendingKey, boost::json::serialize(arr));
  }

  Status add_pending(const TxtRecord& rec) {
    auto list = load_pending();
    if (!list) return list.error();
    for (const auto& r : *list) {
      if (r.fqdn == rec.fqdn && r.value == rec.value) return ok();
    }
    list->push_back(rec);
    return save_pending(*list);
  }

  Status remove_pending(const TxtRecord& rec) {
    auto list = load_pending();
    if (!list) return list.error();
    std::erase_if(*list, [&](const TxtRecord& r) { return r.fqdn == rec.fqdn && r.value == rec.value; });
    return save_pending(*list);
  }

  // --- validation --------------------------------------------------------------------

  Step validate(const std::vector<Authorization>& authzs) {
    for (const auto& az : authzs) {
      auto r = client_->post(az.challenge_url, "{}");
      if (!r) return transport_failure(r.error(), "validation");
      if (r->problem) return problem_failure(*r, "validation");
    }
    kLog.info("challenges answered", {{"count", static_cast<std::int64_t>(authzs.size())}});
    const auto deadline = std::chrono::steady_clock::now() + opts_.validation_timeout;
    for (std::size_t i = 0; i < authzs.size(); ++i) {
      milliseconds backoff = seconds(1);
      for (;;) {
        auto r = client_->post(authzs[i].url, "");
        if (!r) return transport_failure(r.error(), "validation");
        if (r->problem) return problem_failure(*r, "validation");
        const auto* a = as_object(r->json);
        const std::string status = str_of(a, "status");
        if (status == "valid") break;
        if (status == "invalid" || status == "deactivated" || status == "expired" ||
            status == "revoked") {
          std::string detail = "authorization for " + authzs[i].identifier + " is " + status;
          if (const auto* chs = a->if_contains("challenges"); chs != nullptr && chs->is_array()) {
            for (const auto& c : chs->get_array()) {
              const auto* co = as_object(c);
              const auto* err = co ? co->if_contains("error") : nullptr;
              if (err != nullptr && err->is_object()) {
                detail += ": " + str_of(as_object(*err), "detail");
                const std::string type = str_of(as_object(*err), "type");
                if (!type.empty()) detail += " (" + type + ")";
              }
            }
          }
          deactivate_others(authzs, i);
          return fail("challenge_invalid", "validation", detail);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
          deactivate_others(authzs, i);
          return fail("ca_unavailable", "validation", "validation did not finish in time");
        }
        if (!sleep(next_poll_wait(r->retry_after, backoff))) {
          return fail("cancelled", "validation", "attempt cancelled");
        }
      }
    }
    return {};
  }

  void deactivate_others(const std::vector<Authorization>& authzs, std::size_t failed) {
    for (std::size_t j = 0; j < authzs.size(); ++j) {
      if (j == failed) continue;
      auto r = client_->post(authzs[j].url, R"({"status":"deactivated"})");
      if (!r || r->problem) {
        kLog.debug("authorization not deactivated", {{"identifier", authzs[j].identifier}});
      }
    }
  }

  // --- finalize and download ----------------------------------------------------------

  // Polls the order until its status leaves `waiting_status`.
  boost::system::result<boost::json::value, Failure> poll_order(const std::string& url,
                                                                const std::string& step,
                                                                boost::json::value current) {
    milliseconds backoff = seconds(1);
    std::optional<seconds> retry_after;
    const auto deadline = std::chrono::steady_clock::now() + opts_.validation_timeout;
    for (;;) {
      const std::string status = str_of(as_object(current), "status");
      if (status != "pending" && status != "processing") return current;
      if (std::chrono::steady_clock::now() >= deadline) {
        return fail("ca_unavailable", step, "order still " + status + " at the deadline");
      }
      if (!sleep(next_poll_wait(retry_after, backoff))) return fail("cancelled", step, "attempt cancelled");
      auto r = client_->post(url, "");
      if (!r) return transport_failure(r.error(), step);
      if (r->problem) return problem_failure(*r, step);
      retry_after = r->retry_after;
      current = std::move(r->json);
    }
  }

  boost::system::result<std::string, Failure> finalize(const std::string& order_url, std::string& key_pem) {
    auto r = client_->post(order_url, "");
    if (!r) return transport_failure(r.error(), "finalize");
    if (r->problem) return problem_failure(*r, "finalize");
    auto order = poll_order(order_url, "finalize", std::move(r->json));
    if (!order) return order.error();
    const auto* o = as_object(*order);
    if (str_of(o, "status") != "ready") {
      return fail("ca_rejected", "finalize", "order is " + str_of(o, "status") + ", not ready");
    }
    auto key = generate_key(opts_.key_type);
    if (!key) return fail("certificate_invalid", "finalize", key.error().detail);
    auto pem = private_key_pem(key->get());
    if (!pem) return fail("certificate_invalid", "finalize", pem.error().detail);
    key_pem = std::move(*pem);
    auto csr = make_csr_der(key->get(), opts_.names);
    if (!csr) return fail("invalid_config", "finalize", csr.error().detail);
    boost::json::object payload;
    payload["csr"] = base64url_encode(*csr);
    auto f = client_->post(str_of(o, "finalize"), boost::json::serialize(payload));
    if (!f) return transport_failure(f.error(), "finalize");
    if (f->problem) return problem_failure(*f, "finalize");
    auto done = poll_order(order_url, "finalize", std::move(f->json));
    if (!done) return done.error();
    const auto* d = as_object(*done);
    if (str_of(d, "status") != "valid" || str_of(d, "certificate").empty()) {
      return fail("ca_rejected", "finalize", "order ended " + str_of(d, "status") + " without a certificate");
    }
    return boost::system::result<std::string, Failure>(boost::system::in_place_value,
                                                       str_of(d, "certificate"));
  }

  IssueResult download(const std::string& url, std::string& key_pem) {
    auto r = client_->post(url, "", false, "application/pem-certificate-chain");
    if (!r) return transport_failure(r.error(), "download");
    if (r->problem) return problem_failure(*r, "download");
    auto bundle = inspect_certificate(r->body, std::move(key_pem));
    if (!bundle) return fail("certificate_invalid", "download", bundle.error().detail);
    if (!covers_names(*bundle, opts_.names)) {
      return fail("certificate_invalid", "download", "the certificate does not cover every name");
    }
    if (bundle->not_after <= clock_.wall()) {
      return fail("certificate_invalid", "download", "the certificate has already expired");
    }
    IssuedCertificate out;
    out.bundle = std::move(*bundle);
    out.account_url = client_->account_url();
    return out;
  }

  IssuerOptions opts_;
  DnsProvider& provider_;
  Storage& storage_;
  const Clock& clock_;
  HttpClient http_;
  Result<PkeyPtr> account_key_ = Error{Errc::internal, "no key yet"};
  std::unique_ptr<AcmeClient> client_;
  Directory directory_;
  bool account_from_storage_ = false;
  std::vector<TxtRecord> presented_;
  std::vector<std::pair<std::string, std::int64_t>> step_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
};

Issuer::Issuer(IssuerOptions options, DnsProvider& provider, Storage& storage, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), provider, storage, clock)) {}

Issuer::~Issuer() = default;

IssueResult Issuer::obtain() { return impl_->obtain(); }

Status Issuer::cleanup_leftovers() { return impl_->cleanup_leftovers(); }

void Issuer::cancel() { impl_->cancel(); }

}  // namespace sandboxd::acme
