// docker::Client against a real Docker Engine: DOCKER_HOST, else /var/run/docker.sock.
//
// Without an engine every test fails and says how to start one (scripts/docker-engine.sh);
// nothing is skipped. The sandbox image is image/build-test-image.sh's, (re)built at first
// use. Every container and network is named "sbxt-<run tag>-..." with a random per-process
// tag and removed in TearDown, also after a failure. Waits are on conditions with deadlines.
#include "docker/client.h"
#include "docker/socket.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace sandboxd::docker {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
// Built without RUNTIMED: sandbox-init is its CMD, so a container runs without sandboxd's
// runtimed.json. Its own tag keeps it apart from the integration tests' runtimed image.
constexpr const char* kImage = "sandboxd-test-engine:latest";
constexpr const char* kRunLabel = "sandboxd.test.run";

// Runs `task` on `io` to completion; an exception escaping it fails the test loudly.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) out.emplace(std::move(value));
  });
  io.restart();
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

const std::string& run_tag() {
  static const std::string tag = [] {
    std::random_device rd;
    std::string out;
    for (int i = 0; i < 8; ++i) out += "0123456789abcdef"[rd() % 16];
    return out;
  }();
  return tag;
}

struct Engine {
  std::string socket;
  std::string problem;  // empty when the engine answers and the image is there
};

const Engine& engine() {
  static const Engine e = [] {
    Engine out;
    auto s = resolve_docker_socket(kDefaultDockerHost);
    if (!s) {
      out.problem = s.error().message();
      return out;
    }
    out.socket = s->path;
    asio::io_context io;
    ClientOptions options;
    options.socket_path = s->path;
    options.call_timeout = 5s;
    Client client(io.get_executor(), options);
    if (auto st = run(io, client.ping()); !st) {
      out.problem = "no Docker Engine answers at unix://" + s->path + " (" +
                    st.error().message() +
                    "). Start one with: eval \"$(scripts/docker-engine.sh start)\"";
      return out;
    }
    const std::string cmd = "DOCKER_HOST=unix://" + s->path + " " SANDBOXD_SOURCE_DIR
                            "/image/build-test-image.sh " + kImage + " >/dev/null";
    if (std::system(cmd.c_str()) != 0) out.problem = "image/build-test-image.sh failed";
    return out;
  }();
  return e;
}

struct Output {
  std::string out;
  std::string err;
};

class DockerEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(engine().problem.empty()) << engine().problem;
    client_ = make_client(engine().socket, 30s);
  }

  void TearDown() override {
    if (!client_) return;
    for (const auto& c : containers_) (void)run(client_->container_remove(c, true, true));
    for (const auto& n : networks_) (void)run(client_->network_remove(n));
    for (const auto& d : dirs_) std::filesystem::remove_all(d);
  }

  std::unique_ptr<Client> make_client(const std::string& socket,
                                      std::chrono::milliseconds timeout) {
    ClientOptions options;
    options.socket_path = socket;
    options.call_timeout = timeout;
    options.on_call = [this](const CallRecord& r) { calls_.push_back(r); };
    return std::make_unique<Client>(io_.get_executor(), options);
  }

  template <class T>
  T run(asio::awaitable<T> task) {
    return docker::run(io_, std::move(task));
  }

  static std::string name(std::string_view what) {
    return "sbxt-" + run_tag() + "-" + std::string(what);
  }

  // A container of the test image running its default command (httpd on 3000).
  ContainerSpec basic_spec(std::string_view what) {
    ContainerSpec s;
    s.name = name(what);
    s.image = kImage;
    s.labels = {{kRunLabel, run_tag()}, {"sandboxd.test.case", std::string(what)}};
    s.stop_signal = "SIGTERM";
    s.stop_timeout = 5;
    return s;
  }

  // SPEC §5.4's container, on `network`, with `workspace` bound at /home/sandbox.
  ContainerSpec hardened_spec(std::string_view what, const std::string& network,
                              const std::string& workspace) {
    ContainerSpec s = basic_spec(what);
    s.hostname = "s-" + run_tag();
    s.user = "1000:1000";
    s.env = {"HOME=/home/sandbox", "SANDBOX_ID=" + run_tag(), "PORT=3000"};
    s.working_dir = "/home/sandbox";
    s.stop_timeout = 10;
    s.binds = {workspace + ":/home/sandbox:rw"};
    s.cap_drop = {"ALL"};
    s.security_opt = {"no-new-privileges"};
    s.readonly_rootfs = true;
    s.tmpfs = {{"/tmp", "rw,exec,nosuid,nodev,size=64m"}};
    s.memory_bytes = 256 * 1024 * 1024;
    s.memory_swap_bytes = s.memory_bytes;
    s.pids_limit = 128;
    s.ulimits = {{"nofile", 4096, 4096}};
    s.nano_cpus = 500'000'000;
    s.init = false;
    s.network_mode = network;
    s.endpoints[network] = EndpointConfig{};
    s.restart_policy = RestartPolicy{"no", 0};
    s.log_config = LogConfig{"json-file", {{"max-size", "10m"}, {"max-file", "2"}}};
    return s;
  }

  std::string create(const ContainerSpec& spec) {
    containers_.push_back(spec.name);
    auto created = run(client_->container_create(spec));
    EXPECT_TRUE(created) << created.error().message();
    return created ? created->id : std::string();
  }

  std::string create_started(const ContainerSpec& spec) {
    auto id = create(spec);
    if (auto st = run(client_->container_start(id)); !st) {
      ADD_FAILURE() << st.error().message();
    }
    return id;
  }

  std::string create_network(std::string_view what) {
    NetworkSpec spec;
    spec.name = name(what);
    spec.options = {{"com.docker.network.bridge.enable_icc", "false"}};
    spec.labels = {{kRunLabel, run_tag()}};
    networks_.push_back(spec.name);
    auto id = run(client_->network_create(spec));
    EXPECT_TRUE(id) << id.error().message();
    return spec.name;
  }

  std::string make_workspace(std::string_view what) {
    auto dir = std::filesystem::temp_directory_path() / name(what);
    std::filesystem::create_directories(dir);
    dirs_.push_back(dir);
    EXPECT_EQ(::chown(dir.c_str(), 1000, 1000), 0);
    return dir.string();
  }

  // Runs `script` with sh -c as 1000:1000 and collects its output.
  Result<ExecResult> sh(const std::string& container, const std::string& script, Output& out,
                        std::chrono::milliseconds timeout = 0ms) {
    ExecSpec spec;
    spec.cmd = {"sh", "-c", script};
    spec.user = "1000:1000";
    ExecOptions options;
    options.timeout = timeout;
    options.on_output = [&out](ExecStream s, std::string_view bytes) {
      (s == ExecStream::err ? out.err : out.out) += bytes;
    };
    return run(client_->exec(container, spec, options));
  }

  std::string sh_out(const std::string& container, const std::string& script) {
    Output out;
    auto r = sh(container, script, out);
    EXPECT_TRUE(r) << r.error().message();
    return out.out;
  }

  // Fetches http://ip:port/ until it answers 200 or `deadline` passes ("" then).
  static asio::awaitable<std::string> http_get(std::string ip, unsigned short port,
                                               Clock::time_point deadline) {
    auto ex = co_await asio::this_coro::executor;
    const tcp::endpoint to(asio::ip::make_address(ip), port);
    for (;;) {
      tcp::socket socket(ex);
      asio::steady_timer timer(ex, 2s);
      auto connected = co_await (socket.async_connect(to, nothrow) || timer.async_wait(nothrow));
      if (connected.index() == 0 && !std::get<0>(std::get<0>(connected))) {
        const std::string request = "GET / HTTP/1.0\r\nHost: test\r\n\r\n";
        auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(request), nothrow);
        std::string response;
        // busybox httpd answers HTTP/1.0 and closes: read to EOF, whatever ends the read.
        (void)co_await asio::async_read(socket, asio::dynamic_buffer(response), nothrow);
        if (!wec && response.find(" 200 ") != std::string::npos) co_return response;
      }
      if (Clock::now() >= deadline) co_return std::string();
      asio::steady_timer pause(ex, 50ms);
      co_await pause.async_wait(nothrow);
    }
  }

  // Waits for sandbox-init's ready marker (its SIGTERM handler is installed by then).
  asio::awaitable<bool> ready(std::string container) {
    auto ex = co_await asio::this_coro::executor;
    const auto deadline = Clock::now() + 10s;
    ExecSpec spec;
    spec.cmd = {"test", "-f", "/tmp/sandbox-www/index.html"};
    const ExecOptions options;
    for (;;) {
      auto r = co_await client_->exec(container, spec, options);
      if (r && r->exit_code == 0) co_return true;
      if (Clock::now() >= deadline) co_return false;
      asio::steady_timer pause(ex, 20ms);
      co_await pause.async_wait(nothrow);
    }
  }

  // Runs `script` until its stdout equals `expected` or `deadline` passes; the last output.
  std::string wait_output(const std::string& container, const std::string& script,
                          const std::string& expected, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    std::string last;
    for (;;) {
      last = sh_out(container, script);
      if (last == expected || Clock::now() >= deadline) return last;
      asio::steady_timer pause(io_, 50ms);
      pause.wait();
    }
  }

  asio::io_context io_;
  std::unique_ptr<Client> client_;
  std::vector<std::string> containers_;
  std::vector<std::string> networks_;
  std::vector<std::filesystem::path> dirs_;
  std::vector<CallRecord> calls_;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---- engine and images --------------------------------------------------------------------

