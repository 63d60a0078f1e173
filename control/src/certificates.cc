#include "certificates.h"

#include "acme/certificate.h"
#include "acme/dns_provider.h"
#include "acme/manager.h"
#include "acme/storage.h"
#include "base/log.h"
#include "edge/preview_host.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <sys/stat.h>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace sandboxd::control {

namespace json = boost::json;

namespace {

constexpr log::Logger kLog{"tls"};
constexpr std::chrono::seconds kFilesPoll{30};
constexpr std::chrono::hours kPlaceholderLife{24};
constexpr std::chrono::hours kPlaceholderRenew{23};
constexpr std::chrono::hours kExpiryWarning{24 * 7};
constexpr std::chrono::hours kWarnEvery{24};

// The names the preview certificate must cover (SPEC §10): the wildcard, the suffix, and
// control.public_host when the wildcard does not cover it.
std::vector<std::string> wanted_names(const config::Config& c) {
  const std::string suffix = c.preview_suffix();
  std::vector<std::string> names{"*." + suffix, suffix};
  const std::string& host = c.control.public_host;
  if (!host.empty() && host != suffix &&
      !(host.size() > suffix.size() + 1 && host.ends_with("." + suffix) &&
        host.substr(0, host.size() - suffix.size() - 1).find('.') == std::string::npos)) {
    names.push_back(host);
  }
  return names;
}

std::optional<std::string> read_file(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path;
    return std::nullopt;
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

std::optional<FileStamp> stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileStamp{st.st_dev, st.st_ino, st.st_size,
                   st.st_mtim.tv_sec * 1'000'000'000 + st.st_mtim.tv_nsec};
}

std::string rfc3339(Clock::WallTime t) { return format_rfc3339(t); }

double unix_seconds(Clock::WallTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

Result<std::unique_ptr<acme::DnsProvider>> make_provider(const config::Config& c) {
  const config::DnsConfig& d = c.acme.dns;
  switch (d.provider) {
    case config::DnsProvider::rfc2136: {
      acme::Rfc2136Options o;
      o.nameserver = d.rfc2136.nameserver ? d.rfc2136.nameserver->str() : std::string();
      o.tsig_name = d.rfc2136.tsig_name;
      o.tsig_secret = d.rfc2136.tsig_secret.reveal();
      o.tsig_algorithm = std::string(config::to_string(d.rfc2136.tsig_algorithm));
      return acme::make_rfc2136_provider(std::move(o));
    }
    case config::DnsProvider::cloudflare: {
      acme::CloudflareOptions o;
      o.api_token = d.cloudflare.api_token.reveal();
      o.zone_id = d.cloudflare.zone_id;
      o.base_url = d.cloudflare.base_url;
      o.ca_bundle = c.acme.ca_bundle;
      return acme::make_cloudflare_provider(std::move(o));
    }
    case config::DnsProvider::exec: {
      acme::ExecOptions o;
      o.command = d.exec.command;
      return acme::make_exec_provider(std::move(o));
    }
    case config::DnsProvider::httpreq: {
      acme::HttpreqOptions o;
      o.url = d.httpreq.url;
      o.username = d.httpreq.username;
      o.password = d.httpreq.password.reveal();
      o.ca_bundle = c.acme.ca_bundle;
      return acme::make_httpreq_provider(std::move(o));
    }
    case config::DnsProvider::none:
      break;
  }
  return Error{Errc::invalid_argument, "tls.mode acme needs acme.dns.provider"};
}

acme::ManagerOptions manager_options(const config::Config& c) {
  acme::ManagerOptions m;
  acme::IssuerOptions& o = m.issuer;
  o.directory_url = c.acme.directory_url;
  o.ca_bundle = c.acme.ca_bundle;
  o.email = c.acme.email;
  o.eab_kid = c.acme.eab.kid;
  o.eab_hmac = c.acme.eab.hmac.reveal();
  switch (c.acme.key_type) {
    case config::AcmeKeyType::ec256: o.key_type = acme::KeyType::ec256; break;
    case config::AcmeKeyType::ec384: o.key_type = acme::KeyType::ec384; break;
    case config::AcmeKeyType::rsa2048: o.key_type = acme::KeyType::rsa2048; break;
    case config::AcmeKeyType::rsa4096: o.key_type = acme::KeyType::rsa4096; break;
  }
  o.profile = c.acme.profile;
  o.names = wanted_names(c);
  const config::PropagationConfig& p = c.acme.dns.propagation;
  o.propagation.delay = p.delay;
  o.propagation.timeout = p.timeout;
  o.propagation.check = p.check == config::PropagationCheck::off ? acme::PropagationCheck::off
                                                                 : acme::PropagationCheck::authoritative;
  for (const auto& ns : p.nameservers) o.propagation.nameservers.push_back(ns.str());
  m.cert_name = c.preview_suffix();
  m.renew_ratio = c.acme.renew_ratio;
  return m;
}

}  // namespace

class CertificateSource::Impl {
 public:
  Impl(const config::Config& c, const Clock& clock)
      : mode_(c.tls.mode), clock_(clock), names_(wanted_names(c)),
        cert_path_(c.tls.files.cert), key_path_(c.tls.files.key) {}

  ~Impl() { stop(); }

  Status init(const config::Config& c) {
    if (mode_ == config::TlsMode::files) {
      std::string error;
      if (!load_files(&error)) return Error{Errc::invalid_argument, "tls.files: " + error};
    } else if (mode_ == config::TlsMode::acme) {
      auto provider = make_provider(c);
      if (!provider) return provider.error();
      auto storage = acme::make_file_storage(c.data_dir + "/acme");
      manager_ = std::make_unique<acme::CertificateManager>(
          manager_options(c), std::move(*provider), std::move(storage),
          [this](std::shared_ptr<const acme::CertificateBundle> b) { on_issued(std::move(b)); });
      Status started = manager_->start();
      {
        std::lock_guard lock(mu_);
        starting_ = false;
      }
      if (!started) return started.error();
      if (!manager_->current()) {
        if (Status made = make_placeholder(); !made) return made.error();
      }
    }
    if (mode_ != config::TlsMode::off) thread_ = std::thread([this] { run(); });
    return ok();
  }

  std::optional<edge::TlsCertificates> initial() {
    std::lock_guard lock(mu_);
    if (!latest_) return std::nullopt;
    handed_ = generation_;
    return *latest_;
  }

  void attach(edge::EdgeServer& e) {
    std::lock_guard lock(mu_);
    edge_ = &e;
    if (latest_ && handed_ != generation_) push_locked();
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      cv_.notify_all();
    }
    if (manager_) manager_->stop();
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mu_);
    edge_ = nullptr;
  }

