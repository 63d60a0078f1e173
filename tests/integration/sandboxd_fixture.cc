#include "sandboxd_fixture.h"

#include "raw_http.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>

namespace sandboxd::testing {

namespace {

constexpr const char* kImage = "sandboxd-test:latest";
constexpr const char* kNetworkPrefix = "sandboxd-it-";
constexpr const char* kPrivateEngineSocket = "/tmp/sandboxd-dockerd/docker.sock";

json::value parse_or_null(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return nullptr;
  return v;
}

bool is_socket(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

std::vector<json::object> container_list(const std::string& filter_key, const std::string& value) {
  json::object filters{{filter_key, json::array{json::value(value)}}};
  EngineAnswer a = engine_call(
      "GET", "/containers/json?all=1&filters=" + url_encode(json::serialize(filters)));
  std::vector<json::object> out;
  json::value v = a.json();
  if (!v.is_array()) return out;
  for (const auto& item : v.get_array()) {
    if (item.is_object()) out.push_back(item.get_object());
  }
  return out;
}

// Removes networks (and their containers) that a test process which no longer runs left.
void remove_stale_networks() {
  EngineAnswer a = engine_call("GET", "/networks");
  json::value v = a.json();
  if (!v.is_array()) return;
  std::regex ours(std::string("^") + kNetworkPrefix + "([0-9]+)-[0-9]+$");
  for (const auto& n : v.get_array()) {
    std::string name = str_of(n, "Name");
    std::smatch m;
    if (!std::regex_match(name, m, ours)) continue;
    int pid = std::stoi(m[1]);
    if (pid == getpid() || kill(pid, 0) == 0) continue;
    engine_purge(name, {});
  }
}

}  // namespace

// ---------------------------------------------------------------------------- engine

const std::string& docker_socket() {
  static const std::string path = [] {
    const char* host = std::getenv("DOCKER_HOST");
    if (host && std::string(host).starts_with("unix://")) return std::string(host + 7);
    if (is_socket("/var/run/docker.sock")) return std::string("/var/run/docker.sock");
    return std::string(kPrivateEngineSocket);
  }();
  return path;
}

json::value EngineAnswer::json() const { return parse_or_null(body); }

EngineAnswer engine_call(const std::string& method, const std::string& path,
                         const std::string& body) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "-m", "60", "--unix-socket",
                                   docker_socket(), "-X", method, "-w", "\n%{http_code}"};
  if (!body.empty()) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", body});
  }
  argv.push_back("http://localhost" + path);
  RunResult r = run(argv, 90s);
  EngineAnswer a;
  std::size_t nl = r.out.rfind('\n');
  if (r.status != 0 || nl == std::string::npos) return a;
  a.status = std::atoi(r.out.c_str() + nl + 1);
  a.body = r.out.substr(0, nl);
  return a;
}

std::vector<json::object> engine_containers_with_label(const std::string& label) {
  return container_list("label", label);
}

std::vector<json::object> engine_containers_on_network(const std::string& network) {
  return container_list("network", network);
}

std::optional<json::object> engine_inspect(const std::string& container) {
  EngineAnswer a = engine_call("GET", "/containers/" + container + "/json");
  json::value v = a.json();
  if (a.status != 200 || !v.is_object()) return std::nullopt;
  return v.get_object();
}

void engine_purge(const std::string& network, const std::vector<std::string>& instances) {
  std::vector<json::object> found;
  for (const auto& inst : instances) {
    auto some = engine_containers_with_label("sandboxd.instance=" + inst);
    found.insert(found.end(), some.begin(), some.end());
  }
  if (!network.empty()) {
    auto some = engine_containers_on_network(network);
    found.insert(found.end(), some.begin(), some.end());
  }
  for (const auto& c : found) {
    engine_call("DELETE", "/containers/" + str_of(c, "Id") + "?force=1");
  }
  if (!network.empty()) engine_call("DELETE", "/networks/" + network);
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string engine_now() {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch()).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(ns / 1000000000),
                static_cast<long long>(ns % 1000000000));
  return buf;
}

