#include "docker/client.h"

#include "base/log.h"
#include "base/ulid.h"
#include "codec.h"
#include "demux.h"
#include "transport.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace sandboxd::docker {

using namespace asio::experimental::awaitable_operators;
using detail::Deadline;
using detail::HttpReply;
using detail::HttpRequest;
using detail::Method;
using detail::url_encode;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr log::Logger kLog{"docker"};
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxEventLine = 1024 * 1024;
constexpr std::string_view kTokenVar = "SANDBOXD_EXEC_TOKEN";

// Sends SIGKILL to every process whose environment holds "SANDBOXD_EXEC_TOKEN=$1". Two passes
// catch children forked while the first one ran.
constexpr std::string_view kKillScript =
    "t=\"SANDBOXD_EXEC_TOKEN=$1\"\n"
    "for pass in 1 2; do\n"
    "  for d in /proc/[0-9]*; do\n"
    "    p=${d#/proc/}\n"
    "    [ \"$p\" = \"$$\" ] && continue\n"
    "    if tr '\\0' '\\n' < \"$d/environ\" 2>/dev/null | grep -qxF \"$t\"; then\n"
    "      kill -9 \"$p\" 2>/dev/null\n"
    "    fi\n"
    "  done\n"
    "done\n"
    "exit 0\n";

// Paths name containers, images and networks: keep the characters image references use.
std::string path_encode(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ':' || c == '/' || c == '@') {
      out += c;
    } else {
      out += url_encode(std::string_view(&c, 1));
    }
  }
  return out;
}

bool is_2xx(int status) { return status >= 200 && status <= 299; }