TEST_F(DockerEngineTest, NegotiatesTheApiVersion) {
  EXPECT_EQ(client_->api_version(), "");
  auto info = run(client_->version());
  ASSERT_TRUE(info) << info.error().message();
  auto chosen = run(client_->negotiate());
  ASSERT_TRUE(chosen) << chosen.error().message();
  EXPECT_EQ(*chosen, client_->api_version());
  // min(engine, ours), and never below our minimum.
  auto v = [](const std::string& s) {
    return std::pair{std::stoi(s.substr(0, s.find('.'))), std::stoi(s.substr(s.find('.') + 1))};
  };
  const auto expected = std::min(v(info->api_version), v(std::string(kMaxApiVersion)));
  EXPECT_EQ(v(*chosen), expected) << "engine " << info->api_version;
  EXPECT_GE(v(*chosen), v(std::string(kMinApiVersion)));
}

TEST_F(DockerEngineTest, VersionedCallsNegotiateFirst) {
  auto list = run(client_->container_list(ListOptions{}));
  ASSERT_TRUE(list) << list.error().message();
  EXPECT_FALSE(client_->api_version().empty());
  ASSERT_GE(calls_.size(), 2u);
  EXPECT_EQ(calls_[0].op, Op::version);
  EXPECT_EQ(calls_[1].op, Op::container_list);
}

TEST_F(DockerEngineTest, ImageInspectPresentAndMissing) {
  auto image = run(client_->image_inspect(kImage));
  ASSERT_TRUE(image) << image.error().message();
  EXPECT_TRUE(image->id.starts_with("sha256:"));
  EXPECT_EQ(image->user, "1000:1000");
  EXPECT_EQ(run(client_->image_exists(kImage)).value(), true);

  calls_.clear();
  const std::string missing = "sandboxd-missing-" + run_tag() + ":none";
  auto gone = run(client_->image_inspect(missing));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::not_found);
  EXPECT_EQ(docker_error_kind(gone.error()), DockerErrorKind::not_found);
  EXPECT_NE(gone.error().detail.find(missing), std::string::npos) << gone.error().detail;
  EXPECT_EQ(run(client_->image_exists(missing)).value(), false);
  ASSERT_FALSE(calls_.empty());
  EXPECT_EQ(calls_[0].op, Op::image_inspect);
  EXPECT_EQ(calls_[0].error, DockerErrorKind::not_found);
  EXPECT_EQ(calls_[0].http_status, 404);
}

// ---- networks -----------------------------------------------------------------------------

