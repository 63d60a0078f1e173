#include "chromium.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace sandboxd::testing {

namespace json = boost::json;
using namespace std::chrono_literals;

std::unique_ptr<Chromium> Chromium::launch(std::string* problem) {
  if (::access(kBinary, X_OK) != 0) {
    *problem = std::string(kBinary) + " is missing: scripts/install-deps.sh installs chromium";
    return nullptr;
  }
  // A write to the pipe of a browser that died must fail, not kill the test.
  ::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<Chromium> c(new Chromium());
  std::string profile = c->dir_.path() + "/profile";
  std::string log = c->dir_.path() + "/chromium.log";
  std::vector<std::string> args = {
      kBinary,
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
      "--no-proxy-server",
      "--host-resolver-rules=MAP *.localhost 127.0.0.1",
      "--user-data-dir=" + profile,
      "--remote-debugging-pipe",
      "about:blank",
  };
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int commands[2], answers[2];  // [0] read end, [1] write end
  if (::pipe2(commands, O_CLOEXEC) != 0 || ::pipe2(answers, O_CLOEXEC) != 0) {
    *problem = std::string("pipe: ") + std::strerror(errno);
    return nullptr;
  }
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  pid_t pid = ::fork();
  if (pid < 0) {
    *problem = std::string("fork: ") + std::strerror(errno);
    return nullptr;
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec. The pipe ends move to 3 and 4 through
    // copies above 10, since dup2 onto an fd that already is 3 or 4 would keep O_CLOEXEC.
    ::setpgid(0, 0);
    int in = ::fcntl(commands[0], F_DUPFD_CLOEXEC, 10);
    int out = ::fcntl(answers[1], F_DUPFD_CLOEXEC, 10);
    if (in < 0 || out < 0 || ::dup2(in, 3) < 0 || ::dup2(out, 4) < 0) ::_exit(126);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    ::execv(kBinary, argv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so the group exists whichever runs first
  ::close(commands[0]);
  ::close(answers[1]);
  if (log_fd >= 0) ::close(log_fd);
  c->pid_ = pid;
  c->to_browser_ = commands[1];
  c->from_browser_ = answers[0];
  // The browser answers once it is up: a first command, bounded, proves it.
  if (!c->call("Browser.getVersion", {}, "", 60s)) {
    *problem = "chromium did not answer: " + c->problem() + "\n" + c->log_tail();
    return nullptr;
  }
  return c;
}

Chromium::~Chromium() {
  if (pid_ > 0) {
    // A polite close first (bounded), then the whole process group goes regardless.
    call("Browser.close", {}, "", 5s);
    ::kill(-pid_, SIGKILL);
    wait_until(
        [&] {
          int status;
          pid_t r = ::waitpid(pid_, &status, WNOHANG);
          return r == pid_ || (r < 0 && errno == ECHILD);
        },
        10s);
  }
  if (to_browser_ >= 0) ::close(to_browser_);
  if (from_browser_ >= 0) ::close(from_browser_);
}

std::string Chromium::log_tail() const {
  std::ifstream in(dir_.path() + "/chromium.log");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return text.size() > 4000 ? "...\n" + text.substr(text.size() - 4000) : text;
}

std::optional<std::string> Chromium::read_message(std::chrono::steady_clock::time_point until) {
  for (;;) {
    if (std::size_t end = inbox_.find('\0'); end != std::string::npos) {
      std::string message = inbox_.substr(0, end);
      inbox_.erase(0, end + 1);
      return message;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{from_browser_, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    char buf[65536];
    ssize_t n = ::read(from_browser_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;  // the browser is gone
    inbox_.append(buf, static_cast<std::size_t>(n));
  }
}

std::optional<json::object> Chromium::call(const std::string& method, json::object params,
                                           const std::string& session,
                                           std::chrono::milliseconds deadline) {
  const int id = next_id_++;
  json::object command{{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!session.empty()) command["sessionId"] = session;
  std::string text = json::serialize(command);
  text.push_back('\0');
  for (std::size_t off = 0; off < text.size();) {
    ssize_t n = ::write(to_browser_, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      problem_ = method + ": the browser's pipe is closed";
      return std::nullopt;
    }
    off += static_cast<std::size_t>(n);
  }
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    std::optional<std::string> message = read_message(until);
    if (!message) {
      problem_ = method + ": no answer within " + std::to_string(deadline.count()) + " ms";
      return std::nullopt;
    }
    boost::system::error_code ec;
    json::value v = json::parse(*message, ec);
    if (ec || !v.is_object()) continue;
    json::object& o = v.as_object();
    const json::value* answer_id = o.if_contains("id");
    if (!answer_id) {
      events_.push_back(std::move(o));
      continue;
    }
    if (!answer_id->is_int64() || answer_id->as_int64() != id) continue;  // a late answer
    if (const json::value* error = o.if_contains("error")) {
      problem_ = method + ": " + json::serialize(*error);
      return std::nullopt;
    }
    const json::value* result = o.if_contains("result");
    return result && result->is_object() ? result->as_object() : json::object{};
  }
}

std::string Chromium::open_tab() {
  auto target = call("Target.createTarget", {{"url", "about:blank"}});
  if (!target || !target->contains("targetId")) return "";
  auto attached =
      call("Target.attachToTarget", {{"targetId", target->at("targetId")}, {"flatten", true}});
  if (!attached || !attached->contains("sessionId")) return "";
  std::string session(attached->at("sessionId").as_string());
  if (!call("Network.enable", {}, session) || !call("Page.enable", {}, session)) return "";
  return session;
}

}  // namespace sandboxd::testing