Error status_error(int status, std::string_view body) {
  auto kind = status == 404   ? DockerErrorKind::not_found
              : status == 409 ? DockerErrorKind::conflict
                              : DockerErrorKind::daemon;
  auto message = detail::error_message(body);
  if (message.empty()) message = "HTTP " + std::to_string(status);
  return docker_error(kind, message, status);
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

std::string_view op_name(Op op) {
  switch (op) {
    case Op::ping: return "ping";
    case Op::version: return "version";
    case Op::container_create: return "container_create";
    case Op::container_start: return "container_start";
    case Op::container_stop: return "container_stop";
    case Op::container_kill: return "container_kill";
    case Op::container_remove: return "container_remove";
    case Op::container_inspect: return "container_inspect";
    case Op::container_list: return "container_list";
    case Op::container_stats: return "container_stats";
    case Op::exec_create: return "exec_create";
    case Op::exec_start: return "exec_start";
    case Op::exec_inspect: return "exec_inspect";
    case Op::image_inspect: return "image_inspect";
    case Op::network_create: return "network_create";
    case Op::network_inspect: return "network_inspect";
    case Op::other: return "other";
  }
  return "other";
}

class Client::Impl {
 public:
  Impl(asio::any_io_executor executor, ClientOptions options)
      : executor_(executor),
        options_(std::move(options)),
        transport_(std::move(executor), options_.socket_path, options_.max_idle_connections,
                   options_.max_body_bytes) {}

  // ---- engine ---------------------------------------------------------------------------

  asio::awaitable<Status> ping() {
    auto reply = co_await call(Op::ping, Method::get, "/_ping", {}, deadline(), false);
    if (!reply) co_return reply.error();
    co_return ok();
  }

  asio::awaitable<Result<VersionInfo>> version() {
    auto reply = co_await call(Op::version, Method::get, "/version", {}, deadline(), false);
    if (!reply) co_return reply.error();
    co_return detail::decode_version(reply->body);
  }

  asio::awaitable<Result<std::string>> negotiate() {
    auto v = co_await version();
    if (!v) co_return v.error();
    auto chosen = detail::choose_api_version(v->api_version, v->min_api_version);
    if (!chosen) {
      kLog.error("docker engine API not supported",
                 {{"engine_api", v->api_version}, {"engine_min_api", v->min_api_version},
                  {"supported_min", kMinApiVersion}, {"supported_max", kMaxApiVersion}});
      co_return chosen.error();
    }
    if (api_ != *chosen) {
      kLog.info("docker engine API negotiated",
                {{"engine", v->version}, {"engine_api", v->api_version}, {"api", *chosen}});
    }
    api_ = *chosen;
    co_return api_;
  }

  const std::string& api_version() const { return api_; }

  // ---- images ---------------------------------------------------------------------------

  asio::awaitable<Result<ImageInfo>> image_inspect(std::string name) {
    auto reply = co_await call(Op::image_inspect, Method::get,
                               "/images/" + path_encode(name) + "/json");
    if (!reply) co_return reply.error();
    co_return detail::decode_image(reply->body);
  }

  asio::awaitable<Result<bool>> image_exists(std::string name) {
    auto info = co_await image_inspect(std::move(name));
    if (info) co_return true;
    if (docker_error_kind(info.error()) == DockerErrorKind::not_found) co_return false;
    co_return info.error();
  }

  // ---- networks -------------------------------------------------------------------------

  asio::awaitable<Result<std::string>> network_create(NetworkSpec spec) {
    auto reply = co_await call(Op::network_create, Method::post, "/networks/create",
                               detail::encode_network_create(spec));
    if (!reply) co_return reply.error();
    co_return detail::decode_id(reply->body);
  }

  asio::awaitable<Result<NetworkInfo>> network_inspect(std::string name) {
    auto reply = co_await call(Op::network_inspect, Method::get, "/networks/" + path_encode(name));
    if (!reply) co_return reply.error();
    co_return detail::decode_network(reply->body);
  }

  asio::awaitable<Status> network_connect(std::string network, std::string container,
                                          EndpointConfig endpoint) {
    auto reply = co_await call(Op::other, Method::post,
                               "/networks/" + path_encode(network) + "/connect",
                               detail::encode_network_connect(container, endpoint));
    if (!reply) co_return reply.error();
    co_return ok();
  }

  asio::awaitable<Status> network_remove(std::string name) {
    auto reply = co_await call(Op::other, Method::del, "/networks/" + path_encode(name));
    if (!reply) co_return reply.error();
    co_return ok();
  }

  // ---- containers -----------------------------------------------------------------------

  asio::awaitable<Result<ContainerCreated>> container_create(ContainerSpec spec) {
    std::string path = "/containers/create";
    if (!spec.name.empty()) path += "?name=" + url_encode(spec.name);
    auto reply = co_await call(Op::container_create, Method::post, std::move(path),
                               detail::encode_container_create(spec));
    if (!reply) co_return reply.error();
    co_return detail::decode_created(reply->body);
  }

  asio::awaitable<Status> container_start(std::string id) {
    auto reply = co_await call(Op::container_start, Method::post,
                               "/containers/" + path_encode(id) + "/start", {}, deadline(), true,
                               true);
    if (!reply) co_return reply.error();
    co_return ok();
  }

  asio::awaitable<Status> container_stop(std::string id, std::chrono::seconds grace) {
    auto reply = co_await call(
        Op::container_stop, Method::post,
        "/containers/" + path_encode(id) + "/stop?t=" + std::to_string(grace.count()), {},
        deadline(grace), true, true);
    if (!reply) co_return reply.error();
    co_return ok();
  }

  asio::awaitable<Status> container_kill(std::string id, std::string signal) {
    auto reply = co_await call(
        Op::container_kill, Method::post,
        "/containers/" + path_encode(id) + "/kill?signal=" + url_encode(signal));
    if (!reply) co_return reply.error();
    co_return ok();
  }

  asio::awaitable<Status> container_remove(std::string id, bool force, bool remove_volumes) {
    std::string path = "/containers/" + path_encode(id) + "?force=" + (force ? "1" : "0") +
                       "&v=" + (remove_volumes ? "1" : "0");
    auto reply = co_await call(Op::container_remove, Method::del, std::move(path));
    if (!reply) co_return reply.error();
    co_return ok();
  }

  asio::awaitable<Result<ContainerInfo>> container_inspect(std::string id) {
    auto reply = co_await call(Op::container_inspect, Method::get,
                               "/containers/" + path_encode(id) + "/json");
    if (!reply) co_return reply.error();
    co_return detail::decode_container(reply->body);
  }

  asio::awaitable<Result<std::vector<ContainerSummary>>> container_list(ListOptions options) {
    std::string path = "/containers/json?all=";
    path += options.all ? "1" : "0";
    const auto filters =
        detail::encode_filters({{"label", options.labels}, {"name", options.names}});
    if (filters != "{}") path += "&filters=" + url_encode(filters);
    auto reply = co_await call(Op::container_list, Method::get, std::move(path));
    if (!reply) co_return reply.error();
    co_return detail::decode_container_list(reply->body);
  }

  asio::awaitable<Result<WaitResult>> container_wait(std::string id, milliseconds timeout,
                                                     std::string condition) {
    auto reply = co_await call(
        Op::other, Method::post,
        "/containers/" + path_encode(id) + "/wait?condition=" + url_encode(condition), {},
        Clock::now() + timeout);
    if (!reply) co_return reply.error();
    co_return detail::decode_wait(reply->body);
  }

  asio::awaitable<Result<std::string>> container_archive(std::string id, std::string path) {
    auto reply = co_await call(
        Op::other, Method::get,
        "/containers/" + path_encode(id) + "/archive?path=" + url_encode(path));
    if (!reply) co_return reply.error();
    co_return std::move(reply->body);
  }

  asio::awaitable<Status> container_logs(std::string id, LogsOptions options) {
    auto version = co_await ensure_version();
    if (!version) co_return version.error();
    std::string path = "/v" + *version + "/containers/" + path_encode(id) +
                       "/logs?stdout=1&stderr=1&timestamps=" + (options.timestamps ? "1" : "0") +
                       "&follow=" + (options.follow ? "1" : "0") + "&tail=" +
                       (options.tail ? std::to_string(*options.tail) : std::string("all"));
    if (options.since_ms) {
      // Docker reads "<seconds>.<nanoseconds>".
      const std::int64_t ms = std::max<std::int64_t>(*options.since_ms, 0);
      std::string frac = std::to_string(ms % 1000);
      frac.insert(0, 3 - frac.size(), '0');
      path += "&since=" + std::to_string(ms / 1000) + "." + frac + "000000";
    }
    detail::StreamDemuxer demux(std::move(options.on_output));
    const HttpRequest request{Method::get, std::move(path), {}};
    co_return co_await stream_multiplexed(Op::other, request, demux);
  }

  // ---- exec -----------------------------------------------------------------------------

  asio::awaitable<Result<std::string>> exec_create(std::string container, ExecSpec spec,
                                                   std::vector<std::string> extra_env = {}) {
    auto reply = co_await call(Op::exec_create, Method::post,
                               "/containers/" + path_encode(container) + "/exec",
                               detail::encode_exec_create(spec, extra_env));
    if (!reply) co_return reply.error();
    co_return detail::decode_id(reply->body);
  }

  asio::awaitable<Status> exec_start_detached(std::string exec_id) {
    auto reply = co_await call(Op::exec_start, Method::post,
                               "/exec/" + path_encode(exec_id) + "/start",
                               R"({"Detach":true,"Tty":false})");
    if (!reply) co_return reply.error();
    co_return ok();
  }

  asio::awaitable<Result<ExecInfo>> exec_inspect(std::string exec_id) {
    auto reply = co_await call(Op::exec_inspect, Method::get,
                               "/exec/" + path_encode(exec_id) + "/json");
    if (!reply) co_return reply.error();
    co_return detail::decode_exec(reply->body);
  }

  asio::awaitable<Result<ExecResult>> exec(std::string container, ExecSpec spec,
                                           ExecOptions options) {
    const std::string token = new_ulid().str();
    // (Built outside the co_await: g++ 12 miscompiles initializer lists inside one.)
    std::vector<std::string> token_env{std::string(kTokenVar) + "=" + token};
    auto id = co_await exec_create(container, spec, std::move(token_env));
    if (!id) co_return id.error();

    ExecResult result;
    result.exec_id = *id;
    detail::StreamDemuxer demux(options.on_output);
    Status streamed = ok();
    if (options.timeout.count() > 0) {
      asio::steady_timer timer(executor_, options.timeout);
      auto outcome = co_await (start_attached(*id, demux) || timer.async_wait(nothrow));
      if (outcome.index() == 1) {
        result.timed_out = true;
      } else {
        streamed = std::get<0>(std::move(outcome));
      }
    } else {
      streamed = co_await start_attached(*id, demux);
    }
    result.stdout_bytes = demux.bytes(ExecStream::out);
    result.stderr_bytes = demux.bytes(ExecStream::err);
    if (!streamed) co_return streamed.error();

    if (result.timed_out) {
      kLog.info("exec timed out; killing its processes",
                {{"container", container}, {"exec", *id},
                 {"timeout_ms", options.timeout.count()}});
      if (auto killed = co_await kill_exec_processes(container, spec.user, token); !killed) {
        kLog.warn("exec kill failed", {{"exec", *id}, {"error", killed.error().message()}});
      }
    }
    // The stream can end a moment before the engine records the exit code.
    auto info = co_await wait_exec_exit(*id, Clock::now() + options_.call_timeout);
    if (!info) co_return info.error();
    result.exit_code = info->exit_code;
    co_return result;
  }

  asio::awaitable<Result<std::string>> exec_detached(std::string container, ExecSpec spec) {
    auto id = co_await exec_create(std::move(container), std::move(spec));
    if (!id) co_return id.error();
    if (auto st = co_await exec_start_detached(*id); !st) co_return st.error();
    co_return std::move(*id);
  }

  // ---- events ---------------------------------------------------------------------------

  asio::awaitable<Status> events(EventFilter filter, std::function<bool(const Event&)> on_event,
                                 std::function<void()> on_connected) {
    auto version = co_await ensure_version();
    if (!version) co_return version.error();
    std::string path = "/v" + *version + "/events";
    const auto filters = detail::encode_filters({{"type", filter.types},
                                                 {"label", filter.labels},
                                                 {"container", filter.containers},
                                                 {"event", filter.actions}});
    char sep = '?';
    if (filters != "{}") {
      path += sep + std::string("filters=") + url_encode(filters);
      sep = '&';
    }
    if (filter.since) path += sep + std::string("since=") + std::to_string(*filter.since);

    std::optional<Error> failure;
    bool stopped = false;
    bool connected = false;
    detail::LineSplitter splitter(kMaxEventLine, [&](std::string_view line) {
      auto event = detail::decode_event(line);
      if (!event) {
        failure = event.error();
        return false;
      }
      if (!on_event(*event)) {
        stopped = true;
        return false;
      }
      return true;
    });
    const auto start = Clock::now();
    const HttpRequest request{Method::get, std::move(path), {}};
    auto reply = co_await transport_.stream(
        request, deadline(),
        [&](int status) {
          connected = true;
          record(Op::other, start, std::nullopt, status);
          if (on_connected) on_connected();
        },
        [&](std::string_view bytes) {
          auto more = splitter.feed(bytes);
          if (!more) {
            failure = more.error();
            return false;
          }
          return *more;
        });
    if (!reply) {
      if (!connected) record(Op::other, start, docker_error_kind(reply.error()), 0);
      co_return reply.error();
    }
    if (!is_2xx(reply->status)) {
      auto error = status_error(reply->status, reply->body);
      record(Op::other, start, docker_error_kind(error), reply->status);
      co_return error;
    }
    if (failure) co_return *failure;
    if (stopped) co_return ok();
    co_return docker_error(DockerErrorKind::unreachable, "event stream ended");
  }

  std::uint64_t connections_opened() const { return transport_.connections_opened(); }
  std::size_t idle_connections() const { return transport_.idle(); }

 private:
  Deadline deadline(milliseconds extra = milliseconds{0}) const {
    return Clock::now() + options_.call_timeout + extra;
  }

  asio::awaitable<Result<std::string>> ensure_version() {
    if (!api_.empty()) co_return api_;
    co_return co_await negotiate();
  }

  void record(Op op, Clock::time_point start, std::optional<DockerErrorKind> error, int status) {
    if (!options_.on_call) return;
    options_.on_call(CallRecord{op, seconds_since(start), error, status});
  }

  // One request/answer call: the /v<api> prefix when `versioned`, statuses mapped to errors
  // (304 is success when `not_modified_ok`), and the call recorded for metrics.
  asio::awaitable<Result<HttpReply>> call(Op op, Method method, std::string path,
                                          std::string body = {}, std::optional<Deadline> until = {},
                                          bool versioned = true, bool not_modified_ok = false) {
    const Deadline limit = until ? *until : deadline();
    if (versioned) {
      auto version = co_await ensure_version();
      if (!version) co_return version.error();
      path = "/v" + *version + path;
    }
    const auto start = Clock::now();
    // Named, not a temporary inside the co_await: g++ 12 destroys such temporaries twice.
    const HttpRequest request{method, std::move(path), std::move(body)};
    auto reply = co_await transport_.request(request, limit);
    if (!reply) {
      record(op, start, docker_error_kind(reply.error()), 0);
      co_return reply.error();
    }
    if (!is_2xx(reply->status) && !(not_modified_ok && reply->status == 304)) {
      auto error = status_error(reply->status, reply->body);
      record(op, start, docker_error_kind(error), reply->status);
      co_return error;
    }
    record(op, start, std::nullopt, reply->status);
    co_return reply;
  }

  // Attached exec start: the multiplexed stream goes through `demux` until it ends.
  asio::awaitable<Status> start_attached(std::string exec_id, detail::StreamDemuxer& demux) {
    auto version = co_await ensure_version();
    if (!version) co_return version.error();
    const HttpRequest request{Method::post,
                              "/v" + *version + "/exec/" + path_encode(exec_id) + "/start",
                              R"({"Detach":false,"Tty":false})"};
    co_return co_await stream_multiplexed(Op::exec_start, request, demux);
  }

  // A multiplexed answer (attached exec, container logs) through `demux` until it ends.
  asio::awaitable<Status> stream_multiplexed(Op op, const HttpRequest& request,
                                             detail::StreamDemuxer& demux) {
    std::optional<Error> failure;
    const auto start = Clock::now();
    auto reply = co_await transport_.stream(
        request, deadline(), {}, [&](std::string_view bytes) {
          auto st = demux.feed(bytes);
          if (!st) failure = st.error();
          return static_cast<bool>(st);
        });
    if (!reply) {
      record(op, start, docker_error_kind(reply.error()), 0);
      co_return reply.error();
    }
    if (!is_2xx(reply->status)) {
      auto error = status_error(reply->status, reply->body);
      record(op, start, docker_error_kind(error), reply->status);
      co_return error;
    }
    if (!failure && !demux.at_frame_boundary()) {
      failure = docker_error(DockerErrorKind::protocol, "multiplexed stream ended inside a frame");
    }
    record(op, start, failure ? docker_error_kind(*failure) : std::nullopt,
           reply->status);
    if (failure) co_return *failure;
    co_return ok();
  }

  asio::awaitable<Status> kill_exec_processes(std::string container, std::string user,
                                              std::string token) {
    ExecSpec killer;
    killer.cmd = {"sh", "-c", std::string(kKillScript), "sandboxd-exec-kill", std::move(token)};
    killer.user = std::move(user);
    auto id = co_await exec_create(std::move(container), std::move(killer));
    if (!id) co_return id.error();
    detail::StreamDemuxer discard(nullptr);
    co_return co_await start_attached(*id, discard);
  }

  // Exec inspect until the process has exited or `until` passes (then the last answer).
  asio::awaitable<Result<ExecInfo>> wait_exec_exit(std::string exec_id, Deadline until) {
    milliseconds pause{5};
    for (;;) {
      auto info = co_await exec_inspect(exec_id);
      if (!info || !info->running || Clock::now() + pause >= until) co_return info;
      asio::steady_timer timer(executor_, pause);
      co_await timer.async_wait(nothrow);
      pause = std::min(pause * 2, milliseconds{200});
    }
  }

  asio::any_io_executor executor_;
  ClientOptions options_;
  detail::Transport transport_;
  std::string api_;
};

Client::Client(asio::any_io_executor executor, ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(options))) {}

