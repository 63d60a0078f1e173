// Shared pieces of the lab suites: issuer options pointed at the lab, the rfc2136 provider
// for its BIND, a temp data directory, and providers that wrap the real one to inject faults.
#pragma once

#include "acme/dns_provider.h"
#include "acme/issuer.h"
#include "lab.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace sandboxd::acme::testing {

inline const std::vector<std::string> kNames = {"*.preview.test", "preview.test"};
inline const std::string kChallengeName = "_acme-challenge.preview.test.";

inline IssuerOptions lab_issuer_options(const AcmeLab& lab) {
  IssuerOptions o;
  o.directory_url = lab.directory_url();
  o.ca_bundle = lab.https_ca_file();
  o.trust_system_cas = false;
  o.email = "ci@preview.test";
  o.names = kNames;
  o.propagation.nameservers = {lab.dns_address()};
  o.propagation.interval = std::chrono::milliseconds(200);
  o.propagation.timeout = std::chrono::seconds(20);
  o.http_timeout = std::chrono::seconds(10);
  o.validation_timeout = std::chrono::seconds(60);
  return o;
}

inline std::unique_ptr<DnsProvider> lab_rfc2136(const AcmeLab& lab, std::string secret = "") {
  auto p = make_rfc2136_provider({.nameserver = lab.dns_address(),
                                  .tsig_name = lab.tsig_name,
                                  .tsig_secret = secret.empty() ? lab.tsig_secret() : secret,
                                  .tsig_algorithm = "hmac-sha256",
                                  .timeout = std::chrono::seconds(5),
                                  .ttl = 60});
  if (!p) throw std::runtime_error(p.error().message());
  return std::move(*p);
}

class TempDataDir {
 public:
  TempDataDir() {
    char tmpl[] = "/tmp/acme-data.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = tmpl;
  }
  ~TempDataDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string acme() const { return path_ + "/acme"; }

 private:
  std::string path_;
};

// Wraps a real provider; `rewrite` may change the value actually presented for the n-th call
// (0-based) or return "" to skip presenting it while reporting success.
class FaultyProvider final : public DnsProvider {
 public:
  using Rewrite = std::function<std::string(int call, const std::string& value)>;
  FaultyProvider(std::unique_ptr<DnsProvider> real, Rewrite rewrite)
      : real_(std::move(real)), rewrite_(std::move(rewrite)) {}

  std::string_view name() const override { return "faulty"; }
  Status present(const std::string& fqdn, const std::string& value) override {
    const std::string actual = rewrite_(calls_++, value);
    presented_[value] = actual;
    if (actual.empty()) return ok();
    return real_->present(fqdn, actual);
  }
  Status cleanup(const std::string& fqdn, const std::string& value) override {
    auto it = presented_.find(value);
    const std::string actual = it == presented_.end() ? value : it->second;
    if (actual.empty()) return ok();
    return real_->cleanup(fqdn, actual);
  }

 private:
  std::unique_ptr<DnsProvider> real_;
  Rewrite rewrite_;
  int calls_ = 0;
  std::map<std::string, std::string> presented_;
};

}  // namespace sandboxd::acme::testing