  void reload_files() {
    if (mode_ != config::TlsMode::files) return;
    std::string error;
    if (load_files(&error)) {
      kLog.info("tls files reloaded", {{"cert", paths().first}});
    }
  }

  // SIGHUP (SPEC §9.4): files mode reads the pair from the paths of `c`; acme mode hands the
  // manager options that apply from its next attempt (new names start a new order).
  void reload(const config::Config& c) {
    if (mode_ == config::TlsMode::files) {
      {
        std::lock_guard lock(mu_);
        cert_path_ = c.tls.files.cert;
        key_path_ = c.tls.files.key;
      }
      reload_files();
    } else if (mode_ == config::TlsMode::acme && manager_) {
      auto provider = make_provider(c);
      if (!provider) {
        kLog.error("SIGHUP: the acme settings cannot be applied; the old ones stay",
                   {{"error", provider.error().message()}});
        return;
      }
      manager_->reconfigure(manager_options(c), std::move(*provider));
    }
  }

  // tls.files.cert and .key as they are now.
  std::pair<std::string, std::string> paths() {
    std::lock_guard lock(mu_);
    return {cert_path_, key_path_};
  }

  RenewOutcome renew_now(std::chrono::seconds* retry_after) {
    if (!manager_) return RenewOutcome::not_acme;
    switch (manager_->renew_now(retry_after)) {
      case acme::RenewRequest::started: return RenewOutcome::started;
      case acme::RenewRequest::in_progress: return RenewOutcome::in_progress;
      case acme::RenewRequest::rate_limited: return RenewOutcome::rate_limited;
    }
    return RenewOutcome::started;
  }

  std::string status_json() {
    json::object out;
    out["mode"] = config::to_string(mode_);
    json::array certs;
    if (mode_ == config::TlsMode::files) certs.push_back(files_status());
    if (mode_ == config::TlsMode::acme) certs.push_back(acme_status());
    out["certificates"] = std::move(certs);
    return json::serialize(out);
  }