Client::~Client() = default;

asio::awaitable<Status> Client::ping() { return impl_->ping(); }
asio::awaitable<Result<VersionInfo>> Client::version() { return impl_->version(); }
asio::awaitable<Result<std::string>> Client::negotiate() { return impl_->negotiate(); }
const std::string& Client::api_version() const { return impl_->api_version(); }

asio::awaitable<Result<ImageInfo>> Client::image_inspect(std::string_view name) {
  return impl_->image_inspect(std::string(name));
}
asio::awaitable<Result<bool>> Client::image_exists(std::string_view name) {
  return impl_->image_exists(std::string(name));
}

asio::awaitable<Result<std::string>> Client::network_create(const NetworkSpec& spec) {
  return impl_->network_create(spec);
}
asio::awaitable<Result<NetworkInfo>> Client::network_inspect(std::string_view name_or_id) {
  return impl_->network_inspect(std::string(name_or_id));
}
asio::awaitable<Status> Client::network_connect(std::string_view network,
                                                std::string_view container,
                                                const EndpointConfig& endpoint) {
  return impl_->network_connect(std::string(network), std::string(container), endpoint);
}
asio::awaitable<Status> Client::network_remove(std::string_view name_or_id) {
  return impl_->network_remove(std::string(name_or_id));
}

