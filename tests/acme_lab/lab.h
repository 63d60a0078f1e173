// The ACME lab: a private BIND9 (authoritative for preview.test, RFC 2136 updates with a
// TSIG hmac-sha256 key) and pebble (validating DNS-01 against that BIND) on free loopback
// ports, in a temp directory, started by the test itself and stopped by the PIDs it
// recorded. Construction throws std::runtime_error (so the test FAILS, never skips) when a
// program is missing or a peer does not come up. A watchdog ends the test process if the lab
// outlives `max_lifetime`, so a hung test cannot hang CI.
//
// Keep the directory and the logs with ACME_LAB_KEEP=1.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sandboxd::acme::testing {

struct LabOptions {
  int nonce_reject_percent = 0;   // PEBBLE_WFE_NONCEREJECT
  bool require_eab = false;       // pebble demands External Account Binding
  int cert_validity_seconds = 0;  // 0: pebble's default
  std::chrono::seconds max_lifetime{150};
};

// One child process, stopped by its PID (SIGTERM, then SIGKILL after 5 s).
class LabProcess {
 public:
  LabProcess() = default;
  LabProcess(const std::string& name, const std::vector<std::string>& argv,
             const std::vector<std::string>& env, const std::string& cwd, const std::string& log);
  ~LabProcess();
  LabProcess(LabProcess&& other) noexcept;
  LabProcess& operator=(LabProcess&& other) noexcept;

  bool alive();
  void stop();
  pid_t pid() const { return pid_; }

 private:
  std::string name_;
  pid_t pid_ = -1;
};

class AcmeLab {
 public:
  explicit AcmeLab(LabOptions options = {});
  ~AcmeLab();
  AcmeLab(const AcmeLab&) = delete;
  AcmeLab& operator=(const AcmeLab&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string zone = "preview.test";
  const std::string tsig_name = "acme-update.";
  const std::string& tsig_secret() const { return tsig_secret_; }
  std::uint16_t dns_port() const { return dns_port_; }
  std::string dns_address() const { return "127.0.0.1:" + std::to_string(dns_port_); }
  std::string directory_url() const;
  const std::string& https_ca_file() const { return https_ca_file_; }
  const std::string& eab_kid() const { return eab_kid_; }
  const std::string& eab_hmac() const { return eab_hmac_; }
  std::string named_log() const;

  // pebble's issuing root (management API /roots/0); new at every pebble start.
  std::string root_pem() const;
  // The TXT values BIND serves at `fqdn`, asked directly. Throws when BIND does not answer.
  std::vector<std::string> txt(const std::string& fqdn) const;

  void stop_pebble();
  void start_pebble();

 private:
  void make_pebble_certs();
  void start_named();
  bool try_start_named();
  bool try_start_pebble();
  void watchdog();

  LabOptions options_;
  std::string dir_;
  std::string tsig_secret_;
  std::string https_ca_file_;
  std::string eab_kid_;
  std::string eab_hmac_;
  std::uint16_t dns_port_ = 0;
  std::uint16_t acme_port_ = 0;
  std::uint16_t mgmt_port_ = 0;
  LabProcess named_;
  LabProcess pebble_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread watchdog_;
};

}  // namespace sandboxd::acme::testing