std::vector<std::string> engine_container_actions(const std::string& container, const std::string& since,
                                                  const std::vector<std::string>& actions) {
  json::array wanted;
  for (const auto& a : actions) wanted.emplace_back(a);
  json::object filters{{"container", json::array{json::value(container)}},
                       {"type", json::array{"container"}},
                       {"event", std::move(wanted)}};
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch()).count();
  EngineAnswer a = engine_call("GET", "/events?since=" + since + "&until=" +
                                          std::to_string(now_s + 1) + "&filters=" +
                                          url_encode(json::serialize(filters)));
  // The answer is a stream of JSON objects, one per line, oldest first.
  std::vector<std::string> seen;
  std::size_t begin = 0;
  while (begin < a.body.size()) {
    std::size_t end = a.body.find('\n', begin);
    if (end == std::string::npos) end = a.body.size();
    json::value event = parse_or_null(a.body.substr(begin, end - begin));
    if (str_of(event, "Type") == "container") seen.push_back(str_of(event, "Action"));
    begin = end + 1;
  }
  return seen;
}

int engine_container_starts(const std::string& container, const std::string& since) {
  return static_cast<int>(engine_container_actions(container, since, {"start"}).size());
}

double Sandboxd::metric(const std::string& series) {
  const std::string text = get("/metrics").body;
  const std::string line = "\n" + series + " ";
  const std::size_t at = text.find(line);
  if (at == std::string::npos) return -1;
  return std::strtod(text.c_str() + at + line.size(), nullptr);
}

SseStream parse_sse(const std::string& body) {
  SseStream out;
  out.retry_first = body.starts_with("retry: 2000\n\n");
  std::size_t at = 0;
  while (at < body.size()) {
    std::size_t end = body.find("\n\n", at);
    if (end == std::string::npos) end = body.size();
    std::string block = body.substr(at, end - at);
    at = end + 2;
    if (block == ": ping") {
      ++out.pings;
      continue;
    }
    SseEvent e;
    bool any = false;
    std::size_t pos = 0;
    while (pos < block.size()) {
      std::size_t nl = block.find('\n', pos);
      if (nl == std::string::npos) nl = block.size();
      std::string line = block.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.starts_with("id: ")) {
        e.id = std::stoll(line.substr(4));
        any = true;
      } else if (line.starts_with("event: ")) {
        e.event = line.substr(7);
      } else if (line.starts_with("data: ")) {
        boost::system::error_code ec;
        e.data = json::parse(line.substr(6), ec);
      }
    }
    if (any) out.events.push_back(std::move(e));
  }
  return out;
}

std::string dechunked(const std::string& raw) {
  std::size_t at = raw.find("\r\n\r\n");
  if (at == std::string::npos) return "";
  at += 4;
  std::string body;
  for (;;) {
    const std::size_t eol = raw.find("\r\n", at);
    if (eol == std::string::npos) break;
    std::size_t size = 0;
    try {
      size = std::stoul(raw.substr(at, eol - at), nullptr, 16);
    } catch (const std::exception&) {
      break;
    }
    if (size == 0 || eol + 2 + size + 2 > raw.size()) break;
    body.append(raw, eol + 2, size);
    at = eol + 2 + size + 2;
  }
  return body;
}

bool ensure_test_image(std::string* problem) {
  static std::optional<std::string> outcome;  // "" when the image is there
  if (!outcome) {
    EngineAnswer ping = engine_call("GET", "/_ping");
    if (ping.status != 200) {
      outcome = "no Docker Engine answers on " + docker_socket() +
                "; start one: eval \"$(scripts/docker-engine.sh start)\"";
    } else if (std::string(SANDBOXD_RUNTIMED).empty()) {
      outcome = "this build has no runtimed-static target (a sanitizer build?); the test image "
                "runs runtimed as its entrypoint";
    } else {
      // The image runs this build's runtimed as its entrypoint and this build's testapp
      // (image/testapp/) as the dev server.
      Process build({std::string(SANDBOXD_SOURCE_DIR) + "/image/build-test-image.sh", kImage},
                    {"DOCKER_HOST=unix://" + docker_socket(),
                     std::string("TESTAPP=") + SANDBOXD_TESTAPP,
                     std::string("RUNTIMED=") + SANDBOXD_RUNTIMED});
      auto st = build.wait_exit(120s);
      outcome = st && *st == 0 ? std::string() : "build-test-image.sh failed: " + build.err();
    }
  }
  if (problem) *problem = *outcome;
  return outcome->empty();
}

// ---------------------------------------------------------------------------- answers