TEST_F(DockerEngineTest, NetworkWithIccOffReadsBackAndConnects) {
  const auto network = create_network("net");
  auto info = run(client_->network_inspect(network));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->name, network);
  EXPECT_EQ(info->driver, "bridge");
  EXPECT_EQ(info->options["com.docker.network.bridge.enable_icc"], "false");
  EXPECT_EQ(info->labels[kRunLabel], run_tag());
  ASSERT_FALSE(info->subnets.empty());
  EXPECT_NE(info->subnets[0].find('/'), std::string::npos);

  NetworkSpec again;
  again.name = network;
  auto duplicate = run(client_->network_create(again));
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(docker_error_kind(duplicate.error()), DockerErrorKind::conflict);

  auto missing = run(client_->network_inspect(name("no-such-net")));
  ASSERT_FALSE(missing);
  EXPECT_EQ(docker_error_kind(missing.error()), DockerErrorKind::not_found);

  // A created container joins a second network.
  const auto id = create(basic_spec("net-member"));
  const auto second = create_network("net2");
  auto connected = run(client_->network_connect(second, id, EndpointConfig{{"member"}}));
  ASSERT_TRUE(connected) << connected.error().message();
  auto c = run(client_->container_inspect(id));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->networks.count(second), 1u);
}

// ---- containers ---------------------------------------------------------------------------

TEST_F(DockerEngineTest, HardenedContainerReadsBackEveryHardeningField) {
  const auto network = create_network("hard-net");
  const auto workspace = make_workspace("hard-ws");
  const auto spec = hardened_spec("hard", network, workspace);
  const auto id = create_started(spec);
  auto c = run(client_->container_inspect(id));
  ASSERT_TRUE(c) << c.error().message();

  EXPECT_EQ(c->id, id);
  EXPECT_EQ(c->name, spec.name);
  EXPECT_TRUE(c->state.running);
  EXPECT_EQ(c->state.status, "running");
  EXPECT_GT(c->state.pid, 0);
  EXPECT_EQ(c->hostname, spec.hostname);
  EXPECT_EQ(c->user, "1000:1000");
  EXPECT_EQ(c->working_dir, "/home/sandbox");
  EXPECT_EQ(c->labels.at(kRunLabel), run_tag());
  EXPECT_EQ(c->stop_signal, "SIGTERM");
  EXPECT_EQ(c->stop_timeout, 10);

  const auto& h = c->host_config;
  EXPECT_EQ(h.cap_drop, std::vector<std::string>{"ALL"});
  EXPECT_TRUE(h.cap_add.empty());
  EXPECT_EQ(h.security_opt, std::vector<std::string>{"no-new-privileges"});
  EXPECT_TRUE(h.readonly_rootfs);
  EXPECT_EQ(h.tmpfs.at("/tmp"), "rw,exec,nosuid,nodev,size=64m");
  EXPECT_EQ(h.memory_bytes, 256 * 1024 * 1024);
  EXPECT_EQ(h.memory_swap_bytes, h.memory_bytes);
  EXPECT_EQ(h.pids_limit, 128);
  EXPECT_EQ(h.ulimits, (std::vector<Ulimit>{{"nofile", 4096, 4096}}));
  EXPECT_EQ(h.nano_cpus, 500'000'000);
  EXPECT_EQ(h.init, std::optional<bool>(false));
  EXPECT_FALSE(h.privileged);
  EXPECT_FALSE(h.publish_all_ports);
  EXPECT_EQ(h.port_bindings, 0u);
  EXPECT_NE(h.pid_mode, "host");
  EXPECT_NE(h.ipc_mode, "host");
  EXPECT_EQ(h.network_mode, network);
  EXPECT_EQ(h.restart_policy.name, "no");
  EXPECT_EQ(h.log_config.type, "json-file");
  EXPECT_EQ(h.log_config.config.at("max-size"), "10m");
  EXPECT_EQ(h.binds, spec.binds);

  // Seen from inside, and reachable from the host at its address on the network.
  const auto inside = sh_out(id,
                             "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; ulimit -n;"
                             "touch /rootfs 2>/dev/null && echo rootfs-writable;"
                             "touch /tmp/t && echo tmp-ok; touch /home/sandbox/w && echo home-ok");
  EXPECT_NE(inside.find("1000\n"), std::string::npos) << inside;
  EXPECT_NE(inside.find("0000000000000000"), std::string::npos) << inside;
  EXPECT_NE(inside.find("NoNewPrivs:\t1"), std::string::npos) << inside;
  EXPECT_NE(inside.find("4096"), std::string::npos) << inside;
  EXPECT_EQ(inside.find("rootfs-writable"), std::string::npos) << inside;
  EXPECT_NE(inside.find("tmp-ok"), std::string::npos) << inside;
  EXPECT_NE(inside.find("home-ok"), std::string::npos) << inside;

  const auto ip = c->ip_address(network);
  ASSERT_FALSE(ip.empty());
  ASSERT_TRUE(run(ready(id)));
  auto page = run(http_get(ip, 3000, Clock::now() + 10s));
  EXPECT_NE(page.find(" 200 "), std::string::npos) << page;
  EXPECT_NE(page.find(spec.hostname), std::string::npos) << page;
}

