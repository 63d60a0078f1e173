#include "harness.h"

#include "base/json.h"
#include "base/ulid.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

extern char** environ;

namespace sandboxd::runtimed::testing {

namespace {

using steady = std::chrono::steady_clock;

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    ::close(fd);
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int remaining_ms(steady::time_point until) {
  auto left = std::chrono::duration_cast<Ms>(until - steady::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Decodes a complete chunked body; false when it is not complete yet.
bool decode_chunked(const std::string& in, std::string& out) {
  std::size_t pos = 0;
  out.clear();
  for (;;) {
    std::size_t eol = in.find("\r\n", pos);
    if (eol == std::string::npos) return false;
    std::size_t size = std::stoul(in.substr(pos, eol - pos), nullptr, 16);
    pos = eol + 2;
    if (size == 0) return true;
    if (in.size() < pos + size + 2) return false;
    out.append(in, pos, size);
    pos += size + 2;
  }
}

void remove_tree(const std::string& path) {
  std::string cmd = "rm -rf '" + path + "'";
  int rc = std::system(cmd.c_str());
  (void)rc;
}

}  // namespace

bool wait_until(const std::function<bool()>& condition, Ms deadline) {
  auto until = steady::now() + deadline;
  for (;;) {
    if (condition()) return true;
    if (steady::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
}

bool pid_gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return true;
  char state = text[close + 2];
  return state == 'Z' || state == 'X';
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/rtd-XXXXXX";
  char* made = ::mkdtemp(tmpl);
  if (!made) throw std::runtime_error("mkdtemp failed");
  path_ = made;
}

TempDir::~TempDir() { remove_tree(path_); }

void write_file(const std::string& path, const std::string& content, int mode) {
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::fchmod(fd, static_cast<mode_t>(mode));
  ::close(fd);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

boost::json::object Response::json() const {
  auto parsed = parse_json_object(body);
  EXPECT_TRUE(parsed) << "not a JSON object: " << body;
  return parsed ? *parsed : boost::json::object();
}

std::optional<Response> http(const std::string& socket_path, const std::string& method,
                             const std::string& target, const std::string& body,
                             const std::vector<std::string>& headers, Ms deadline,
                             const std::string& raw) {
  int fd = connect_unix(socket_path);
  if (fd < 0) return std::nullopt;
  std::string out = raw;
  if (out.empty()) {
    out = method + " " + target + " HTTP/1.1\r\nHost: runtimed\r\nConnection: close\r\n";
    for (const auto& h : headers) out += h + "\r\n";
    if (!body.empty() || method == "POST") out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "\r\n" + body;
  }
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  auto until = steady::now() + deadline;
  std::size_t sent = 0;
  bool can_send = true;
  std::string in;
  for (;;) {
    pollfd p{fd, static_cast<short>(POLLIN | (can_send && sent < out.size() ? POLLOUT : 0)), 0};
    int left = remaining_ms(until);
    if (left == 0 || ::poll(&p, 1, left) <= 0) break;
    if (p.revents & POLLOUT) {
      ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      else if (errno != EAGAIN) can_send = false;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0 || errno != EAGAIN) break;
    }
  }
  ::close(fd);
  std::size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return std::nullopt;
  Response r;
  std::istringstream head(in.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  if (line.size() < 12) return std::nullopt;
  r.status = std::stoi(line.substr(9, 3));
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers[name] = value;
  }
  std::string rest = in.substr(head_end + 4);
  if (r.headers["transfer-encoding"] == "chunked") {
    if (!decode_chunked(rest, r.body)) return std::nullopt;
  } else {
    r.body = rest;
  }
  return r;
}

EventStream::EventStream(const std::string& socket_path, const std::string& target,
                         const std::vector<std::string>& headers) {
  fd_ = connect_unix(socket_path);
  if (fd_ < 0) {
    ended_ = true;
    return;
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: runtimed\r\nConnection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  req += "\r\n";
  ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
  auto until = steady::now() + 10s;
  while (status_ == 0 && !ended_) {
    if (fill(until) <= 0) {
      ended_ = true;
      break;
    }
    std::size_t head_end = raw_.find("\r\n\r\n");
    if (head_end == std::string::npos) continue;
    status_ = std::stoi(raw_.substr(9, 3));
    std::string head = raw_.substr(0, head_end);
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    chunked_ = head.find("transfer-encoding: chunked") != std::string::npos;
    raw_.erase(0, head_end + 4);
  }
}

EventStream::~EventStream() {
  if (fd_ >= 0) ::close(fd_);
}

int EventStream::fill(steady::time_point until) {
  pollfd p{fd_, POLLIN, 0};
  int left = remaining_ms(until);
  if (left == 0 || ::poll(&p, 1, left) <= 0) return -1;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) return 0;
  raw_.append(buf, static_cast<std::size_t>(n));
  return 1;
}

// Moves complete chunks from raw_ to body_; true at the last chunk.
bool EventStream::decode() {
  if (!chunked_) {
    body_ += raw_;
    raw_.clear();
    return false;
  }
  for (;;) {
    std::size_t eol = raw_.find("\r\n");
    if (eol == std::string::npos) return false;
    std::size_t size = std::stoul(raw_.substr(0, eol), nullptr, 16);
    if (size == 0) return true;
    if (raw_.size() < eol + 2 + size + 2) return false;
    body_.append(raw_, eol + 2, size);
    raw_.erase(0, eol + 2 + size + 2);
  }
}

std::optional<std::string> EventStream::next(Ms deadline) {
  auto until = steady::now() + deadline;
  for (;;) {
    while (!body_.empty() && body_.front() == '\n') {  // heartbeats
      ++heartbeats_;
      body_.erase(0, 1);
    }
    std::size_t nl = body_.find('\n');
    if (nl != std::string::npos) {
      std::string line = body_.substr(0, nl);
      body_.erase(0, nl + 1);
      return line;
    }
    if (ended_) return std::nullopt;
    if (decode()) {
      ended_ = true;
      continue;
    }
    if (body_.find('\n') != std::string::npos) continue;
    int got = fill(until);
    if (got < 0) return std::nullopt;  // deadline
    if (got == 0) {                    // EOF
      ended_ = true;
      decode();
    }
  }
}

std::vector<std::string> EventStream::rest(Ms deadline) {
  std::vector<std::string> lines;
  auto until = steady::now() + deadline;
  while (auto line = next(std::chrono::duration_cast<Ms>(until - steady::now()))) {
    lines.push_back(*line);
  }
  return lines;
}

std::string new_task_id() { return new_ulid().str(); }

Runtimed::Runtimed(Options options) : options_(std::move(options)) {
  run_dir_ = dir_.path() + "/run";
  workspace_ = dir_.path() + "/ws";
  socket_ = run_dir_ + "/runtimed.sock";
  log_path_ = dir_.path() + "/runtimed.log";
  ::mkdir(run_dir_.c_str(), 0700);
  ::mkdir(workspace_.c_str(), 0755);
  static const char kHex[] = "0123456789abcdef";
  std::random_device rd;
  for (int i = 0; i < 64; ++i) secret_ += kHex[rd() % 16];
  dev_port_ = options_.dev_port ? options_.dev_port : free_port();
}

Runtimed::~Runtimed() {
  if (pid_ > 0) {
    signal(SIGTERM);
    if (!wait_exit(15s)) {
      signal(SIGKILL);
      wait_exit(5s);
    }
  }
  if (::testing::Test::HasFailure()) {
    std::cerr << "---- runtimed log ----\n" << log() << "----\n";
  }
}

std::string Runtimed::settings_json() const {
  boost::json::object dev;
  dev["command"] = options_.dev_command;
  dev["port"] = dev_port_;
  boost::json::object tasks;
  tasks["timeout_s"] = options_.timeout_s;
  tasks["max_queued"] = options_.max_queued;
  tasks["cancel_grace_ms"] = options_.cancel_grace_ms;
  tasks["max_output_bytes"] = options_.max_output_bytes;
  boost::json::object o;
  o["version"] = 1;
  o["sandbox_id"] = "01JSANDBQX00000000000000AA";
  o["secret"] = secret_;
  o["project_dir"] = options_.project_dir;
  o["dev"] = dev;
  o["tasks"] = tasks;
  return boost::json::serialize(o);
}

void Runtimed::spawn() {
  // A small env of its own, so that no API key of the machine running the tests leaks in;
  // options_.env adds to it or replaces its entries.
  std::map<std::string, std::string> vars;
  const char* path = std::getenv("PATH");
  vars["PATH"] = path ? path : "/usr/local/bin:/usr/bin:/bin";
  vars["HOME"] = workspace_;
  vars["LANG"] = "C.UTF-8";
  for (const auto& e : options_.env) {
    std::size_t eq = e.find('=');
    vars[e.substr(0, eq)] = eq == std::string::npos ? "" : e.substr(eq + 1);
  }
  if (!options_.path_prefix.empty()) vars["PATH"] = options_.path_prefix + ":" + vars["PATH"];
  std::vector<std::string> env;
  for (const auto& [k, v] : vars) env.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string bin = options_.binary;
  std::vector<std::string> args{bin, "--run-dir", run_dir_, "--workspace", workspace_};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ASSERT_EQ(rc, 0) << "cannot start " << bin;
  pid_ = pid;
}

bool Runtimed::start() {
  write_file(run_dir_ + "/runtimed.json", settings_json(), 0400);
  spawn();
  if (pid_ <= 0) return false;
  return wait_until(
      [&] {
        if (pid_ <= 0) return false;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return false;
        }
        auto r = http(socket_, "GET", "/status", "", auth_headers(), 1s);
        return r && r->status == 200;
      },
      10s);
}

std::optional<int> Runtimed::start_expecting_exit(const std::optional<std::string>& settings,
                                                  Ms deadline) {
  ::unlink((run_dir_ + "/runtimed.json").c_str());
  if (settings) write_file(run_dir_ + "/runtimed.json", *settings, 0400);
  spawn();
  return wait_exit(deadline);
}

void Runtimed::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> Runtimed::wait_exit(Ms deadline) {
  if (pid_ <= 0) return std::nullopt;
  std::optional<int> result;
  wait_until(
      [&] {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
        result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return true;
      },
      deadline);
  if (result) pid_ = -1;
  return result;
}

std::vector<std::string> Runtimed::auth_headers() const {
  return {"Authorization: Bearer " + secret_};
}

Response Runtimed::request(const std::string& method, const std::string& target,
                           const std::string& body, const std::vector<std::string>& headers) {
  std::vector<std::string> all = auth_headers();
  all.insert(all.end(), headers.begin(), headers.end());
  auto r = http(socket_, method, target, body, all);
  EXPECT_TRUE(r) << method << " " << target << ": no answer";
  return r ? *r : Response{};
}

std::string Runtimed::submit_command(const std::vector<std::string>& argv, const std::string& extra) {
  std::string id = new_task_id();
  boost::json::array a;
  for (const auto& s : argv) a.emplace_back(s);
  std::string body = R"({"id":")" + id + R"(","agent":"command","argv":)" + boost::json::serialize(a) +
                     extra + "}";
  Response r = post("/tasks", body);
  EXPECT_EQ(r.status, 202) << r.body;
  return id;
}

boost::json::object Runtimed::task(const std::string& id) {
  Response r = get("/tasks/" + id);
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json();
}

boost::json::object Runtimed::wait_final(const std::string& id, Ms deadline) {
  boost::json::object t;
  bool final = wait_until(
      [&] {
        t = task(id);
        std::string_view s = t["status"].as_string();
        return s == "succeeded" || s == "failed" || s == "cancelled";
      },
      deadline);
  EXPECT_TRUE(final) << "task " << id << " did not finish: " << boost::json::serialize(t);
  return t;
}

std::vector<std::string> Runtimed::event_lines(const std::string& id, const std::string& query,
                                               const std::vector<std::string>& headers) {
  std::vector<std::string> all = auth_headers();
  all.insert(all.end(), headers.begin(), headers.end());
  EventStream s(socket_, "/tasks/" + id + "/events" + query, all);
  EXPECT_EQ(s.status(), 200);
  auto lines = s.rest(20s);
  EXPECT_TRUE(s.ended()) << "the event stream did not end";
  return lines;
}

std::vector<boost::json::object> Runtimed::events(const std::string& id, const std::string& query) {
  std::vector<boost::json::object> out;
  for (const auto& line : event_lines(id, query)) {
    auto parsed = parse_json_object(line);
    EXPECT_TRUE(parsed) << line;
    if (parsed) out.push_back(*parsed);
  }
  return out;
}

std::string Runtimed::task_dir(const std::string& id) const {
  return workspace_ + "/.sandboxd/tasks/" + id;
}

std::string Runtimed::log() const { return read_file(log_path_); }

}  // namespace sandboxd::runtimed::testing
