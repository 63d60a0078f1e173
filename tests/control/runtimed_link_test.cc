// sandboxd's side of runtimed (SPEC §6.2): the node key and derived secrets, runtimed.json
// delivery into a run directory the tenant controls, the pinned socket and its checks, and
// the HTTP client against a scripted runtimed on a real unix socket (caps, deadlines, strict
// answers, NDJSON lines).
#include "runtimed_link.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "runtimed_client.h"

namespace sandboxd::control {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* kId = "01KZ3NDEKTSV4RRFFQ69G5FAVB";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A data directory with state/ and run/ as sandboxd makes them.
class DataDir {
 public:
  DataDir() {
    std::string tmpl = "/tmp/runtimed_link_test_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    root_ = tmpl;
    fs::create_directory(root_ / "state");
    fs::create_directory(root_ / "run");
    fs::permissions(root_ / "state", fs::perms::owner_all);
    fs::permissions(root_ / "run", fs::perms::owner_all);
    config_.data_dir = root_.string();
    // Root can hand files to the sandbox user; anyone else hands them to itself.
    if (::geteuid() == 0) {
      config_.sandbox.user = {1000, 1000};
    } else {
      config_.sandbox.user = {::geteuid(), ::getegid()};
    }
  }
  ~DataDir() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  const fs::path& root() const { return root_; }
  fs::path run(const std::string& id = kId) const { return root_ / "run" / id; }
  config::Config& config() { return config_; }
  void make_run_dir(const std::string& id = kId) {
    fs::create_directory(run(id));
    ASSERT_EQ(::chown(run(id).c_str(), config_.sandbox.user.uid, config_.sandbox.user.gid), 0);
  }

 private:
  fs::path root_;
  config::Config config_;
};

std::unique_ptr<RuntimedLink> open_link(DataDir& d) {
  auto link = RuntimedLink::open(d.config());
  EXPECT_TRUE(link) << (link ? "" : link.error().message());
  return link ? std::move(*link) : nullptr;
}

// ---------------------------------------------------------------------------- link

TEST(RuntimedLink, NodeKeyIsMadeOnceAndSecretsFollowTheSpec) {
  DataDir d;
  auto first = open_link(d);
  ASSERT_TRUE(first);
  fs::path key = d.root() / "state" / "node.key";
  ASSERT_EQ(fs::file_size(key), 32u);
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string secret = first->secret(kId, 1);
  EXPECT_EQ(secret.size(), 64u);
  auto again = open_link(d);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->secret(kId, 1), secret) << "the key is read back, not made again";
  EXPECT_NE(first->secret(kId, 2), secret) << "a new generation is a new secret";

  // A known answer: HMAC-SHA256(key, "runtimed\0" || id || "\0" || "7").
  std::string bytes;
  for (int i = 0; i < 32; ++i) bytes += static_cast<char>(i);
  std::ofstream(key, std::ios::binary | std::ios::trunc) << bytes;
  auto fixed = open_link(d);
  ASSERT_TRUE(fixed);
  std::string known = fixed->secret(kId, 7);
  EXPECT_EQ(known, "d9f7c85adcedcfb26809ae235ec50e0e471f3e53287ade528a901ca79ab87efd");
  EXPECT_EQ(RuntimedLink::secret_hash(known),
            "3e2599ba9a89bfe106a16634455267bbccd5d94f1fc7538806fb1dc6a093d690");

  std::ofstream(key, std::ios::binary | std::ios::trunc) << "short";
  auto broken = RuntimedLink::open(d.config());
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, Errc::corrupt);
}