  void write_metrics(TextWriter& w) {
    std::lock_guard lock(mu_);
    w.family("sandboxd_certificate_not_after_timestamp_seconds", "gauge",
             "Expiry of the served certificate.");
    if (served_not_after_) {
      w.sample("sandboxd_certificate_not_after_timestamp_seconds",
               {{"cert", "preview"}, {"source", served_source_}}, unix_seconds(*served_not_after_));
    }
    if (!manager_) return;
    const acme::CertificateStatus s = manager_->status();
    // Failures are counted from the manager's consecutive count, which only grows by one
    // per failed attempt and drops to zero on a success.
    if (s.consecutive_failures > seen_failures_) {
      const std::uint64_t n = static_cast<std::uint64_t>(s.consecutive_failures - seen_failures_);
      const bool limited = s.last_error && s.last_error->code == "rate_limited";
      (limited ? rate_limited_ : failures_) += n;
      if (s.last_error) failures_by_step_[s.last_error->step] += n;
    }
    seen_failures_ = s.consecutive_failures;
    w.family("sandboxd_acme_renewals_total", "counter", "ACME issuance attempts.");
    w.sample("sandboxd_acme_renewals_total", {{"result", "success"}}, static_cast<double>(issued_));
    w.sample("sandboxd_acme_renewals_total", {{"result", "failure"}}, static_cast<double>(failures_));
    w.sample("sandboxd_acme_renewals_total", {{"result", "rate_limited"}},
             static_cast<double>(rate_limited_));
    w.family("sandboxd_acme_failures_total", "counter", "Where ACME attempts failed.");
    for (const char* step : {"directory", "account", "order", "dns_present", "propagation",
                             "validation", "finalize", "download", "store", "cleanup"}) {
      auto it = failures_by_step_.find(step);
      w.sample("sandboxd_acme_failures_total", {{"step", step}},
               static_cast<double>(it == failures_by_step_.end() ? 0 : it->second));
    }
    w.family("sandboxd_acme_consecutive_failures", "gauge", "Failed attempts since the last success.");
    w.sample("sandboxd_acme_consecutive_failures", {}, s.consecutive_failures);
    if (s.next_renewal_at) {
      w.family("sandboxd_certificate_renew_at_timestamp_seconds", "gauge", "Next planned renewal.");
      w.sample("sandboxd_certificate_renew_at_timestamp_seconds", {{"cert", "preview"}},
               unix_seconds(*s.next_renewal_at));
    }
  }

 private:
  // ---- delivery ----

  // A placeholder never replaces a real certificate that got in first.
  void deliver(edge::TlsCertificates set, std::string_view source, Clock::WallTime not_after) {
    std::lock_guard lock(mu_);
    if (set.placeholder && latest_ && !latest_->placeholder) return;
    if (set.placeholder) placeholder_at_ = clock_.mono();
    latest_ = std::move(set);
    ++generation_;
    served_source_ = source;
    served_not_after_ = not_after;
    if (edge_ != nullptr) push_locked();
  }

  void push_locked() {
    handed_ = generation_;
    if (Status st = edge_->set_certificates(*latest_); !st) {
      kLog.error("the edge refused a certificate", {{"error", st.error().message()}});
    }
  }

  void on_issued(std::shared_ptr<const acme::CertificateBundle> b) {
    if (!b) return;
    kLog.info("certificate ready", {{"serial", b->serial},
                                    {"not_after", rfc3339(b->not_after)}});
    edge::TlsCertificates set;
    set.preview = edge::TlsCertificate{b->chain_pem, b->key_pem};
    {
      std::lock_guard lock(mu_);
      if (!starting_) ++issued_;  // what start() loads from storage is no issuance
      placeholder_at_.reset();
    }
    deliver(std::move(set), "acme", b->not_after);
  }

  Status make_placeholder() {
    auto cert = edge::make_placeholder_certificate(names_, kPlaceholderLife);
    if (!cert) return cert.error();
    edge::TlsCertificates set;
    set.preview = std::move(*cert);
    set.placeholder = true;
    deliver(std::move(set), "placeholder", clock_.wall() + kPlaceholderLife);
    kLog.info("serving a placeholder certificate until one is issued", {{"names", names_.front()}});
    return ok();
  }