std::string str_of(const json::value& v, const std::string& key) {
  if (!v.is_object()) return "";
  const json::value* f = v.get_object().if_contains(key);
  return f && f->is_string() ? std::string(f->get_string()) : std::string();
}

std::string Answer::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string Answer::str(const std::string& key) const { return str_of(json, key); }

std::string Answer::error_code() const {
  if (!json.is_object()) return "";
  const json::value* e = json.get_object().if_contains("error");
  if (e && e->is_object()) return str_of(*e, "code");
  return str_of(json, "code");
}

std::string preview_host(std::string id, int port) {
  std::transform(id.begin(), id.end(), id.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return "s-" + id + "-" + std::to_string(port) + ".preview.localhost";
}

// ---------------------------------------------------------------------------- sandboxd

// The port of the last log line matching `pattern` (one capture group), read within a
// deadline; 0 if none. The log spans every run on this data directory: the last line is
// the current run's.
std::uint16_t Sandboxd::port_from_log(const std::string& pattern) {
  std::uint16_t port = 0;
  std::regex line(pattern);
  wait_until([&] {
    std::string text = log();
    for (std::sregex_iterator it(text.begin(), text.end(), line), end; it != end; ++it) {
      port = static_cast<std::uint16_t>(std::stoi((*it)[1]));
    }
    return port != 0;
  }, 10s);
  return port;
}

std::uint16_t Sandboxd::edge_port() {
  // Logged right after the control listener; remembered once read.
  if (edge_port_ == 0) edge_port_ = port_from_log("edge listening [^\\n]*port=([0-9]+)");
  return edge_port_;
}

std::uint16_t Sandboxd::edge_https_port() {
  return port_from_log("edge https listening [^\\n]*port=([0-9]+)");
}

Sandboxd::Sandboxd(std::string network, SandboxdConfig config)
    : network_(std::move(network)), config_(std::move(config)) {
  data_dir_ = dir_.path() + "/data";
  config_path_ = dir_.write("sandboxd.yaml", yaml());
  log_path_ = dir_.path() + "/sandboxd.log";
}

void Sandboxd::rewrite_config(SandboxdConfig config) {
  config_ = std::move(config);
  dir_.write("sandboxd.yaml", yaml());
}

void Sandboxd::write_raw_config(const std::string& text) { dir_.write("sandboxd.yaml", text); }

std::string Sandboxd::yaml() const {
  return "data_dir: " + data_dir_ + "\n" +
                     "control:\n"
                     "  listen: " + config_.listen + "\n" + config_.control_lines +
                     "edge:\n"
                     "  http:\n"
                     "    listen: " + config_.edge_listen + "\n" + config_.edge_lines +
                     "docker:\n"
                     "  socket: unix://" + docker_socket() + "\n"
                     "  image: " + config_.image + "\n"
                     "  network: " + network_ + "\n"
                     "  stop_timeout: 5s\n" + config_.docker_lines +
                     "sandbox:\n"
                     "  nofile: 4096\n"
                     "  dev_command: " + config_.dev_command + "\n"
                     "  project_dir: .\n" + config_.sandbox_lines + config_.extra;
}

Sandboxd::~Sandboxd() { kill9(); }

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

namespace {

// The first line of `text` from `offset` on that contains `needle`.
std::optional<std::string> line_with(const std::string& text, std::size_t offset,
                                     const std::string& needle) {
  std::size_t at = text.find(needle, offset);
  if (at == std::string::npos) return std::nullopt;
  std::size_t begin = text.rfind('\n', at);
  begin = begin == std::string::npos ? 0 : begin + 1;
  std::size_t end = text.find('\n', at);
  if (end == std::string::npos) return std::nullopt;  // not complete yet
  return text.substr(begin, end - begin);
}

}  // namespace

::testing::AssertionResult Sandboxd::launch(const std::vector<std::string>& env) {
  if (process_) return ::testing::AssertionFailure() << "sandboxd is already running";
  std::vector<std::string> child_env = {"DOCKER_HOST=unix://" + docker_socket()};
  child_env.insert(child_env.end(), env.begin(), env.end());
  // SANDBOXD_TEST_BIN runs another build of the binary (the ASan one, to diagnose a crash).
  const char* bin = std::getenv("SANDBOXD_TEST_BIN");
  // The output goes to a file, not a pipe: a pipe nobody reads while a test waits on
  // something else would fill up and block sandboxd's logging. `exec` keeps the PID.
  std::size_t offset = read_whole(log_path_).size();
  edge_port_ = 0;
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"/bin/sh", "-c", "exec \"$0\" serve -c \"$1\" >>\"$2\" 2>&1",
                               bin && *bin ? bin : SANDBOXD_BIN, config_path_, log_path_},
      child_env);
  std::optional<std::string> store_line, listen_line;
  wait_until([&] {
    std::string text = read_whole(log_path_);
    store_line = line_with(text, offset, "store open");
    listen_line = line_with(text, offset, "control listening");
    return (store_line && listen_line) || process_->wait_exit(0ms).has_value();
  }, 20s);
  std::smatch m;
  if (!store_line || !std::regex_search(*store_line, m, std::regex("instance=([0-9A-Z]{26})"))) {
    return ::testing::AssertionFailure() << "no instance id in the log:\n" << log();
  }
  instance_ = m[1];
  if (!listen_line || !std::regex_search(*listen_line, m, std::regex("port=([0-9]+)"))) {
    return ::testing::AssertionFailure() << "sandboxd did not listen:\n" << log();
  }
  port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult Sandboxd::start(const std::vector<std::string>& env,
                                           std::chrono::milliseconds ready_within) {
  if (auto launched = launch(env); !launched) return launched;
  Answer ready;
  bool ok = wait_until([&] {
    ready = get("/readyz");
    return ready.status == 200;
  }, ready_within);
  if (!ok) {
    return ::testing::AssertionFailure() << "/readyz is " << ready.status << " " << ready.body
                                         << "\n" << log();
  }
  return ::testing::AssertionSuccess();
}

