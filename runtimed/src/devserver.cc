#include "devserver.h"

#include "base/log.h"
#include "process.h"
#include "runtimed/text.h"
#include "task_files.h"
#include "workspace_fs.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace sandboxd::runtimed {

namespace json = boost::json;
using steady = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

namespace {

constexpr log::Logger kLog{"runtimed"};
constexpr auto kWaitingRecheck = std::chrono::seconds(2);
constexpr auto kProbeStarting = std::chrono::milliseconds(500);
constexpr auto kProbeSteady = std::chrono::seconds(5);
constexpr auto kProbeTimeout = std::chrono::seconds(1);
constexpr auto kStopGrace = std::chrono::seconds(5);
constexpr std::size_t kMaxPackageJson = 1024 * 1024;

// The first non-loopback IPv4 address of an interface that is up: what the edge dials.
std::optional<asio::ip::address_v4> container_address() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<asio::ip::address_v4> found;
  for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
    sockaddr_in sin{};
    std::memcpy(&sin, i->ifa_addr, sizeof sin);
    found = asio::ip::address_v4(ntohl(sin.sin_addr.s_addr));
  }
  ::freeifaddrs(list);
  return found;
}

// True when a TCP connect to `ep` succeeds within the probe timeout.
asio::awaitable<bool> answers(const tcp::endpoint& ep) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket sock(ex);
  asio::steady_timer timer(ex, kProbeTimeout);
  // The handler only touches the socket when the timer really fired, which happens while
  // this frame is suspended in the connect below.
  timer.async_wait([&sock](const boost::system::error_code& ec) {
    if (!ec) {
      boost::system::error_code ignored;
      sock.close(ignored);
    }
  });
  auto [ec] = co_await sock.async_connect(ep, nothrow);
  timer.cancel();
  co_return !ec;
}

struct ProjectInfo {
  bool exists = false;
  ProjectFiles files;
};

ProjectInfo inspect_project(const std::string& root, const std::string& rel) {
  ProjectInfo info;
  auto dir = open_dir_beneath(root, rel);
  if (!dir) return info;
  info.exists = true;
  int fd = *dir;
  auto present = [fd](const char* name) {
    struct stat st {};
    return ::fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
  };
  info.files.pnpm_lock = present("pnpm-lock.yaml");
  info.files.bun_lock = present("bun.lock") || present("bun.lockb");
  int pkg = ::openat(fd, "package.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (pkg >= 0) {
    struct stat st {};
    if (::fstat(pkg, &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<std::size_t>(st.st_size) <= kMaxPackageJson) {
      std::string text(static_cast<std::size_t>(st.st_size), '\0');
      ssize_t n = ::read(pkg, text.data(), text.size());
      if (n >= 0) {
        text.resize(static_cast<std::size_t>(n));
        info.files.package_json = std::move(text);
      }
    }
    ::close(pkg);
  }
  ::close(fd);
  return info;
}

json::value time_or_null(const std::optional<Clock::WallTime>& t) {
  if (!t) return nullptr;
  return json::value(format_time_ms(*t));
}

}  // namespace

DevServer::DevServer(Context& ctx)
    : ctx_(ctx), log_(ctx.writer, ctx.state_dir + "/devserver.log"), port_(ctx.settings.dev.port) {}

void DevServer::start() {
  running_ = true;
  asio::co_spawn(ctx_.loop, [this] { return supervise(); }, asio::detached);
}

void DevServer::restart(std::optional<std::string> command, std::optional<int> port) {
  if (stopping_) return;
  if (command) override_command_ = std::move(command);
  if (port) override_port_ = port;
  restart_requested_ = true;
  kLog.info("dev server restart requested");
  changed_.notify();
}

void DevServer::begin_shutdown() {
  stopping_ = true;
  if (pid_) ::kill(-*pid_, SIGTERM);
  changed_.notify();
}

asio::awaitable<void> DevServer::wait_stopped(steady::time_point deadline) {
  while (running_ && steady::now() < deadline) co_await changed_.wait(deadline - steady::now());
}

std::string_view DevServer::state() const {
  switch (state_) {
    case State::waiting: return "waiting";
    case State::starting: return "starting";
    case State::ready: return "ready";
    case State::loopback_only: return "loopback_only";
    case State::backoff: return "backoff";
  }
  return "waiting";
}