asio::awaitable<Result<ContainerCreated>> Client::container_create(const ContainerSpec& spec) {
  return impl_->container_create(spec);
}
asio::awaitable<Status> Client::container_start(std::string_view id) {
  return impl_->container_start(std::string(id));
}
asio::awaitable<Status> Client::container_stop(std::string_view id, std::chrono::seconds grace) {
  return impl_->container_stop(std::string(id), grace);
}
asio::awaitable<Status> Client::container_kill(std::string_view id, std::string_view signal) {
  return impl_->container_kill(std::string(id), std::string(signal));
}
asio::awaitable<Status> Client::container_remove(std::string_view id, bool force,
                                                 bool remove_volumes) {
  return impl_->container_remove(std::string(id), force, remove_volumes);
}
asio::awaitable<Result<ContainerInfo>> Client::container_inspect(std::string_view id) {
  return impl_->container_inspect(std::string(id));
}
asio::awaitable<Result<std::vector<ContainerSummary>>> Client::container_list(
    const ListOptions& options) {
  return impl_->container_list(options);
}
asio::awaitable<Result<WaitResult>> Client::container_wait(std::string_view id,
                                                           milliseconds timeout,
                                                           std::string_view condition) {
  return impl_->container_wait(std::string(id), timeout, std::string(condition));
}
asio::awaitable<Result<std::string>> Client::container_archive(std::string_view id,
                                                               std::string_view path) {
  return impl_->container_archive(std::string(id), std::string(path));
}

