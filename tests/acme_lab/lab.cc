#include "lab.h"

#include "base64.h"
#include "dns_client.h"
#include "http_client.h"
#include "support/test_pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <cstdio>
#include <cstring>
#include <utility>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace sandboxd::acme::testing {
namespace {

using namespace std::chrono_literals;

std::string find_program(const std::string& name, const std::string& package) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t colon = path.find(':', start);
    const std::string dir = path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!dir.empty()) {
      const std::string candidate = dir + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  throw std::runtime_error("ACME lab: `" + name + "` is not installed; install the Debian package " +
                           package + " (scripts/install-deps.sh does)");
}

// A loopback port free for TCP (and UDP when asked) right now.
std::uint16_t free_port(bool udp_too) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int t = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(t, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(t, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(t);
      continue;
    }
    bool ok = true;
    if (udp_too) {
      const int u = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      ok = ::bind(u, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      ::close(u);
    }
    ::close(t);
    if (ok) return ntohs(addr.sin_port);
  }
  throw std::runtime_error("ACME lab: no free loopback port");
}

std::string random_b64(std::size_t bytes, bool url) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  return url ? base64url_encode(raw) : base64_encode(raw);
}

template <class Pred>
bool wait_until(std::chrono::milliseconds limit, LabProcess& proc, Pred ready) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    if (!proc.alive()) return false;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::string tail(const std::string& path) {
  const std::string all = read_file(path);
  return all.size() > 1500 ? all.substr(all.size() - 1500) : all;
}

}  // namespace

// --- LabProcess ----------------------------------------------------------------------

LabProcess::LabProcess(const std::string& name, const std::vector<std::string>& argv,
                       const std::vector<std::string>& env, const std::string& cwd,
                       const std::string& log)
    : name_(name) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  std::vector<std::string> a = argv;
  std::vector<std::string> e = env;
  std::vector<char*> av;
  std::vector<char*> ev;
  for (auto& s : a) av.push_back(s.data());
  for (auto& s : e) ev.push_back(s.data());
  av.push_back(nullptr);
  ev.push_back(nullptr);
  const int rc = ::posix_spawn(&pid_, a.front().c_str(), &actions, &attr, av.data(), ev.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("ACME lab: cannot start " + name + ": " + std::strerror(rc));
  }
}

LabProcess::~LabProcess() { stop(); }

LabProcess::LabProcess(LabProcess&& other) noexcept
    : name_(std::move(other.name_)), pid_(std::exchange(other.pid_, -1)) {}

LabProcess& LabProcess::operator=(LabProcess&& other) noexcept {
  if (this != &other) {
    stop();
    name_ = std::move(other.name_);
    pid_ = std::exchange(other.pid_, -1);
  }
  return *this;
}

bool LabProcess::alive() {
  if (pid_ <= 0) return false;
  int status = 0;
  return ::waitpid(pid_, &status, WNOHANG) == 0;
}

void LabProcess::stop() {
  if (pid_ <= 0) return;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == 0) {
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
  }
  pid_ = -1;
}

// --- AcmeLab ---------------------------------------------------------------------------

AcmeLab::AcmeLab(LabOptions options) : options_(options) {
  // Every program first, so a missing one fails before anything starts.
  const std::string named = find_program("named", "bind9");
  find_program("pebble", "pebble");

  char tmpl[] = "/tmp/acme-lab.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("ACME lab: mkdtemp failed");
  dir_ = tmpl;
  watchdog_ = std::thread([this] { watchdog(); });
  try {
    tsig_secret_ = random_b64(32, false);
    if (options_.require_eab) {
      eab_kid_ = "kid-1";
      eab_hmac_ = random_b64(32, true);
    }
    make_pebble_certs();
    start_named();
    for (int attempt = 0;; ++attempt) {
      acme_port_ = free_port(false);
      mgmt_port_ = free_port(false);
      if (try_start_pebble()) break;
      pebble_.stop();
      if (attempt == 2) {
        throw std::runtime_error("ACME lab: pebble did not answer: " + tail(dir_ + "/pebble/pebble.log"));
      }
    }
  } catch (...) {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    watchdog_.join();
    pebble_.stop();
    named_.stop();
    std::fprintf(stderr, "ACME lab: start failed; logs kept in %s\n", dir_.c_str());
    throw;
  }
  (void)named;
}