TEST(RuntimedLink, SettingsCarryTheDevSettingsAndTaskLimits) {
  DataDir d;
  d.config().sandbox.dev_command = "npm run dev";
  d.config().tasks.max_queued = 3;
  auto link = open_link(d);
  ASSERT_TRUE(link);
  store::SandboxRow row;
  row.id = kId;
  auto settings = [&] { return json::parse(link->settings_json(row, std::string(64, 'a'))); };
  json::value s = settings();
  EXPECT_EQ(s.at("version"), json::value(1));
  EXPECT_EQ(s.at("sandbox_id"), json::value(kId));
  EXPECT_EQ(s.at("secret"), json::value(std::string(64, 'a')));
  EXPECT_EQ(s.at("project_dir"), json::value("workspace/app"));
  EXPECT_EQ(s.at("dev").at("command"), json::value("npm run dev"));
  EXPECT_EQ(s.at("dev").at("port"), json::value(3000)) << "no port anywhere: 3000";
  EXPECT_EQ(s.at("tasks").at("timeout_s"), json::value(7200));
  EXPECT_EQ(s.at("tasks").at("max_queued"), json::value(3));
  EXPECT_EQ(s.at("tasks").at("cancel_grace_ms"), json::value(5000));
  EXPECT_EQ(s.at("tasks").at("max_output_bytes"), json::value(16 * 1024 * 1024));
  row.ports = {5173, 3000};
  EXPECT_EQ(settings().at("dev").at("port"), json::value(5173)) << "the first declared port";
  d.config().sandbox.dev_port = 8080;
  EXPECT_EQ(settings().at("dev").at("port"), json::value(8080)) << "sandbox.dev_port";
  row.dev_port = 4000;
  row.dev_command = "make serve";
  EXPECT_EQ(settings().at("dev").at("port"), json::value(4000)) << "the sandbox's own setting";
  EXPECT_EQ(settings().at("dev").at("command"), json::value("make serve"));
}

TEST(RuntimedLink, DeliveryReplacesWhatTheTenantPutThereAndNeverFollowsIt) {
  DataDir d;
  auto link = open_link(d);
  ASSERT_TRUE(link);
  EXPECT_FALSE(link->deliver(kId, "{}")) << "no run directory";
  d.make_run_dir();
  ASSERT_TRUE(link->deliver(kId, R"({"a":1})"));
  fs::path file = d.run() / "runtimed.json";
  EXPECT_EQ(read_file(file), R"({"a":1})");
  struct stat st {};
  ASSERT_EQ(::lstat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  EXPECT_EQ(st.st_uid, d.config().sandbox.user.uid);
  EXPECT_EQ(st.st_gid, d.config().sandbox.user.gid);

  // The tenant replaced the name with a symlink to a file of ours: the rename replaces the
  // link, the target is untouched.
  fs::path victim = d.root() / "state" / "victim";
  std::ofstream(victim) << "keep";
  fs::remove(file);
  fs::create_symlink(victim, file);
  ASSERT_TRUE(link->deliver(kId, R"({"b":2})"));
  EXPECT_EQ(read_file(victim), "keep");
  EXPECT_FALSE(fs::is_symlink(fs::symlink_status(file)));
  EXPECT_EQ(read_file(file), R"({"b":2})");
  for (const auto& e : fs::directory_iterator(d.run())) {
    EXPECT_EQ(e.path().filename(), "runtimed.json") << "no temporary file is left behind";
  }

  // A run directory that is a symlink is never entered.
  std::string other = "01KZ3NDEKTSV4RRFFQ69G5FAVC";
  fs::create_directory_symlink(d.root() / "state", d.run(other));
  EXPECT_FALSE(link->deliver(other, "{}"));
  EXPECT_FALSE(fs::exists(d.root() / "state" / "runtimed.json"));
}

// A listening unix socket at `path`, owned by uid:gid.
int listen_at(const fs::path& path, uid_t uid, gid_t gid) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
    ADD_FAILURE() << "cannot listen at " << path;
  }
  if (::chown(path.c_str(), uid, gid) != 0) ADD_FAILURE() << "cannot chown " << path;
  return fd;
}