void Sandboxd::kill9() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait_exit(10s);
  process_.reset();
}

bool Sandboxd::terminate() {
  if (!process_) return true;
  process_->signal(SIGTERM);
  bool exited = process_->wait_exit(15s).has_value();
  if (!exited) process_->signal(SIGKILL);
  process_->wait_exit(10s);
  process_.reset();
  return exited;
}

void Sandboxd::signal(int sig) {
  if (process_) process_->signal(sig);
}

std::string Sandboxd::log() { return read_whole(log_path_); }

Answer Sandboxd::call(const std::string& method, const std::string& target,
                      const std::string& body, const std::vector<std::string>& headers,
                      std::chrono::milliseconds deadline) {
  std::vector<std::string> all = headers;
  bool has_type = false;
  for (const auto& h : headers) {
    if (h.size() >= 13 && strncasecmp(h.c_str(), "content-type:", 13) == 0) has_type = true;
  }
  if (!has_type && (method == "POST" || method == "PUT" || method == "PATCH")) {
    all.push_back("Content-Type: application/json");
  }
  if (!token_.empty()) all.push_back("Authorization: Bearer " + token_);
  Answer a;
  std::optional<RawResponse> r;
  try {
    r = http_request(port_, method, target, body, all, deadline);
  } catch (const std::exception&) {
    return a;  // connection refused: status 0
  }
  if (!r) return a;
  a.status = r->status;
  a.headers = std::move(r->headers);
  a.body = std::move(r->body);
  a.json = parse_or_null(a.body);
  return a;
}

// ---------------------------------------------------------------------------- fixture

std::string unique_network_name() {
  static int counter = 0;
  return kNetworkPrefix + std::to_string(getpid()) + "-" + std::to_string(++counter);
}

std::string json_argv(const std::vector<std::string>& argv) {
  json::array a;
  for (const auto& s : argv) a.emplace_back(s);
  return json::serialize(a);
}

void SandboxdTest::SetUpTestSuite() { remove_stale_networks(); }

void SandboxdTest::SetUp() {
  std::string problem;
  ASSERT_TRUE(ensure_test_image(&problem)) << problem;
  main_ = std::make_unique<Sandboxd>(unique_network_name(), config());
  ASSERT_TRUE(main_->start());
}