TEST_F(DockerEngineTest, DuplicateNameIsAConflict) {
  const auto spec = basic_spec("dup");
  create(spec);
  auto again = run(client_->container_create(spec));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::conflict);
  EXPECT_EQ(docker_error_kind(again.error()), DockerErrorKind::conflict);
  EXPECT_TRUE(again.error().detail.starts_with("docker conflict 409: ")) << again.error().detail;
}

TEST_F(DockerEngineTest, CreateWithMissingImageIsNotFound) {
  auto spec = basic_spec("noimage");
  spec.image = "sandboxd-missing-" + run_tag() + ":none";
  containers_.push_back(spec.name);
  auto created = run(client_->container_create(spec));
  ASSERT_FALSE(created);
  EXPECT_EQ(docker_error_kind(created.error()), DockerErrorKind::not_found);
}

TEST_F(DockerEngineTest, ListFiltersOnLabels) {
  create(basic_spec("list-a"));
  create(basic_spec("list-b"));
  ListOptions options;
  options.all = true;
  options.labels = {std::string(kRunLabel) + "=" + run_tag(), "sandboxd.test.case=list-a"};
  auto list = run(client_->container_list(options));
  ASSERT_TRUE(list) << list.error().message();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->at(0).names, std::vector<std::string>{name("list-a")});
  EXPECT_EQ(list->at(0).state, "created");
  EXPECT_EQ(list->at(0).labels.at("sandboxd.test.case"), "list-a");

  options.labels = {std::string(kRunLabel) + "=" + run_tag()};
  options.all = false;  // neither runs
  EXPECT_TRUE(run(client_->container_list(options)).value().empty());
}

TEST_F(DockerEngineTest, StopKillWaitAndRemove) {
  const auto id = create_started(basic_spec("life"));
  ASSERT_TRUE(run(ready(id)));
  auto t0 = Clock::now();
  ASSERT_TRUE(run(client_->container_stop(id, 10s)));
  EXPECT_LT(seconds_since(t0), 5.0) << "sandbox-init should exit on SIGTERM at once";
  auto stopped = run(client_->container_inspect(id));
  ASSERT_TRUE(stopped);
  EXPECT_EQ(stopped->state.status, "exited");
  EXPECT_FALSE(stopped->state.running);
  EXPECT_EQ(stopped->state.exit_code, 0);
  EXPECT_TRUE(run(client_->container_stop(id, 1s))) << "stopping a stopped container is fine";

  ASSERT_TRUE(run(client_->container_start(id)));
  EXPECT_TRUE(run(client_->container_start(id))) << "starting a running container is fine";
  ASSERT_TRUE(run(client_->container_kill(id, "SIGKILL")));
  auto waited = run(client_->container_wait(id, 20s));
  ASSERT_TRUE(waited) << waited.error().message();
  EXPECT_EQ(waited->exit_code, 137);
  auto killed = run(client_->container_inspect(id));
  ASSERT_TRUE(killed);
  EXPECT_EQ(killed->state.exit_code, 137);

  auto not_running = run(client_->container_kill(id, "SIGKILL"));
  ASSERT_FALSE(not_running);
  EXPECT_EQ(docker_error_kind(not_running.error()), DockerErrorKind::conflict);

  ASSERT_TRUE(run(client_->container_remove(id, false)));
  for (auto r : {run(client_->container_inspect(id)).has_value()}) EXPECT_FALSE(r);
  auto again = run(client_->container_remove(id, true));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::not_found);
  EXPECT_EQ(docker_error_kind(again.error()), DockerErrorKind::not_found);
  EXPECT_EQ(docker_error_kind(run(client_->container_stop(id, 1s)).error()),
            DockerErrorKind::not_found);
  EXPECT_EQ(docker_error_kind(run(client_->container_start(id)).error()),
            DockerErrorKind::not_found);
}