TEST(RuntimedLink, SocketIsPinnedAndChecked) {
  DataDir d;
  auto link = open_link(d);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->open_socket(kId).error().code, Errc::not_found) << "no run directory";
  d.make_run_dir();
  EXPECT_EQ(link->open_socket(kId).error().code, Errc::not_found) << "no socket yet";
  const auto& u = d.config().sandbox.user;
  fs::path sock = d.run() / "runtimed.sock";
  int fd = listen_at(sock, u.uid, u.gid);
  auto pinned = link->open_socket(kId);
  ASSERT_TRUE(pinned) << pinned.error().message();
  EXPECT_TRUE(pinned->path().starts_with("/proc/self/fd/"));
  // The pinned name reaches the socket even once the entry is renamed away.
  fs::rename(sock, d.run() / "moved.sock");
  int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", pinned->path().c_str());
  EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(client);
  fs::rename(d.run() / "moved.sock", sock);

  // A symlink, a regular file, a second link: bad_socket (Errc::conflict).
  fs::path real = d.run() / "real.sock";
  fs::rename(sock, real);
  fs::create_symlink("real.sock", sock);
  EXPECT_EQ(link->open_socket(kId).error().code, Errc::conflict) << "a symlink";
  fs::remove(sock);
  fs::create_hard_link(real, sock);
  EXPECT_EQ(link->open_socket(kId).error().code, Errc::conflict) << "two links";
  fs::remove(sock);
  std::ofstream(sock) << "not a socket";
  ASSERT_EQ(::chown(sock.c_str(), u.uid, u.gid), 0);
  EXPECT_EQ(link->open_socket(kId).error().code, Errc::conflict) << "a regular file";
  fs::remove(sock);
  fs::rename(real, sock);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(sock.c_str(), u.uid + 1, u.gid), 0);
    EXPECT_EQ(link->open_socket(kId).error().code, Errc::conflict) << "another owner";
  }
  ::close(fd);
}

// ---------------------------------------------------------------------------- client

// One scripted answer: its bytes, then the connection is closed, or held open until stop().
struct Reply {
  std::string bytes;
  bool hold = false;
};