  // Files mode: reads and checks the pair; the edge gets it only when it is good.
  bool load_files(std::string* error) {
    auto fail = [&](std::string why) {
      *error = std::move(why);
      std::lock_guard lock(mu_);
      files_error_ = *error;
      files_error_at_ = clock_.wall();
      ++files_errors_;
      kLog.error("tls files not loaded; the old pair keeps serving", {{"error", *error}});
      return false;
    };
    const auto [cert_path, key_path] = paths();
    const auto cert_stamp = stamp(cert_path);
    const auto key_stamp = stamp(key_path);
    auto chain = read_file(cert_path, error);
    if (!chain) return fail(*error);
    auto key = read_file(key_path, error);
    if (!key) return fail(*error);
    auto bundle = acme::inspect_certificate(*chain, *key);
    if (!bundle) return fail(bundle.error().message());
    if (bundle->not_after <= clock_.wall()) {
      return fail("the certificate in " + cert_path + " expired at " + rfc3339(bundle->not_after));
    }
    edge::TlsCertificates set;
    set.preview = edge::TlsCertificate{std::move(*chain), std::move(*key)};
    {
      std::lock_guard lock(mu_);
      if (edge_ != nullptr) {
        if (Status st = edge_->set_certificates(set); !st) {
          files_error_ = st.error().message();
          files_error_at_ = clock_.wall();
          ++files_errors_;
          return false;
        }
      }
      files_bundle_ = std::make_shared<acme::CertificateBundle>(std::move(*bundle));
      files_bundle_->key_pem.clear();  // kept by the edge only
      files_error_.reset();
      cert_stamp_ = cert_stamp;
      key_stamp_ = key_stamp;
      latest_ = std::move(set);
      ++generation_;
      if (edge_ != nullptr) handed_ = generation_;
      served_source_ = "files";
      served_not_after_ = files_bundle_->not_after;
    }
    return true;
  }

  // ---- the background thread ----

  void run() {
    std::unique_lock lock(mu_);
    while (!stopped_) {
      cv_.wait_for(lock, kFilesPoll);
      if (stopped_) return;
      lock.unlock();
      tick();
      lock.lock();
    }
  }

  void tick() {
    if (mode_ == config::TlsMode::files) {
      bool changed = false;
      {
        std::lock_guard lock(mu_);
        changed = stamp(cert_path_) != cert_stamp_ || stamp(key_path_) != key_stamp_;
      }
      std::string error;
      if (changed && load_files(&error)) {
        kLog.info("tls files changed; reloaded", {{"cert", paths().first}});
      }
      warn_if_expiring();
    }
    if (mode_ == config::TlsMode::acme) {
      bool renew = false;
      {
        std::lock_guard lock(mu_);
        renew = placeholder_at_ && clock_.mono() - *placeholder_at_ >= kPlaceholderRenew;
      }
      if (renew) (void)make_placeholder();
    }
  }

  void warn_if_expiring() {
    std::lock_guard lock(mu_);
    if (!files_bundle_) return;
    const auto now = clock_.wall();
    if (files_bundle_->not_after - now > kExpiryWarning) return;
    if (last_warning_ && clock_.mono() - *last_warning_ < kWarnEvery) return;
    last_warning_ = clock_.mono();
    kLog.warn("the tls.files certificate expires soon",
              {{"not_after", rfc3339(files_bundle_->not_after)}, {"cert", cert_path_}});
  }

  // ---- status ----

  json::object files_status() {
    std::lock_guard lock(mu_);
    json::object o;
    o["name"] = "preview";
    json::array domains;
    if (files_bundle_) {
      for (const auto& n : files_bundle_->names) domains.push_back(json::string(n));
    }
    o["domains"] = std::move(domains);
    o["source"] = "files";
    const auto now = clock_.wall();
    std::string status = "valid";
    if (!files_bundle_) {
      status = "missing";
    } else if (files_bundle_->not_after <= now) {
      status = "expired";
    } else if (files_error_) {
      status = "error";
    }
    o["status"] = status;
    if (files_bundle_) {
      o["serial"] = files_bundle_->serial;
      o["issuer"] = files_bundle_->issuer;
      o["key_type"] = files_bundle_->key_type;
      o["not_before"] = rfc3339(files_bundle_->not_before);
      o["not_after"] = rfc3339(files_bundle_->not_after);
    }
    o["paths"] = json::array{json::string(cert_path_), json::string(key_path_)};
    if (files_error_) {
      o["last_error"] = json::object{{"code", "invalid_certificate"}, {"step", "store"},
                                     {"message", *files_error_}, {"at", rfc3339(files_error_at_)}};
    }
    return o;
  }

