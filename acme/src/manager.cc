#include "acme/manager.h"

#include "ari.h"
#include "base/json.h"
#include "http_client.h"
#include "base/log.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace sandboxd::acme {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using WallTime = Clock::WallTime;

namespace {

constexpr log::Logger kLog{"acme"};

std::optional<WallTime> parse_time(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  std::tm tm{};
  const std::string text(v->get_string());
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

void put_time(boost::json::object& o, std::string_view key, const std::optional<WallTime>& t) {
  if (t) o[key] = format_rfc3339(*t);
}

std::string str_of(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::set<std::string> lower_set(const std::vector<std::string>& names) {
  std::set<std::string> out;
  for (auto n : names) {
    std::transform(n.begin(), n.end(), n.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.insert(std::move(n));
  }
  return out;
}

}  // namespace

class CertificateManager::Impl {
 public:
  Impl(ManagerOptions o, std::unique_ptr<DnsProvider> p, std::shared_ptr<Storage> s, OnCertificate cb)
      : opts_(std::move(o)), provider_(std::move(p)), storage_(std::move(s)), on_cert_(std::move(cb)),
        rng_(std::random_device{}()) {
    if (opts_.clock == nullptr) opts_.clock = &system_clock();
  }

  ~Impl() { stop(); }

  Status start() {
    std::shared_ptr<const CertificateBundle> loaded;
    {
      std::lock_guard lock(mu_);
      if (thread_.joinable()) return ok();
      auto r = load_locked();
      if (!r) return r.error();
      loaded = current_;
      stopping_ = false;
    }
    if (loaded && on_cert_) {
      on_cert_(loaded);
      std::lock_guard lock(mu_);
      published_ = loaded;
    }
    thread_ = std::thread([this] { loop(); });
    return ok();
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      if (issuer_ != nullptr) issuer_->cancel();
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  RenewRequest renew_now(std::chrono::seconds* retry_after) {
    std::lock_guard lock(mu_);
    if (in_progress_) return RenewRequest::in_progress;
    const WallTime now = opts_.clock->wall();
    if (rate_limited_until_ && *rate_limited_until_ > now) {
      if (retry_after) *retry_after = std::chrono::ceil<std::chrono::seconds>(*rate_limited_until_ - now);
      return RenewRequest::rate_limited;
    }
    forced_ = true;
    cv_.notify_all();
    return RenewRequest::started;
  }

  void reconfigure(ManagerOptions o, std::unique_ptr<DnsProvider> p) {
    std::lock_guard lock(mu_);
    if (o.clock == nullptr) o.clock = &system_clock();
    next_opts_ = std::move(o);
    next_provider_ = std::move(p);
    cv_.notify_all();
  }

  CertificateStatus status() const {
    std::lock_guard lock(mu_);
    const WallTime now = opts_.clock->wall();
    // What the callback has been handed: a new certificate shows once it serves.
    const auto& shown = on_cert_ ? published_ : current_;
    CertificateStatus s;
    s.name = opts_.cert_name;
    s.domains = opts_.issuer.names;
    s.directory_url = opts_.issuer.directory_url;
    if (!account_url_.empty()) s.account_url = account_url_;
    s.in_progress = in_progress_;
    s.consecutive_failures = failures_;
    s.last_attempt_at = last_attempt_;
    s.last_success_at = last_success_;
    s.last_error = last_error_;
    if (shown) {
      s.serial = shown->serial;
      s.issuer = shown->issuer;
      s.key_type = shown->key_type;
      s.not_before = shown->not_before;
      s.not_after = shown->not_after;
      s.next_renewal_at = renew_at_;
      s.renewal_method = renewal_method_;
      if (ari_window_) {
        s.ari_window_start = ari_window_->start;
        s.ari_window_end = ari_window_->end;
      }
    }
    if (const auto due = next_attempt_locked(); due && *due > now && (failures_ > 0 || rate_limited_until_)) {
      s.next_attempt_at = due;
    }
    if (!shown) {
      s.status = "missing";
    } else if (now >= shown->not_after) {
      s.status = "expired";
    } else if (last_error_) {
      s.status = "error";
    } else if (renew_at_ && now >= *renew_at_) {
      s.status = "renewing";
    } else {
      s.status = "valid";
    }
    return s;
  }

  std::shared_ptr<const CertificateBundle> current() const {
    std::lock_guard lock(mu_);
    return current_;
  }

 private:
  std::string prefix() const { return cert_storage_prefix(opts_.cert_name); }

  double random01_locked() {
    if (opts_.random01) return opts_.random01();
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  }

  bool names_match_locked() const {
    return current_ && lower_set(current_->names) == lower_set(opts_.issuer.names);
  }

  // The end of a backoff, rate-limit or lock wait; nullopt when none applies.
  std::optional<WallTime> next_attempt_locked() const {
    std::optional<WallTime> at;
    auto later = [&](const std::optional<WallTime>& t) {
      if (t && (!at || *t > *at)) at = t;
    };
    if (failures_ > 0) later(backoff_until_);
    later(rate_limited_until_);
    later(lock_retry_at_);
    return at;
  }

  // When the next attempt should start.
  WallTime due_locked(WallTime now) const {
    WallTime due = names_match_locked() && renew_at_ ? *renew_at_ : now;
    if (const auto wait = next_attempt_locked(); wait && *wait > due) due = *wait;
    return due;
  }

  // Reads the stored certificate and its meta. A pair that does not match is ignored.
  Status load_locked() {
    const std::string p = prefix();
    auto key = storage_->load(p + "/key.pem");
    if (!key) return key.error();
    auto cert = storage_->load(p + "/cert.pem");
    if (!cert) return cert.error();
    auto meta = storage_->load(p + "/meta.json");
    if (!meta) return meta.error();
    if (*meta) {
      if (auto json = parse_json_object(**meta)) {
        const auto& m = *json;
        last_attempt_ = parse_time(m, "last_attempt");
        last_success_ = parse_time(m, "last_success");
        backoff_until_ = parse_time(m, "next_attempt");
        rate_limited_until_ = parse_time(m, "rate_limited_until");
        if (const auto* f = m.if_contains("failures"); f != nullptr && f->is_int64()) {
          failures_ = static_cast<int>(f->get_int64());
        }
        if (const auto* e = m.if_contains("last_error"); e != nullptr && e->is_object()) {
          const auto& eo = e->get_object();
          last_error_ = LastError{str_of(eo, "code"), str_of(eo, "step"), str_of(eo, "message"),
                                  parse_time(eo, "at").value_or(WallTime{})};
        }
        stored_renew_at_ = parse_time(m, "renew_at");
        stored_serial_ = str_of(m, "serial");
        account_url_ = str_of(m, "account_url");
      }
    }
    if (*key && *cert) {
      auto bundle = inspect_certificate(**cert, **key);
      if (!bundle) {
        kLog.warn("stored certificate ignored", {{"name", opts_.cert_name}, {"error", bundle.error().detail}});
      } else if (!current_ || current_->serial != bundle->serial) {
        current_ = std::make_shared<const CertificateBundle>(std::move(*bundle));
        fresh_certificate_locked();
        if (stored_renew_at_ && stored_serial_ == current_->serial) renew_at_ = stored_renew_at_;
        kLog.info("stored certificate loaded", {{"name", opts_.cert_name},
                                                {"serial", current_->serial},
                                                {"not_after", format_rfc3339(current_->not_after)},
                                                {"renew_at", format_rfc3339(*renew_at_)}});
        return ok();
      }
    }
    return ok();
  }

  std::string meta_json_locked() const {
    boost::json::object m;
    boost::json::array names;
    for (const auto& n : opts_.issuer.names) names.emplace_back(n);
    m["names"] = std::move(names);
    if (current_) {
      m["serial"] = current_->serial;
      m["issuer"] = current_->issuer;
      m["not_before"] = format_rfc3339(current_->not_before);
      m["not_after"] = format_rfc3339(current_->not_after);
    }
    put_time(m, "renew_at", renew_at_);
    if (ari_window_) {
      boost::json::object w;
      w["start"] = format_rfc3339(ari_window_->start);
      w["end"] = format_rfc3339(ari_window_->end);
      m["ari_window"] = std::move(w);
    }
    put_time(m, "last_attempt", last_attempt_);
    put_time(m, "last_success", last_success_);
    if (failures_ > 0) put_time(m, "next_attempt", backoff_until_);
    put_time(m, "rate_limited_until", rate_limited_until_);
    if (last_error_) {
      boost::json::object e;
      e["code"] = last_error_->code;
      e["step"] = last_error_->step;
      e["message"] = last_error_->message;
      e["at"] = format_rfc3339(last_error_->at);
      m["last_error"] = std::move(e);
    }
    m["failures"] = failures_;
    if (!account_url_.empty()) m["account_url"] = account_url_;
    return boost::json::serialize(m);
  }

  // Writes key, cert, then meta (SPEC §10.3 order). Called without mu_ held.
  Status save(const std::shared_ptr<const CertificateBundle>& bundle, const std::string& meta) {
    const std::string p = prefix();
    if (bundle) {
      if (auto s = storage_->store(p + "/key.pem", bundle->key_pem); !s) return s;
      if (auto s = storage_->store(p + "/cert.pem", bundle->chain_pem); !s) return s;
    }
    return storage_->store(p + "/meta.json", meta);
  }

  void save_meta(std::unique_lock<std::mutex>& lock) {
    const std::string meta = meta_json_locked();
    lock.unlock();
    if (auto s = storage_->store(prefix() + "/meta.json", meta); !s) {
      kLog.warn("cannot store certificate meta", {{"error", s.error().detail}});
    }
    lock.lock();
  }

  void loop() {
    std::unique_lock lock(mu_);
    // TXT values a previous run presented and never removed (SPEC §10.1 step 13).
    if (!stopping_) {
      Issuer cleaner(opts_.issuer, *provider_, *storage_, *opts_.clock);
      lock.unlock();
      if (auto left = cleaner.cleanup_leftovers(); !left) {
        kLog.warn("leftover TXT records not removed", {{"error", left.error().detail}});
      }
      lock.lock();
    }
    auto last_expiry_log = std::chrono::steady_clock::time_point{};
    while (!stopping_) {
      if (next_opts_) {
        opts_ = std::move(*next_opts_);
        next_opts_.reset();
        if (next_provider_) provider_ = std::move(next_provider_);
      }
      const WallTime now = opts_.clock->wall();
      if (current_ && now >= current_->not_after &&
          std::chrono::steady_clock::now() - last_expiry_log >= std::chrono::hours(1)) {
        last_expiry_log = std::chrono::steady_clock::now();
        kLog.error("serving an expired certificate", {{"name", opts_.cert_name},
                                                      {"not_after", format_rfc3339(current_->not_after)}});
      }
      if (unsaved_ && now >= store_retry_at_) retry_store(lock);
      if (current_ && ari_poll_at_ && *ari_poll_at_ <= now) {
        poll_ari(lock);
        continue;
      }

      const WallTime due = due_locked(now);
      if (forced_ || due <= now) {
        forced_attempt_ = forced_;
        forced_ = false;
        in_progress_ = true;
        attempt(lock);
        in_progress_ = false;
        continue;
      }
      WallTime wake = std::min(due, now + opts_.max_sleep);
      if (unsaved_) wake = std::min(wake, store_retry_at_);
      if (ari_poll_at_) wake = std::min(wake, *ari_poll_at_);
      const auto wait = std::max(milliseconds(1), duration_cast<milliseconds>(wake - now));
      cv_.wait_for(lock, wait, [this] { return stopping_ || forced_ || next_opts_.has_value(); });
    }
  }

  void retry_store(std::unique_lock<std::mutex>& lock) {
    auto bundle = current_;
    const std::string meta = meta_json_locked();
    lock.unlock();
    Status s = save(bundle, meta);
    lock.lock();
    if (s) {
      unsaved_ = false;
      if (last_error_ && last_error_->code == "store") last_error_.reset();
      kLog.info("certificate stored", {{"name", opts_.cert_name}});
    } else {
      store_retry_at_ = opts_.clock->wall() + opts_.store_retry;
    }
  }

  // One attempt; entered and left with the lock held, runs the issuance without it.
  void attempt(std::unique_lock<std::mutex>& lock) {
    lock.unlock();
    auto held = storage_->try_lock();
    lock.lock();
    const WallTime now = opts_.clock->wall();
    if (!held) {
      record_failure(Failure{"store", "store", held.error().detail, std::nullopt}, now, lock);
      return;
    }
    if (!*held) {
      // Another process is issuing: look again later and take what it stored.
      lock_retry_at_ = now + opts_.lock_retry;
      kLog.info("storage lock held elsewhere; retrying later", {{"name", opts_.cert_name}});
      reload_after_other(lock);
      return;
    }
    lock_retry_at_.reset();
    reload_after_other(lock);
    if (!forced_now_due(now)) return;

    Issuer issuer(opts_.issuer, *provider_, *storage_, *opts_.clock);
    if (stopping_) return;
    issuer_ = &issuer;
    last_attempt_ = now;
    save_meta(lock);
    lock.unlock();
    IssueResult result = issuer.obtain();
    lock.lock();
    issuer_ = nullptr;
    const WallTime end = opts_.clock->wall();
    if (!result) {
      if (result.error().code == "cancelled" && stopping_) return;
      record_failure(result.error(), end, lock);
      return;
    }

    auto bundle = std::make_shared<const CertificateBundle>(std::move(result->bundle));
    current_ = bundle;
    failures_ = 0;
    last_error_.reset();
    backoff_until_.reset();
    rate_limited_until_.reset();
    last_success_ = end;
    account_url_ = result->account_url;
    fresh_certificate_locked();
    const std::string meta = meta_json_locked();
    lock.unlock();
    Status stored = save(bundle, meta);
    if (on_cert_) on_cert_(bundle);
    lock.lock();
    published_ = bundle;
    if (!stored) {
      // The new certificate serves from memory; the write is retried every store_retry.
      unsaved_ = true;
      store_retry_at_ = end + opts_.store_retry;
      last_error_ = LastError{"store", "store", stored.error().detail, end};
      kLog.error("cannot store the new certificate", {{"error", stored.error().detail}});
    }
    kLog.info("next renewal", {{"name", opts_.cert_name}, {"renew_at", format_rfc3339(*renew_at_)}});
  }

  // A new (issued or loaded) certificate: the ratio time, and an ARI poll soon.
  void fresh_certificate_locked() {
    ratio_renew_at_ = renewal_time(current_->not_before, current_->not_after, opts_.renew_ratio,
                                   random01_locked());
    renew_at_ = ratio_renew_at_;
    renewal_method_ = "ratio";
    ari_window_.reset();
    ari_poll_at_ = opts_.clock->wall();
  }

  // SPEC §10.2 ARI: the CA's window overrides the ratio; a time is drawn inside it, again
  // only when the window changes; a window already over means now. Without renewalInfo,
  // or when the poll fails, the ratio applies. Entered and left with the lock held.
  void poll_ari(std::unique_lock<std::mutex>& lock) {
    const auto cert = current_;
    const IssuerOptions io = opts_.issuer;
    lock.unlock();
    HttpClient http(HttpClientOptions{.ca_file = io.ca_bundle, .system_cas = io.trust_system_cas,
                                      .user_agent = io.user_agent, .timeout = io.http_timeout,
                                      .max_body = 64 * 1024});
    auto info = fetch_renewal_info(http, io.directory_url, cert->chain_pem, opts_.clock->wall());
    lock.lock();
    if (current_ != cert) return;  // a new certificate meanwhile: it polls for itself
    const WallTime now = opts_.clock->wall();
    if (!info) {
      renew_at_ = ratio_renew_at_;
      renewal_method_ = "ratio";
      ari_window_.reset();
      if (info.error().code == Errc::not_found) {
        ari_poll_at_.reset();  // the CA has no ARI: ask again with the next certificate
      } else {
        ari_poll_at_ = now + std::chrono::hours(6);
        kLog.warn("ARI poll failed; the ratio applies", {{"name", opts_.cert_name},
                                                        {"error", info.error().detail}});
      }
      return;
    }
    if (!ari_window_ || *ari_window_ != info->window) {
      ari_window_ = info->window;
      renew_at_ = info->window.end <= now ? now : ari_renewal_time(info->window, random01_locked());
      renewal_method_ = "ari";
      kLog.info("ARI window", {{"name", opts_.cert_name},
                               {"start", format_rfc3339(info->window.start)},
                               {"end", format_rfc3339(info->window.end)},
                               {"renew_at", format_rfc3339(*renew_at_)}});
      save_meta(lock);
    }
    ari_poll_at_ = now + info->poll_after;
  }

  // After an explicit renew or a due time the attempt goes on; a certificate that another
  // process stored in the meantime may have made it unnecessary.
  bool forced_now_due(WallTime now) {
    if (forced_attempt_) {
      forced_attempt_ = false;
      return true;
    }
    return due_locked(now) <= now;
  }

  void reload_after_other(std::unique_lock<std::mutex>& lock) {
    const auto before = current_;
    if (auto r = load_locked(); !r) {
      kLog.warn("cannot reload the stored certificate", {{"error", r.error().detail}});
      return;
    }
    if (current_ != before && current_ && on_cert_) {
      auto fresh = current_;
      lock.unlock();
      on_cert_(fresh);
      lock.lock();
      published_ = fresh;
    }
  }

  void record_failure(const Failure& f, WallTime now, std::unique_lock<std::mutex>& lock) {
    ++failures_;
    last_error_ = LastError{f.code, f.step, f.message, now};
    const milliseconds delay = backoff_delay(failures_, random01_locked(), opts_.backoff);
    backoff_until_ = now + delay;
    if (f.code == "rate_limited") {
      rate_limited_until_ = now + f.retry_after.value_or(opts_.default_rate_limit_wait);
    }
    kLog.warn("certificate attempt failed",
              {{"name", opts_.cert_name}, {"code", f.code}, {"step", f.step},
               {"failures", failures_}, {"retry_in_ms", delay.count()}});
    save_meta(lock);
  }

  ManagerOptions opts_;
  std::unique_ptr<DnsProvider> provider_;
  std::shared_ptr<Storage> storage_;
  OnCertificate on_cert_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  std::mt19937_64 rng_;
  bool stopping_ = false;
  bool forced_ = false;
  bool forced_attempt_ = false;
  bool in_progress_ = false;
  bool unsaved_ = false;
  Issuer* issuer_ = nullptr;
  std::optional<ManagerOptions> next_opts_;
  std::unique_ptr<DnsProvider> next_provider_;

  std::shared_ptr<const CertificateBundle> current_;
  std::shared_ptr<const CertificateBundle> published_;  // the last one on_cert_ returned from
  std::optional<WallTime> renew_at_;
  std::optional<WallTime> stored_renew_at_;
  std::optional<WallTime> ratio_renew_at_;
  std::string renewal_method_ = "ratio";
  std::optional<RenewalWindow> ari_window_;
  std::optional<WallTime> ari_poll_at_;
  std::string stored_serial_;
  std::optional<WallTime> last_attempt_;
  std::optional<WallTime> last_success_;
  std::optional<WallTime> backoff_until_;
  std::optional<WallTime> rate_limited_until_;
  std::optional<WallTime> lock_retry_at_;
  WallTime store_retry_at_{};
  int failures_ = 0;
  std::optional<LastError> last_error_;
  std::string account_url_;
};

CertificateManager::CertificateManager(ManagerOptions options, std::unique_ptr<DnsProvider> provider,
                                       std::shared_ptr<Storage> storage, OnCertificate on_certificate)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(provider), std::move(storage),
                                   std::move(on_certificate))) {}

CertificateManager::~CertificateManager() = default;

Status CertificateManager::start() { return impl_->start(); }
void CertificateManager::stop() { impl_->stop(); }
RenewRequest CertificateManager::renew_now(std::chrono::seconds* retry_after) {
  return impl_->renew_now(retry_after);
}
void CertificateManager::reconfigure(ManagerOptions options, std::unique_ptr<DnsProvider> provider) {
  impl_->reconfigure(std::move(options), std::move(provider));
}
CertificateStatus CertificateManager::status() const { return impl_->status(); }
std::shared_ptr<const CertificateBundle> CertificateManager::current() const {
  return impl_->current();
}

}  // namespace sandboxd::acme