// A scripted runtimed: accepts connections on the sandbox's socket and answers each request
// with the next scripted reply.
class FakeRuntimed {
 public:
  FakeRuntimed(DataDir& d, std::vector<Reply> replies) : replies_(std::move(replies)) {
    const auto& u = d.config().sandbox.user;
    listener_ = listen_at(d.run() / "runtimed.sock", u.uid, u.gid);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeRuntimed() { stop(); }
  void stop() {
    if (stopped_.exchange(true)) return;
    ::shutdown(listener_, SHUT_RDWR);
    for (int fd : held_) ::shutdown(fd, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
    for (int fd : held_) ::close(fd);
  }
  const std::vector<std::string>& requests() const { return requests_; }

 private:
  void serve() {
    for (const auto& reply : replies_) {
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      requests_.push_back(req);
      std::string_view out = reply.bytes;
      while (!out.empty()) {
        ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        out.remove_prefix(static_cast<std::size_t>(n));
      }
      if (reply.hold) {
        held_.push_back(fd);
      } else {
        ::close(fd);
      }
    }
  }

  std::vector<Reply> replies_;
  std::vector<std::string> requests_;
  std::vector<int> held_;
  int listener_ = -1;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

template <class T>
T run_io(asio::awaitable<T> op) {
  asio::io_context ioc;
  std::optional<T> out;
  asio::co_spawn(
      ioc, [&]() -> asio::awaitable<void> { out.emplace(co_await std::move(op)); }, asio::detached);
  ioc.run();
  return std::move(*out);
}

std::string ok_json(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

TEST(RuntimedClient, CallsCarryTheSecretAndAnswersAreCappedAndStrict) {
  DataDir d;
  d.make_run_dir();
  auto link = open_link(d);
  ASSERT_TRUE(link);
  RuntimedClient client(*link);
  RuntimedTarget target{kId, std::string(64, 'f')};
  std::string big(2 * 1024 * 1024, 'x');
  FakeRuntimed fake(d, {{ok_json(R"({"ok":true})")},
                        {"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\n\r\n{}"},
                        {ok_json(big)},
                        {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"},
                        {"garbage\r\n\r\n"},
                        {"", true}});
  auto first = run_io(client.call(target, "POST", "/tasks", R"({"id":"x"})", 2s));
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, R"({"ok":true})");
  EXPECT_EQ(first->content_type, "application/json");
  auto limited = run_io(client.call(target, "GET", "/status", "", 2s));
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429) << "an HTTP error is an answer";
  auto capped = run_io(client.call(target, "GET", "/status", "", 2s));
  ASSERT_FALSE(capped);
  EXPECT_EQ(capped.error().code, Errc::corrupt) << "over 1 MiB";
  auto old = run_io(client.call(target, "GET", "/status", "", 2s));
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code, Errc::corrupt) << "HTTP/1.0";
  auto junk = run_io(client.call(target, "GET", "/status", "", 2s));
  ASSERT_FALSE(junk);
  EXPECT_EQ(junk.error().code, Errc::corrupt);
  auto start = std::chrono::steady_clock::now();
  auto silent = run_io(client.call(target, "GET", "/status", "", 300ms));
  ASSERT_FALSE(silent);
  EXPECT_EQ(silent.error().code, Errc::timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  fake.stop();
  ASSERT_GE(fake.requests().size(), 1u);
  const std::string& req = fake.requests()[0];
  EXPECT_EQ(req.rfind("POST /tasks HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("Authorization: Bearer " + std::string(64, 'f') + "\r\n"), std::string::npos)
      << req;
  EXPECT_NE(req.find("Content-Type: application/json\r\n"), std::string::npos) << req;

  // Nobody listens any more: refused, not hung.
  auto refused = run_io(client.call(target, "GET", "/status", "", 2s));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::unavailable);
}

TEST(RuntimedClient, StreamsDeliverLinesAcrossChunksAndSkipHeartbeats) {
  DataDir d;
  d.make_run_dir();
  auto link = open_link(d);
  ASSERT_TRUE(link);
  RuntimedClient client(*link);
  RuntimedTarget target{kId, std::string(64, 'f')};
  std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  auto chunk = [](const std::string& s) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", s.size());
    return std::string(size) + s + "\r\n";
  };
  std::string lines = head + chunk("{\"id\":1}\n{\"i") + chunk("d\":2}\n\n") +
                      chunk("\n{\"id\":3}\r\n") + chunk("{\"id\":4}") + "0\r\n\r\n";
  std::string huge = head + chunk(std::string(300 * 1024, 'y')) + "0\r\n\r\n";
  std::string error = R"({"error":{"code":"no_such_task","message":"no task with this id"}})";
  std::string missing =
      "HTTP/1.1 404 Not Found\r\nContent-Length: " + std::to_string(error.size()) + "\r\n\r\n" +
      error;
  FakeRuntimed fake(d, {{lines}, {huge}, {missing}, {head + chunk("{\"id\":1}\n"), true}});
  std::vector<std::string> got;
  RuntimedClient::LineFn collect = [&got](std::string_view line) {
    got.emplace_back(line);
    return true;
  };
  auto streamed = run_io(client.stream_lines(target, "/tasks/x/events?since=0", collect));
  ASSERT_TRUE(streamed) << streamed.error().message();
  EXPECT_EQ(streamed->status, 200);
  EXPECT_EQ(got,
            (std::vector<std::string>{R"({"id":1})", R"({"id":2})", R"({"id":3})", R"({"id":4})"}));
  got.clear();
  auto too_long = run_io(client.stream_lines(target, "/tasks/x/events", collect));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, Errc::corrupt) << "an event line over 256 KiB";
  auto unknown = run_io(client.stream_lines(target, "/tasks/x/events", collect));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_NE(unknown->body.find("no_such_task"), std::string::npos);
  EXPECT_TRUE(got.empty()) << "an error answer is no stream";
  auto quiet = run_io(client.stream_lines(target, "/tasks/x/events", collect, 300ms));
  ASSERT_FALSE(quiet);
  EXPECT_EQ(quiet.error().code, Errc::timeout) << "silent past the limit";
  EXPECT_EQ(got, (std::vector<std::string>{R"({"id":1})"})) << "what came before still arrived";
  fake.stop();
}

}  // namespace
}  // namespace sandboxd::control