json::object DevServer::to_json() const {
  json::object o;
  o["state"] = state();
  o["command"] = command_ ? json::value(valid_utf8(*command_)) : json::value(nullptr);
  o["command_source"] = command_ ? json::value(command_source_) : json::value(nullptr);
  o["port"] = port_;
  o["pid"] = pid_ ? json::value(*pid_) : json::value(nullptr);
  o["started_at"] = time_or_null(started_at_);
  o["restarts"] = std::max(0, starts_ - 1);
  if (last_exit_) {
    json::object e;
    e["code"] = last_exit_->code ? json::value(*last_exit_->code) : json::value(nullptr);
    e["signal"] = last_exit_->signal ? json::value(signal_name(*last_exit_->signal))
                                     : json::value(nullptr);
    e["at"] = format_time_ms(last_exit_->at);
    e["ran_ms"] = last_exit_->ran_ms;
    o["last_exit"] = std::move(e);
  } else {
    o["last_exit"] = nullptr;
  }
  o["next_restart_at"] = time_or_null(next_restart_at_);
  json::object l;
  l["container"] = listening_.container;
  l["loopback"] = listening_.loopback;
  o["listening"] = std::move(l);
  o["hint"] = hint_ ? json::value(*hint_) : json::value(nullptr);
  return o;
}

asio::awaitable<void> DevServer::probe() {
  Listening found;
  auto port = static_cast<unsigned short>(port_);
  if (auto addr = container_address()) {
    tcp::endpoint ep(*addr, port);
    found.container = co_await answers(ep);
  }
  tcp::endpoint v4(asio::ip::address_v4::loopback(), port);
  found.loopback = co_await answers(v4);
  if (!found.loopback) {
    tcp::endpoint v6(asio::ip::address_v6::loopback(), port);
    found.loopback = co_await answers(v6);
  }
  listening_ = found;
}

asio::awaitable<void> DevServer::copy_output(int fd) {
  asio::posix::stream_descriptor stream(ctx_.loop, fd);
  std::string buf(64 * 1024, '\0');
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), nothrow);
    if (n > 0) log_.append(buf.substr(0, n));
    if (ec) break;
  }
}