  json::object acme_status() {
    const acme::CertificateStatus s = manager_->status();
    json::object o;
    o["name"] = "preview";
    json::array domains;
    for (const auto& n : s.domains) domains.push_back(json::string(n));
    o["domains"] = std::move(domains);
    o["source"] = s.status == "missing" ? "placeholder" : "acme";
    o["status"] = s.status;
    if (s.serial) o["serial"] = *s.serial;
    if (s.issuer) o["issuer"] = *s.issuer;
    if (s.key_type) o["key_type"] = *s.key_type;
    if (s.not_before) o["not_before"] = rfc3339(*s.not_before);
    if (s.not_after) o["not_after"] = rfc3339(*s.not_after);
    if (s.next_renewal_at) o["next_renewal_at"] = rfc3339(*s.next_renewal_at);
    o["renewal_method"] = s.renewal_method;
    if (s.ari_window_start && s.ari_window_end) {
      o["ari_window"] = json::object{{"start", rfc3339(*s.ari_window_start)},
                                     {"end", rfc3339(*s.ari_window_end)}};
    }
    o["in_progress"] = s.in_progress;
    if (s.last_attempt_at) o["last_attempt_at"] = rfc3339(*s.last_attempt_at);
    if (s.last_success_at) o["last_success_at"] = rfc3339(*s.last_success_at);
    o["consecutive_failures"] = s.consecutive_failures;
    if (s.next_attempt_at) o["next_attempt_at"] = rfc3339(*s.next_attempt_at);
    if (s.last_error) {
      o["last_error"] = json::object{{"code", s.last_error->code}, {"step", s.last_error->step},
                                     {"message", s.last_error->message},
                                     {"at", rfc3339(s.last_error->at)}};
    }
    json::object account{{"directory_url", s.directory_url}};
    if (s.account_url) account["url"] = *s.account_url;
    o["account"] = std::move(account);
    return o;
  }

  const config::TlsMode mode_;
  const Clock& clock_;
  const std::vector<std::string> names_;
  std::string cert_path_;  // tls.files.*, under mu_ (SIGHUP changes them)
  std::string key_path_;
  std::unique_ptr<acme::CertificateManager> manager_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  edge::EdgeServer* edge_ = nullptr;
  std::optional<edge::TlsCertificates> latest_;
  std::uint64_t generation_ = 0;
  std::uint64_t handed_ = 0;
  std::string_view served_source_ = "files";
  std::optional<Clock::WallTime> served_not_after_;
  std::optional<Clock::MonoTime> placeholder_at_;
  bool starting_ = true;
  std::uint64_t issued_ = 0;
  std::uint64_t failures_ = 0;
  std::uint64_t rate_limited_ = 0;
  int seen_failures_ = 0;
  std::map<std::string, std::uint64_t> failures_by_step_;
  // files mode
  std::shared_ptr<acme::CertificateBundle> files_bundle_;
  std::optional<std::string> files_error_;
  Clock::WallTime files_error_at_{};
  std::uint64_t files_errors_ = 0;
  std::optional<FileStamp> cert_stamp_;
  std::optional<FileStamp> key_stamp_;
  std::optional<Clock::MonoTime> last_warning_;
  std::thread thread_;
};

Result<std::unique_ptr<CertificateSource>> CertificateSource::create(const config::Config& config,
                                                                     const Clock& clock) {
  auto impl = std::make_unique<Impl>(config, clock);
  if (Status st = impl->init(config); !st) return st.error();
  return std::unique_ptr<CertificateSource>(new CertificateSource(std::move(impl)));
}

CertificateSource::CertificateSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CertificateSource::~CertificateSource() { impl_->stop(); }

std::optional<edge::TlsCertificates> CertificateSource::initial() const { return impl_->initial(); }
void CertificateSource::attach(edge::EdgeServer& edge) { impl_->attach(edge); }
void CertificateSource::stop() { impl_->stop(); }
void CertificateSource::reload_files() { impl_->reload_files(); }
void CertificateSource::reload(const config::Config& config) { impl_->reload(config); }
RenewOutcome CertificateSource::renew_now(std::chrono::seconds* retry_after) {
  return impl_->renew_now(retry_after);
}
std::string CertificateSource::status_json() const { return impl_->status_json(); }
void CertificateSource::write_metrics(TextWriter& w) const { impl_->write_metrics(w); }

}  // namespace sandboxd::control