TEST_F(DockerEngineTest, ArchiveOfTheSkeleton) {
  const auto id = create(basic_spec("skel"));  // works on a container that never ran
  auto tar = run(client_->container_archive(id, "/opt/sandbox-skel"));
  ASSERT_TRUE(tar) << tar.error().message();
  ASSERT_EQ(tar->size() % 512, 0u);
  std::vector<std::string> names;
  std::string readme;
  for (std::size_t at = 0; at + 512 <= tar->size();) {
    const std::string header = tar->substr(at, 512);
    if (header[0] == '\0') break;
    std::string file = header.substr(0, header.find('\0'));
    const std::size_t size = std::stoul(header.substr(124, 12), nullptr, 8);
    names.push_back(file);
    if (file == "sandbox-skel/README.md") readme = tar->substr(at + 512, size);
    at += 512 + (size + 511) / 512 * 512;
  }
  EXPECT_NE(std::find(names.begin(), names.end(), "sandbox-skel/README.md"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "sandbox-skel/workspace/.keep"), names.end());
  EXPECT_NE(readme.find("# Workspace"), std::string::npos) << readme;

  auto missing = run(client_->container_archive(id, "/opt/no-such-dir"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(docker_error_kind(missing.error()), DockerErrorKind::not_found);
}

// ---- exec ---------------------------------------------------------------------------------

TEST_F(DockerEngineTest, ExecSeparatesStdoutAndStderrAndReportsTheExitCode) {
  const auto id = create_started(basic_spec("exec"));
  Output out;
  auto r = sh(id, "echo to-out; echo to-err >&2; echo more-out; exit 3", out);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(out.out, "to-out\nmore-out\n");
  EXPECT_EQ(out.err, "to-err\n");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->stdout_bytes, 16u);
  EXPECT_EQ(r->stderr_bytes, 7u);

  // User, working directory and environment are the exec's own.
  ExecSpec spec;
  spec.cmd = {"sh", "-c", "id -u; pwd; echo $GREETING"};
  spec.user = "1000:1000";
  spec.working_dir = "/tmp";
  spec.env = {"GREETING=hi there"};
  std::string text;
  ExecOptions options;
  options.on_output = [&](ExecStream, std::string_view b) { text += b; };
  auto env = run(client_->exec(id, spec, options));
  ASSERT_TRUE(env) << env.error().message();
  EXPECT_EQ(text, "1000\n/tmp\nhi there\n");
  EXPECT_EQ(env->exit_code, 0);

  // Large output spans many frames and reads.
  Output big;
  auto large = sh(id, "head -c 300000 /dev/zero | tr '\\0' a; echo; echo done >&2", big);
  ASSERT_TRUE(large) << large.error().message();
  EXPECT_EQ(big.out.size(), 300001u);
  EXPECT_EQ(big.err, "done\n");

  auto missing = run(client_->exec(name("no-such-container"), spec, options));
  ASSERT_FALSE(missing);
  EXPECT_EQ(docker_error_kind(missing.error()), DockerErrorKind::not_found);
}

TEST_F(DockerEngineTest, ExecTimeoutKillsTheCommandAndItsChildren) {
  const auto id = create_started(basic_spec("exec-timeout"));
  Output out;
  const auto t0 = Clock::now();
  auto r = sh(id, "echo begun; sleep 30 & sleep 31; echo never", out, 500ms);
  const double took = seconds_since(t0);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 137);
  EXPECT_GE(took, 0.5);
  EXPECT_LT(took, 10.0);
  EXPECT_EQ(out.out, "begun\n");
  // Neither sleep survives (killed processes leave no command line, even as zombies).
  const std::string count =
      "for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline 2>/dev/null; echo; done"
      " | grep -c '^sleep 3[01] $'";
  EXPECT_EQ(wait_output(id, count, "0\n", 5s), "0\n");
}