asio::awaitable<void> DevServer::supervise() {
  const std::string& project_dir = ctx_.settings.project_dir;
  while (!stopping_) {
    restart_requested_ = false;
    port_ = override_port_.value_or(ctx_.settings.dev.port);
    std::string root = ctx_.workspace;
    auto inspect = [root, project_dir] { return inspect_project(root, project_dir); };
    ProjectInfo info = co_await offload(ctx_.pool, inspect);

    std::optional<std::string> command;
    std::string source;
    if (override_command_ && !override_command_->empty()) {
      command = override_command_;
      source = "override";
    } else if (!ctx_.settings.dev.command.empty()) {
      command = ctx_.settings.dev.command;
      source = "settings";
    } else if (auto detected = detect_dev_command(info.files)) {
      command = detected;
      source = "detected";
    }
    if (!command || !info.exists) {
      if (state_ != State::waiting) kLog.info("dev server waiting");
      state_ = State::waiting;
      command_ = command;
      command_source_ = source;
      listening_ = {};
      hint_ = waiting_hint(project_dir, info.exists);
      co_await changed_.wait(kWaitingRecheck);
      continue;
    }

    command_ = command;
    command_source_ = source;
    hint_.reset();
    auto now_wall = ctx_.clock->wall();
    std::string banner = "--- start " + format_time_ms(now_wall) + " cmd=" + *command + " ---\n";
    log_.append(banner);

    SpawnSpec spec;
    spec.argv = {"bash", "-lc", *command};
    spec.env = ctx_.base_env;
    std::erase_if(spec.env, [](const std::string& kv) {
      return kv.starts_with("PORT=") || kv.starts_with("HOST=");
    });
    spec.env.push_back("PORT=" + std::to_string(port_));
    spec.env.push_back("HOST=0.0.0.0");
    auto dir = open_dir_beneath(ctx_.workspace, project_dir);
    std::optional<Result<Spawned>> spawned;
    int exec_errno = 0;
    if (dir) {
      spec.cwd_fd = *dir;
      spawned = spawn_process(spec, &exec_errno);
      ::close(*dir);
    }
    ++starts_;
    started_at_ = now_wall;
    auto started_mono = steady::now();
    exited_ = false;

    if (!spawned || !*spawned) {
      std::string why = !spawned ? dir.error().detail : spawned->error().detail;
      kLog.warn("dev server did not start", {{"error", why}});
      log_.append("--- cannot start: " + why + " ---\n");
      last_exit_ = LastExit{std::nullopt, std::nullopt, ctx_.clock->wall(), 0};
    } else {
      pid_t pid = (*spawned)->pid;
      pid_ = pid;
      state_ = State::starting;
      kLog.info("dev server started", {{"pid", pid}, {"port", port_}, {"source", source}});
      ctx_.reaper->watch(pid, [this](int status) {
        exited_ = true;
        exit_status_ = status;
        changed_.notify();
      });
      int out_fd = (*spawned)->out_fd;
      int err_fd = (*spawned)->err_fd;
      asio::co_spawn(ctx_.loop, [this, out_fd] { return copy_output(out_fd); }, asio::detached);
      asio::co_spawn(ctx_.loop, [this, err_fd] { return copy_output(err_fd); }, asio::detached);

      while (!exited_ && !restart_requested_ && !stopping_) {
        co_await probe();
        if (exited_) break;
        if (listening_.container) {
          if (state_ != State::ready) kLog.info("dev server ready", {{"port", port_}});
          state_ = State::ready;
          hint_.reset();
        } else if (listening_.loopback) {
          state_ = State::loopback_only;
          hint_ = std::string(kLoopbackOnlyHint);
        } else {
          state_ = State::starting;
          hint_.reset();
        }
        co_await changed_.wait(state_ == State::starting ? kProbeStarting : kProbeSteady);
      }
      const std::string no_marker;
      if (!exited_ && !stopping_) {
        // Restart: SIGTERM to the group, 5 s, SIGKILL.
        co_await kill_tree(ctx_, pid, no_marker, kStopGrace);
      }
      while (!exited_) co_await changed_.wait(std::chrono::seconds(1));
      auto status = decode_wait_status(exit_status_);
      auto ran = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started_mono);
      last_exit_ = LastExit{status.code, status.signal, ctx_.clock->wall(), ran.count()};
      pid_.reset();
      kLog.info("dev server exited", {{"code", status.code.value_or(-1)},
                                      {"signal", status.signal ? signal_name(*status.signal) : "-"},
                                      {"ran_ms", ran.count()}});
      if (!stopping_) {
        // What the leader left behind in its group would hold the port.
        co_await kill_tree(ctx_, pid, no_marker, kStopGrace);
      }
    }
    if (stopping_) break;
    if (restart_requested_) {
      backoff_.reset();
      continue;
    }

    auto ran = std::chrono::milliseconds(last_exit_ ? last_exit_->ran_ms : 0);
    auto delay = backoff_.next(ran);
    state_ = State::backoff;
    next_restart_at_ = ctx_.clock->wall() + delay;
    auto until = steady::now() + delay;
    while (!restart_requested_ && !stopping_ && steady::now() < until) {
      co_await probe();
      hint_ = listening_.container || listening_.loopback
                  ? std::optional<std::string>(port_taken_hint(port_))
                  : std::nullopt;
      auto left = until - steady::now();
      co_await changed_.wait(std::min<steady::duration>(left, kProbeSteady));
    }
    next_restart_at_.reset();
    if (restart_requested_) backoff_.reset();
  }
  running_ = false;
  changed_.notify();
}

std::string read_log_tail(const std::string& path, std::size_t lines) {
  if (lines == 0) return "";
  auto tail_of = [](const std::string& file, std::size_t want) -> std::vector<std::string> {
    std::vector<std::string> out;
    int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return out;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return out;
    }
    // Read backwards until enough line ends are in hand (the last line may lack one).
    constexpr off_t kBlock = 64 * 1024;
    std::string data;
    off_t pos = st.st_size;
    while (pos > 0) {
      off_t start = pos > kBlock ? pos - kBlock : 0;
      std::string block(static_cast<std::size_t>(pos - start), '\0');
      ssize_t n = ::pread(fd, block.data(), block.size(), start);
      if (n <= 0) break;
      block.resize(static_cast<std::size_t>(n));
      data.insert(0, block);
      pos = start;
      if (static_cast<std::size_t>(std::count(data.begin(), data.end(), '\n')) > want) break;
    }
    ::close(fd);
    std::size_t begin = 0;
    while (begin < data.size()) {
      std::size_t nl = data.find('\n', begin);
      if (nl == std::string::npos) nl = data.size();
      out.push_back(data.substr(begin, nl - begin));
      begin = nl + 1;
    }
    // A read that stopped early cut the first line; it is not whole.
    if (pos > 0 && !out.empty()) out.erase(out.begin());
    if (out.size() > want) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(want));
    return out;
  };
  std::vector<std::string> current = tail_of(path, lines);
  if (current.size() < lines) {
    std::vector<std::string> older = tail_of(path + ".1", lines - current.size());
    current.insert(current.begin(), older.begin(), older.end());
  }
  std::string out;
  for (const auto& l : current) {
    out += l;
    out += '\n';
  }
  return out;
}

}  // namespace sandboxd::runtimed