void FakeMeminfoTest::SetUp() {
  meminfo_ = meminfo_dir_.path() + "/meminfo";
  write_meminfo(900'000);
  ::setenv("SANDBOXD_TEST_MEMINFO", meminfo_.c_str(), 1);
  SandboxdTest::SetUp();
}

void FakeMeminfoTest::TearDown() {
  SandboxdTest::TearDown();
  ::unsetenv("SANDBOXD_TEST_MEMINFO");
}

void FakeMeminfoTest::write_meminfo(std::uint64_t available_kb) {
  std::ofstream out(meminfo_ + ".tmp");
  out << "MemTotal:        1000000 kB\nMemFree:          100000 kB\nMemAvailable:    "
      << available_kb << " kB\n";
  out.close();
  std::rename((meminfo_ + ".tmp").c_str(), meminfo_.c_str());
}

Sandboxd& SandboxdTest::add_sandboxd(SandboxdConfig config) {
  more_.push_back(std::make_unique<Sandboxd>(unique_network_name(), std::move(config)));
  return *more_.back();
}

void SandboxdTest::TearDown() {
  std::vector<Sandboxd*> all;
  if (main_) all.push_back(main_.get());
  for (auto& s : more_) all.push_back(s.get());
  for (Sandboxd* s : all) {
    if (HasFailure()) {
      std::string log = s->log();
      if (log.size() > 20000) log = "...\n" + log.substr(log.size() - 20000);
      std::cerr << "---- sandboxd log (network " << s->network() << ")\n" << log << "----\n";
    }
    s->kill9();
  }
  for (Sandboxd* s : all) {
    std::vector<std::string> instances;
    if (!s->instance().empty()) instances.push_back(s->instance());
    engine_purge(s->network(), instances);
  }
  more_.clear();
  main_.reset();
}

::testing::AssertionResult SandboxdTest::wait_preview(const std::string& id, int port) {
  std::optional<RawResponse> last;
  if (wait_until([&] {
        RawConnection c(sd().edge_port());
        c.send("GET / HTTP/1.1\r\nHost: " + preview_host(id, port) + "\r\nConnection: close\r\n\r\n");
        last = c.read_response();
        return last && last->status == 200;
      }, 30s)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "the preview of " << id << " never answered 200; last "
                                       << (last ? std::to_string(last->status) : std::string("none"));
}

std::string SandboxdTest::create_v1(const std::string& user, const std::string& project,
                                    const std::string& extra_fields) {
  json::object body{{"project", json::object{{"id", project}, {"user_id", user}}}};
  std::string text = json::serialize(body);
  if (!extra_fields.empty()) text = text.substr(0, text.size() - 1) + "," + extra_fields + "}";
  Answer a = sd().post("/v1/sandboxes", text);
  EXPECT_EQ(a.status, 201) << a.body;
  EXPECT_EQ(a.str("status"), "running") << a.body;
  return a.status == 201 ? a.str("id") : std::string();
}

std::string SandboxdTest::create_legacy(const std::string& body) {
  Answer a = sd().post("/sandbox", body);
  EXPECT_EQ(a.status, 201) << a.body;
  return a.status == 201 ? a.str("id") : std::string();
}

::testing::AssertionResult SandboxdTest::wait_status(const std::string& id,
                                                     const std::string& status,
                                                     std::chrono::milliseconds deadline) {
  Answer a;
  if (wait_until([&] {
        a = sd().get("/v1/sandboxes/" + id);
        return a.str("status") == status;
      }, deadline)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << id << " is not " << status << ": " << a.status << " "
                                       << a.body;
}

Answer SandboxdTest::exec(const std::string& id, const std::vector<std::string>& argv,
                          const std::string& extra_fields) {
  std::string body = R"({"cmd":)" + json_argv(argv) + (extra_fields.empty() ? "" : ",") +
                     extra_fields + "}";
  return sd().post("/v1/sandboxes/" + id + "/exec", body);
}

::testing::AssertionResult SandboxdTest::wait_init_ready(const std::string& id) {
  Answer a;
  if (wait_until([&] {
        a = exec(id, {"test", "-s", "/tmp/sandbox-www/index.html"});
        return a.status == 200 && a.json.is_object() &&
               a.json.get_object().if_contains("exit_code") &&
               a.json.at("exit_code") == json::value(0);
      }, 20s)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "init of " << id << " never got ready: " << a.body;
}

std::vector<std::string> SandboxdTest::instance_container_ids(const Sandboxd& s) {
  std::vector<std::string> ids;
  for (const auto& c : engine_containers_with_label("sandboxd.instance=" + s.instance())) {
    ids.push_back(str_of(c, "Id"));
  }
  return ids;
}

}  // namespace sandboxd::testing