TEST_F(DockerEngineTest, DetachedExecReturnsAtOnce) {
  const auto id = create_started(basic_spec("exec-detached"));
  ExecSpec spec;
  spec.cmd = {"sh", "-c", "echo started > /tmp/detached; sleep 30"};
  spec.user = "1000:1000";
  const auto t0 = Clock::now();
  auto exec_id = run(client_->exec_detached(id, spec));
  ASSERT_TRUE(exec_id) << exec_id.error().message();
  EXPECT_LT(seconds_since(t0), 5.0);
  auto info = run(client_->exec_inspect(*exec_id));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_TRUE(info->running);
  EXPECT_FALSE(info->exit_code);
  EXPECT_GT(info->pid, 0);
  EXPECT_EQ(wait_output(id, "cat /tmp/detached 2>/dev/null", "started\n", 5s), "started\n");

  auto missing = run(client_->exec_inspect("0123456789abcdef"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(docker_error_kind(missing.error()), DockerErrorKind::not_found);
}

// ---- events -------------------------------------------------------------------------------

class EventsTest : public DockerEngineTest {
 protected:
  // Waits until the stream is up, starts both containers, then stops the watched one.
  asio::awaitable<Status> start_then_stop(asio::steady_timer& connected, std::string watched,
                                          std::string other) {
    co_await connected.async_wait(nothrow);
    if (auto st = co_await client_->container_start(other); !st) co_return st;
    if (auto st = co_await client_->container_start(watched); !st) co_return st;
    if (!co_await ready(watched)) co_return Error{Errc::timeout, "container never got ready"};
    co_return co_await client_->container_stop(watched, 10s);
  }

  asio::awaitable<std::optional<Status>> watch(EventFilter filter, std::vector<Event>& seen,
                                               asio::steady_timer& connected,
                                               std::string watched, std::string other) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer deadline(ex, 30s);
    auto on_event = [&seen](const Event& e) {
      seen.push_back(e);
      return e.action != "die";
    };
    auto on_connected = [&connected] { connected.cancel(); };
    auto outcome = co_await ((client_->events(filter, on_event, on_connected) &&
                              start_then_stop(connected, watched, other)) ||
                             deadline.async_wait(nothrow));
    if (outcome.index() == 1) co_return std::nullopt;  // deadline
    auto [events_status, scenario_status] = std::get<0>(outcome);
    if (!scenario_status) co_return scenario_status;
    co_return events_status;
  }
};

TEST_F(EventsTest, StreamSeesStartAndDieOfTheWatchedContainerOnly) {
  auto watched_spec = basic_spec("ev-watched");
  watched_spec.labels["sandboxd.test.watch"] = run_tag();
  const auto watched = create(watched_spec);
  const auto other = create(basic_spec("ev-other"));

  EventFilter filter;
  filter.types = {"container"};
  filter.labels = {"sandboxd.test.watch=" + run_tag()};
  // The engine subscribes just after sending the head: `since` closes that gap.
  filter.since = static_cast<std::int64_t>(std::time(nullptr)) - 1;
  std::vector<Event> seen;
  asio::steady_timer connected(io_, Clock::time_point::max());
  auto result = run(watch(filter, seen, connected, watched, other));
  ASSERT_TRUE(result) << "no die event within 30 s; saw " << seen.size() << " events";
  ASSERT_TRUE(*result) << result->error().message();

  std::vector<std::string> actions;
  for (const auto& e : seen) {
    EXPECT_EQ(e.type, "container");
    EXPECT_EQ(e.id, watched) << e.action;
    EXPECT_NE(e.id, other);
    actions.push_back(e.action);
  }
  auto start = std::find(actions.begin(), actions.end(), "start");
  ASSERT_NE(start, actions.end());
  EXPECT_NE(std::find(start, actions.end(), "die"), actions.end());
  const auto& die = seen.back();
  EXPECT_EQ(die.action, "die");
  EXPECT_EQ(die.exit_code(), 0);
  EXPECT_EQ(die.attributes.at("name"), watched_spec.name);
  EXPECT_EQ(die.attributes.at("sandboxd.test.watch"), run_tag());
  EXPECT_GT(die.time, 0);
}

TEST_F(DockerEngineTest, EventsStreamOnAMissingEngineIsUnreachable) {
  auto client = make_client("/tmp/sbxt-" + run_tag() + "-none.sock", 2s);
  auto st = run(client->events(EventFilter{}, [](const Event&) { return true; }));
  ASSERT_FALSE(st);
  EXPECT_EQ(docker_error_kind(st.error()), DockerErrorKind::unreachable);
}

// ---- transport ----------------------------------------------------------------------------

TEST_F(DockerEngineTest, MissingSocketIsUnreachableAtOnce) {
  auto client = make_client("/tmp/sbxt-" + run_tag() + "-none.sock", 10s);
  const auto t0 = Clock::now();
  auto st = run(client->ping());
  ASSERT_FALSE(st);
  EXPECT_LT(seconds_since(t0), 1.0);
  EXPECT_EQ(st.error().code, Errc::unavailable);
  EXPECT_EQ(docker_error_kind(st.error()), DockerErrorKind::unreachable);
  ASSERT_FALSE(calls_.empty());
  EXPECT_EQ(calls_.back().error, DockerErrorKind::unreachable);
  EXPECT_EQ(calls_.back().http_status, 0);

  // A socket file nobody listens on: connection refused.
  const std::string path = "/tmp/sbxt-" + run_tag() + "-refused.sock";
  {
    asio::local::stream_protocol::acceptor listener(io_, asio::local::stream_protocol::endpoint(path));
  }
  auto refused = make_client(path, 10s);
  auto r = run(refused->version());
  ::unlink(path.c_str());
  ASSERT_FALSE(r);
  EXPECT_EQ(docker_error_kind(r.error()), DockerErrorKind::unreachable);
}

TEST_F(DockerEngineTest, SilentEngineTimesOutAndTheConnectionIsDropped) {
  const std::string path = "/tmp/sbxt-" + run_tag() + "-silent.sock";
  ::unlink(path.c_str());
  // Accepts (through the backlog) and never answers.
  asio::local::stream_protocol::acceptor listener(io_, asio::local::stream_protocol::endpoint(path));
  auto client = make_client(path, 300ms);
  const auto t0 = Clock::now();
  auto st = run(client->ping());
  const double took = seconds_since(t0);
  ::unlink(path.c_str());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::timeout);
  EXPECT_EQ(docker_error_kind(st.error()), DockerErrorKind::timeout);
  EXPECT_GE(took, 0.29);
  EXPECT_LT(took, 3.0);
  EXPECT_EQ(client->idle_connections(), 0u);
}