AcmeLab::~AcmeLab() {
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  pebble_.stop();
  named_.stop();
  const char* keep = std::getenv("ACME_LAB_KEEP");
  if (keep != nullptr && std::string(keep) == "1") {
    std::fprintf(stderr, "ACME lab: kept %s\n", dir_.c_str());
  } else {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void AcmeLab::watchdog() {
  std::unique_lock lock(mu_);
  if (cv_.wait_for(lock, options_.max_lifetime, [this] { return done_; })) return;
  std::fprintf(stderr, "ACME lab: test still running after %llds; stopping the lab and failing\n",
               static_cast<long long>(options_.max_lifetime.count()));
  if (pebble_.pid() > 0) ::kill(pebble_.pid(), SIGKILL);
  if (named_.pid() > 0) ::kill(named_.pid(), SIGKILL);
  std::_Exit(124);
}

std::string AcmeLab::directory_url() const {
  return "https://127.0.0.1:" + std::to_string(acme_port_) + "/dir";
}

std::string AcmeLab::named_log() const { return read_file(dir_ + "/bind/named.log"); }

void AcmeLab::make_pebble_certs() {
  const std::string p = dir_ + "/pebble";
  std::filesystem::create_directories(p);
  const Pem ca = make_ca("acme lab HTTPS CA for pebble (test only)");
  const Pem leaf = make_leaf(ca, {"DNS:localhost", "IP:127.0.0.1"});
  https_ca_file_ = p + "/https-ca.pem";
  write_file(https_ca_file_, ca.cert);
  write_file(p + "/https-cert.pem", leaf.cert);
  write_file(p + "/https-key.pem", leaf.key);
}

void AcmeLab::start_named() {
  // A port picked free can be taken by another test before named binds it: try a new one.
  for (int attempt = 0;; ++attempt) {
    dns_port_ = free_port(true);
    if (try_start_named()) return;
    named_.stop();
    if (attempt == 2) {
      throw std::runtime_error("ACME lab: named did not answer: " + tail(dir_ + "/bind/named.log"));
    }
  }
}

bool AcmeLab::try_start_named() {
  const std::string b = dir_ + "/bind";
  std::filesystem::create_directories(b);
  write_file(b + "/tsig.key", "key \"" + tsig_name + "\" {\n  algorithm hmac-sha256;\n  secret \"" +
                                  tsig_secret_ + "\";\n};\n");
  write_file(b + "/db." + zone,
             "$TTL 60\n"
             "@    IN SOA ns1." + zone + ". hostmaster." + zone + ". ( 1 60 60 3600 60 )\n"
             "     IN NS  ns1." + zone + ".\n"
             "ns1  IN A   127.0.0.1\n"
             "@    IN A   127.0.0.1\n"
             "*    IN A   127.0.0.1\n");
  const std::string port = std::to_string(dns_port_);
  write_file(b + "/named.conf",
             "// The ACME lab's private BIND: loopback only, authoritative only.\n"
             "include \"" + b + "/tsig.key\";\n"
             "options {\n"
             "  directory \"" + b + "\";\n"
             "  pid-file \"" + b + "/named.pid\";\n"
             "  session-keyfile \"" + b + "/session.key\";\n"
             "  managed-keys-directory \"" + b + "\";\n"
             "  listen-on port " + port + " { 127.0.0.1; };\n"
             "  listen-on-v6 { none; };\n"
             "  recursion no;\n"
             "  notify no;\n"
             "  dnssec-validation no;\n"
             "  allow-query { 127.0.0.1; };\n"
             "  allow-transfer { none; };\n"
             "  querylog yes;\n"
             "};\n"
             "controls { };\n"
             "zone \"" + zone + "\" {\n"
             "  type primary;\n"
             "  file \"" + b + "/db." + zone + "\";\n"
             "  update-policy { grant " + tsig_name + " zonesub TXT; };\n"
             "};\n");
  const std::string named = find_program("named", "bind9");
  named_ = LabProcess("named", {named, "-g", "-4", "-n", "1", "-c", b + "/named.conf", "-p", port},
                      {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, b, b + "/named.log");
  const NameServer server{"127.0.0.1", dns_port_};
  return wait_until(20s, named_, [&] {
    auto a = dns_query(server, zone + ".", DnsType::soa, false, 500ms);
    return a && a->rcode == 0 && a->soa_in_answer;
  });
}

void AcmeLab::start_pebble() {
  if (!try_start_pebble()) {
    throw std::runtime_error("ACME lab: pebble did not answer: " + tail(dir_ + "/pebble/pebble.log"));
  }
}

bool AcmeLab::try_start_pebble() {
  const std::string p = dir_ + "/pebble";
  std::string extra;
  if (options_.require_eab) {
    extra += ",\n    \"externalAccountMACKeys\": { \"" + eab_kid_ + "\": \"" + eab_hmac_ + "\" }";
  }
  if (options_.cert_validity_seconds > 0) {
    extra += ",\n    \"certificateValidityPeriod\": " + std::to_string(options_.cert_validity_seconds);
  }
  write_file(p + "/pebble-config.json",
             "{\n  \"pebble\": {\n"
             "    \"listenAddress\": \"127.0.0.1:" + std::to_string(acme_port_) + "\",\n"
             "    \"managementListenAddress\": \"127.0.0.1:" + std::to_string(mgmt_port_) + "\",\n"
             "    \"certificate\": \"" + p + "/https-cert.pem\",\n"
             "    \"privateKey\": \"" + p + "/https-key.pem\",\n"
             "    \"httpPort\": 5002,\n    \"tlsPort\": 5001,\n"
             "    \"ocspResponderURL\": \"\",\n"
             "    \"externalAccountBindingRequired\": " +
                 std::string(options_.require_eab ? "true" : "false") + extra + "\n  }\n}\n");
  const std::string pebble = find_program("pebble", "pebble");
  // -strict=false must be written with '=': after a separate value pebble ignores the rest.
  pebble_ = LabProcess("pebble",
                       {pebble, "-config", p + "/pebble-config.json", "-dnsserver", dns_address(),
                        "-strict=false"},
                       {"PATH=/usr/bin:/bin", "PEBBLE_VA_NOSLEEP=1",
                        "PEBBLE_WFE_NONCEREJECT=" + std::to_string(options_.nonce_reject_percent),
                        "PEBBLE_AUTHZREUSE=0"},
                       p, p + "/pebble.log");
  HttpClient http(HttpClientOptions{.ca_file = https_ca_file_, .system_cas = false,
                                    .user_agent = "acme-lab", .timeout = 2s, .max_body = 1 << 20});
  return wait_until(30s, pebble_, [&] {
    auto r = http.send({.method = "GET", .url = directory_url(), .headers = {}, .body = {}});
    return r && r->status == 200;
  });
}

void AcmeLab::stop_pebble() { pebble_.stop(); }

std::string AcmeLab::root_pem() const {
  HttpClient http(HttpClientOptions{.ca_file = https_ca_file_, .system_cas = false,
                                    .user_agent = "acme-lab", .timeout = 5s, .max_body = 1 << 20});
  auto r = http.send({.method = "GET",
                      .url = "https://127.0.0.1:" + std::to_string(mgmt_port_) + "/roots/0",
                      .headers = {},
                      .body = {}});
  if (!r || r->status != 200) throw std::runtime_error("ACME lab: cannot fetch /roots/0");
  return r->body;
}

std::vector<std::string> AcmeLab::txt(const std::string& fqdn) const {
  auto a = dns_query(NameServer{"127.0.0.1", dns_port_}, fqdn, DnsType::txt, false, 2s);
  if (!a) throw std::runtime_error("ACME lab: BIND did not answer: " + a.error().detail);
  return a->txt;
}

}  // namespace sandboxd::acme::testing