asio::awaitable<Status> Client::container_logs(std::string_view id, const LogsOptions& options) {
  return impl_->container_logs(std::string(id), options);
}

asio::awaitable<Result<std::string>> Client::exec_create(std::string_view container,
                                                         const ExecSpec& spec) {
  return impl_->exec_create(std::string(container), spec);
}
asio::awaitable<Status> Client::exec_start_detached(std::string_view exec_id) {
  return impl_->exec_start_detached(std::string(exec_id));
}
asio::awaitable<Result<ExecInfo>> Client::exec_inspect(std::string_view exec_id) {
  return impl_->exec_inspect(std::string(exec_id));
}
asio::awaitable<Result<ExecResult>> Client::exec(std::string_view container, const ExecSpec& spec,
                                                 const ExecOptions& options) {
  return impl_->exec(std::string(container), spec, options);
}
asio::awaitable<Result<std::string>> Client::exec_detached(std::string_view container,
                                                           const ExecSpec& spec) {
  return impl_->exec_detached(std::string(container), spec);
}

asio::awaitable<Status> Client::events(const EventFilter& filter,
                                       std::function<bool(const Event&)> on_event,
                                       std::function<void()> on_connected) {
  return impl_->events(filter, std::move(on_event), std::move(on_connected));
}

std::uint64_t Client::connections_opened() const { return impl_->connections_opened(); }
std::size_t Client::idle_connections() const { return impl_->idle_connections(); }

}  // namespace sandboxd::docker