TEST_F(DockerEngineTest, SequentialCallsReuseOnePooledConnection) {
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(run(client_->ping())) << i;
  ASSERT_TRUE(run(client_->container_list(ListOptions{})));
  ASSERT_TRUE(run(client_->image_inspect(kImage)));
  EXPECT_EQ(client_->connections_opened(), 1u);
  EXPECT_EQ(client_->idle_connections(), 1u);
  ASSERT_EQ(calls_.size(), 23u);  // 20 pings, version (negotiation), list, image
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(calls_[static_cast<std::size_t>(i)].op, Op::ping);
    EXPECT_FALSE(calls_[static_cast<std::size_t>(i)].error);
    EXPECT_EQ(calls_[static_cast<std::size_t>(i)].http_status, 200);
    EXPECT_GE(calls_[static_cast<std::size_t>(i)].seconds, 0.0);
  }

  // Concurrent calls each need a connection; afterwards they are pooled for reuse.
  auto three = [](Client& c) -> asio::awaitable<bool> {
    auto [a, b, d] = co_await (c.ping() && c.ping() && c.ping());
    co_return a && b && d;
  };
  EXPECT_TRUE(run(three(*client_)));
  EXPECT_EQ(client_->connections_opened(), 3u);
  EXPECT_EQ(client_->idle_connections(), 3u);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(run(client_->ping()));
  EXPECT_EQ(client_->connections_opened(), 3u);
}

}  // namespace
}  // namespace sandboxd::docker
