// Unit tests of the docker module's pure parts: errors, socket URLs, version choice, JSON
// encoders/decoders and the stream parsers (every split point of their input).
#include "codec.h"
#include "demux.h"
#include "docker/client.h"
#include "docker/error.h"
#include "docker/socket.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sandboxd::docker {
namespace {

namespace json = boost::json;
using detail::LineSplitter;
using detail::StreamDemuxer;

// ---- errors -------------------------------------------------------------------------------

TEST(DockerError, KindSurvivesTheRoundTripAndMapsToErrc) {
  const std::vector<std::pair<DockerErrorKind, Errc>> table = {
      {DockerErrorKind::not_found, Errc::not_found},
      {DockerErrorKind::conflict, Errc::conflict},
      {DockerErrorKind::daemon, Errc::internal},
      {DockerErrorKind::unreachable, Errc::unavailable},
      {DockerErrorKind::timeout, Errc::timeout},
      {DockerErrorKind::protocol, Errc::internal},
  };
  for (auto [kind, errc] : table) {
    auto with_status = docker_error(kind, "boom", 418);
    auto without = docker_error(kind, "boom");
    EXPECT_EQ(with_status.code, errc) << kind_name(kind);
    EXPECT_EQ(docker_error_kind(with_status), kind) << with_status.detail;
    EXPECT_EQ(docker_error_kind(without), kind) << without.detail;
  }
  EXPECT_EQ(docker_error(DockerErrorKind::conflict, "name taken", 409).detail,
            "docker conflict 409: name taken");
}

TEST(DockerError, ForeignErrorsHaveNoKind) {
  EXPECT_FALSE(docker_error_kind(Error{Errc::not_found, "no such sandbox"}));
  EXPECT_FALSE(docker_error_kind(Error{Errc::cancelled, "docker call cancelled"}));
  // The prefix alone is not enough: the code must match the kind.
  EXPECT_FALSE(docker_error_kind(Error{Errc::internal, "docker not_found 404: x"}));
  EXPECT_FALSE(docker_error_kind(Error{Errc::internal, "docker"}));
}

TEST(DockerError, MessageIsCutTo512BytesOnACharacterBoundary) {
  std::string message(510, 'a');
  message += "\xC3\xA9\xC3\xA9";  // two 2-byte characters straddling the limit
  auto e = docker_error(DockerErrorKind::daemon, message, 500);
  const std::string prefix = "docker daemon 500: ";
  ASSERT_TRUE(e.detail.starts_with(prefix));
  const auto cut = e.detail.substr(prefix.size());
  EXPECT_EQ(cut.size(), 512u);
  EXPECT_EQ(cut.substr(510), "\xC3\xA9");

  std::string odd(511, 'a');
  odd += "\xC3\xA9";  // the character would end at byte 513: dropped whole
  EXPECT_EQ(docker_error(DockerErrorKind::daemon, odd).detail.size(),
            std::string("docker daemon: ").size() + 511);
}

// ---- socket URLs --------------------------------------------------------------------------

TEST(DockerSocket, ConfiguredUrlWithoutDockerHost) {
  auto s = resolve_docker_socket("unix:///run/docker.sock", nullptr);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->path, "/run/docker.sock");
  EXPECT_FALSE(s->from_docker_host);
  auto empty = resolve_docker_socket("unix:///run/docker.sock", "");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->from_docker_host);
}

TEST(DockerSocket, DockerHostOverrides) {
  auto s = resolve_docker_socket(kDefaultDockerHost, "unix:///tmp/x/docker.sock");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->path, "/tmp/x/docker.sock");
  EXPECT_TRUE(s->from_docker_host);
}

TEST(DockerSocket, OtherSchemesAndRelativePathsAreRefused) {
  for (const char* url : {"tcp://127.0.0.1:2375", "ssh://host", "npipe:////./pipe/docker",
                          "unix://relative.sock", "unix://", "/var/run/docker.sock"}) {
    auto s = parse_docker_host(url);
    ASSERT_FALSE(s) << url;
    EXPECT_EQ(s.error().code, Errc::invalid_argument) << url;
  }
  auto env = resolve_docker_socket(kDefaultDockerHost, "tcp://10.0.0.1:2376");
  ASSERT_FALSE(env);
  EXPECT_NE(env.error().detail.find("DOCKER_HOST"), std::string::npos);
}

// ---- API version --------------------------------------------------------------------------

TEST(ApiVersion, ParsesMajorMinor) {
  EXPECT_EQ(detail::parse_api_version("1.41"), (std::pair{1, 41}));
  EXPECT_EQ(detail::parse_api_version("1.4"), (std::pair{1, 4}));
  for (const char* bad : {"", "1", "1.", ".41", "1.41.2", "v1.41", "1.x"}) {
    EXPECT_FALSE(detail::parse_api_version(bad)) << bad;
  }
  // Numeric, not lexical: 1.9 < 1.10.
  EXPECT_LT(*detail::parse_api_version("1.9"), *detail::parse_api_version("1.10"));
}

TEST(ApiVersion, ChoosesTheLowerOfEngineAndOurs) {
  EXPECT_EQ(detail::choose_api_version("1.41", "1.12").value(), "1.41");
  EXPECT_EQ(detail::choose_api_version("1.40", "").value(), "1.40");
  EXPECT_EQ(detail::choose_api_version("1.45", "1.24").value(), "1.45");
  EXPECT_EQ(detail::choose_api_version("1.51", "1.44").value(), std::string(kMaxApiVersion));
}

TEST(ApiVersion, RefusesTooOldOrTooNewEngines) {
  auto old = detail::choose_api_version("1.39", "1.12");
  ASSERT_FALSE(old);
  EXPECT_EQ(docker_error_kind(old.error()), DockerErrorKind::daemon);
  EXPECT_NE(old.error().detail.find("1.39"), std::string::npos);
  EXPECT_NE(old.error().detail.find(std::string(kMinApiVersion)), std::string::npos);

  auto future = detail::choose_api_version("1.60", "1.50");
  ASSERT_FALSE(future);
  EXPECT_EQ(docker_error_kind(future.error()), DockerErrorKind::daemon);

  auto garbage = detail::choose_api_version("latest", "");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(docker_error_kind(garbage.error()), DockerErrorKind::protocol);
}

// ---- encoders -----------------------------------------------------------------------------

ContainerSpec hardened_spec() {
  ContainerSpec s;
  s.name = "s-01abc";
  s.image = "sandboxd-test:latest";
  s.hostname = "s-01abc";
  s.user = "1000:1000";
  s.env = {"HOME=/home/sandbox", "SANDBOX_ID=01ABC"};
  s.working_dir = "/home/sandbox/workspace";
  s.labels = {{"sandboxd.managed", "true"}, {"sandboxd.id", "01ABC"}};
  s.stop_signal = "SIGTERM";
  s.stop_timeout = 10;
  s.binds = {"/data/ws:/home/sandbox:rw"};
  s.cap_drop = {"ALL"};
  s.security_opt = {"no-new-privileges"};
  s.readonly_rootfs = true;
  s.tmpfs = {{"/tmp", "rw,exec,nosuid,nodev,size=512m"}};
  s.memory_bytes = 1 << 30;
  s.memory_swap_bytes = 1 << 30;
  s.pids_limit = 512;
  s.ulimits = {{"nofile", 4096, 4096}};
  s.init = false;
  s.network_mode = "sandboxd";
  s.endpoints["sandboxd"] = EndpointConfig{{"s-01abc"}};
  s.log_config = LogConfig{"json-file", {{"max-size", "10m"}, {"max-file", "2"}}};
  return s;
}

TEST(Codec, ContainerCreateCarriesEveryHardeningField) {
  auto v = json::parse(detail::encode_container_create(hardened_spec()));
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("Image"), "sandboxd-test:latest");
  EXPECT_EQ(o.at("User"), "1000:1000");
  EXPECT_EQ(o.at("StopTimeout"), 10);
  EXPECT_FALSE(o.contains("Cmd"));
  const auto& h = o.at("HostConfig").as_object();
  EXPECT_EQ(h.at("CapDrop"), json::array({"ALL"}));
  EXPECT_EQ(h.at("SecurityOpt"), json::array({"no-new-privileges"}));
  EXPECT_EQ(h.at("ReadonlyRootfs"), true);
  EXPECT_EQ(h.at("Tmpfs").at("/tmp"), "rw,exec,nosuid,nodev,size=512m");
  EXPECT_EQ(h.at("Memory"), h.at("MemorySwap"));
  EXPECT_EQ(h.at("PidsLimit"), 512);
  EXPECT_EQ(h.at("Ulimits").at(0).at("Name"), "nofile");
  EXPECT_EQ(h.at("Init"), false);
  EXPECT_EQ(h.at("RestartPolicy").at("Name"), "no");
  EXPECT_EQ(h.at("LogConfig").at("Config").at("max-file"), "2");
  EXPECT_EQ(o.at("NetworkingConfig").at("EndpointsConfig").at("sandboxd").at("Aliases").at(0),
            "s-01abc");
  // Omitted when unset, and never present at all.
  EXPECT_FALSE(h.contains("NanoCpus"));
  EXPECT_FALSE(h.contains("Runtime"));
  for (const char* never : {"Privileged", "CapAdd", "PortBindings", "PublishAllPorts", "Devices",
                            "PidMode", "IpcMode"}) {
    EXPECT_FALSE(h.contains(never)) << never;
  }
}

TEST(Codec, OptionalHostFieldsAppearWhenSet) {
  auto spec = hardened_spec();
  spec.nano_cpus = 1'500'000'000;
  spec.runtime = "runsc";
  auto v = json::parse(detail::encode_container_create(spec));
  EXPECT_EQ(v.at("HostConfig").at("NanoCpus"), 1'500'000'000);
  EXPECT_EQ(v.at("HostConfig").at("Runtime"), "runsc");
}

TEST(Codec, NetworkAndExecBodies) {
  NetworkSpec n;
  n.name = "sandboxd";
  n.options = {{"com.docker.network.bridge.enable_icc", "false"}};
  n.labels = {{"sandboxd.managed", "true"}};
  auto nv = json::parse(detail::encode_network_create(n));
  EXPECT_EQ(nv.at("Driver"), "bridge");
  EXPECT_EQ(nv.at("CheckDuplicate"), true);
  EXPECT_EQ(nv.at("Options").at("com.docker.network.bridge.enable_icc"), "false");

  ExecSpec e;
  e.cmd = {"sh", "-c", "true"};
  e.env = {"A=1"};
  e.user = "1000:1000";
  auto ev = json::parse(detail::encode_exec_create(e, {"SANDBOXD_EXEC_TOKEN=x"}));
  EXPECT_EQ(ev.at("Tty"), false);
  EXPECT_EQ(ev.at("AttachStdin"), false);
  EXPECT_EQ(ev.at("Env"), json::array({"A=1", "SANDBOXD_EXEC_TOKEN=x"}));
  EXPECT_FALSE(ev.as_object().contains("Privileged"));
}

TEST(Codec, FiltersAndUrlEncoding) {
  EXPECT_EQ(detail::encode_filters({{"label", {"a=b"}}, {"type", {"container"}}, {"name", {}}}),
            R"({"label":["a=b"],"type":["container"]})");
  EXPECT_EQ(detail::url_encode("a=b c/{\"}"), "a%3Db%20c%2F%7B%22%7D");
  EXPECT_EQ(detail::url_encode("A-z_0.9~"), "A-z_0.9~");
}

// ---- decoders -----------------------------------------------------------------------------

TEST(Codec, DecodesContainerInspectWithNulls) {
  const char* body = R"({
    "Id": "abc", "Name": "/s-1", "Image": "sha256:img", "Created": "2026-01-01T00:00:00Z",
    "State": {"Status": "exited", "Running": false, "OOMKilled": true, "Pid": 0, "ExitCode": 137,
              "Error": "", "StartedAt": "x", "FinishedAt": "y"},
    "Config": {"Image": "sandboxd-test:latest", "Hostname": "s-1", "User": "1000:1000",
               "Env": ["A=1"], "Cmd": null, "Labels": {"k": "v"}, "StopSignal": "SIGTERM",
               "StopTimeout": 10},
    "HostConfig": {"CapDrop": ["ALL"], "CapAdd": null, "SecurityOpt": ["no-new-privileges"],
                   "Privileged": false, "ReadonlyRootfs": true, "Tmpfs": {"/tmp": "rw"},
                   "Memory": 1073741824, "MemorySwap": 1073741824, "PidsLimit": null,
                   "Ulimits": [{"Name": "nofile", "Soft": 4096, "Hard": 4096}],
                   "NanoCpus": 0, "Init": null, "NetworkMode": "net", "PortBindings": {},
                   "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                   "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}}},
    "NetworkSettings": {"Networks": {"net": {"NetworkID": "n1", "IPAddress": "172.18.0.2",
                                             "IPPrefixLen": 16, "Aliases": null}}}
  })";
  auto c = detail::decode_container(body);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->name, "s-1");
  EXPECT_EQ(c->state.status, "exited");
  EXPECT_TRUE(c->state.oom_killed);
  EXPECT_EQ(c->state.exit_code, 137);
  EXPECT_TRUE(c->cmd.empty());
  EXPECT_EQ(c->stop_timeout, 10);
  EXPECT_EQ(c->host_config.pids_limit, 0);
  EXPECT_FALSE(c->host_config.init.has_value());
  EXPECT_EQ(c->host_config.ulimits, (std::vector<Ulimit>{{"nofile", 4096, 4096}}));
  EXPECT_EQ(c->host_config.port_bindings, 0u);
  EXPECT_EQ(c->ip_address("net"), "172.18.0.2");
  EXPECT_EQ(c->ip_address("other"), "");
  EXPECT_EQ(c->host_config.log_config.config.at("max-size"), "10m");
}

TEST(Codec, MalformedDocumentsAreProtocolErrors) {
  for (const char* bad : {"", "{", "[1,2]", "\"text\"", "{\"Id\": 1"}) {
    auto c = detail::decode_container(bad);
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(docker_error_kind(c.error()), DockerErrorKind::protocol) << bad;
  }
  EXPECT_FALSE(detail::decode_container_list("{}"));
  EXPECT_FALSE(detail::decode_id(R"({"Warning": ""})"));
  EXPECT_FALSE(detail::decode_version(R"({"Version": "x"})"));
}

TEST(Codec, DecodesExecEventsWaitAndErrors) {
  auto running = detail::decode_exec(R"({"ID":"e","Running":true,"ExitCode":null,"Pid":42})");
  ASSERT_TRUE(running);
  EXPECT_TRUE(running->running);
  EXPECT_FALSE(running->exit_code);
  EXPECT_EQ(running->pid, 42);
  auto done = detail::decode_exec(R"({"ID":"e","Running":false,"ExitCode":3})");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->exit_code, 3);

  auto e = detail::decode_event(
      R"({"status":"die","id":"c1","Type":"container","Action":"die","Actor":{"ID":"c1",)"
      R"("Attributes":{"exitCode":"137","name":"s-1","sandboxd.id":"X"}},"scope":"local",)"
      R"("time":1700000000,"timeNano":1700000000123456789})");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->action, "die");
  EXPECT_EQ(e->id, "c1");
  EXPECT_EQ(e->exit_code(), 137);
  EXPECT_EQ(e->attributes.at("sandboxd.id"), "X");
  EXPECT_EQ(e->time_nano, 1700000000123456789);

  auto w = detail::decode_wait(R"({"StatusCode":137,"Error":null})");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->exit_code, 137);

  EXPECT_EQ(detail::error_message(R"({"message":"No such container: x"})"),
            "No such container: x");
  EXPECT_EQ(detail::error_message("page not found\n"), "page not found");
}

// ---- stream parsers -----------------------------------------------------------------------

std::string frame(std::uint8_t stream, std::string_view payload) {
  std::string out(8, '\0');
  out[0] = static_cast<char>(stream);
  const auto n = static_cast<std::uint32_t>(payload.size());
  out[4] = static_cast<char>(n >> 24);
  out[5] = static_cast<char>(n >> 16);
  out[6] = static_cast<char>(n >> 8);
  out[7] = static_cast<char>(n);
  out += payload;
  return out;
}

struct Collected {
  std::string out;
  std::string err;
  std::string order;  // stream ids in delivery order, merged runs
};

OutputFn collector(Collected& c) {
  return [&c](ExecStream s, std::string_view bytes) {
    (s == ExecStream::err ? c.err : c.out) += bytes;
    const char id = s == ExecStream::err ? 'e' : 'o';
    if (c.order.empty() || c.order.back() != id) c.order += id;
  };
}

TEST(StreamDemuxer, EverySplitPointGivesTheSameStreams) {
  const std::string input = frame(1, "hello\n") + frame(2, "oops\n") + frame(1, "") +
                            frame(1, std::string(300, 'x')) + frame(2, "!");
  for (std::size_t i = 0; i <= input.size(); ++i) {
    for (std::size_t j = i; j <= input.size(); j += 7) {
      Collected c;
      StreamDemuxer d(collector(c));
      ASSERT_TRUE(d.feed(std::string_view(input).substr(0, i)));
      ASSERT_TRUE(d.feed(std::string_view(input).substr(i, j - i)));
      ASSERT_TRUE(d.feed(std::string_view(input).substr(j)));
      EXPECT_EQ(c.out, "hello\n" + std::string(300, 'x')) << i << "," << j;
      EXPECT_EQ(c.err, "oops\n!") << i << "," << j;
      EXPECT_EQ(c.order, "oeoe") << i << "," << j;
      EXPECT_TRUE(d.at_frame_boundary());
      EXPECT_EQ(d.bytes(ExecStream::out), 306u);
      EXPECT_EQ(d.bytes(ExecStream::err), 6u);
    }
  }
}

TEST(StreamDemuxer, ByteByByteAndPartialFrames) {
  const std::string input = frame(1, "abc") + frame(2, "de");
  Collected c;
  StreamDemuxer d(collector(c));
  for (std::size_t i = 0; i < input.size(); ++i) {
    ASSERT_TRUE(d.feed(std::string_view(input).substr(i, 1)));
    // Payload is delivered as it arrives, not once the frame is complete.
    if (i == 9) {
      EXPECT_EQ(c.out, "ab");
    }
  }
  EXPECT_EQ(c.out, "abc");
  EXPECT_EQ(c.err, "de");

  StreamDemuxer half(nullptr);
  ASSERT_TRUE(half.feed(frame(1, "abcdef").substr(0, 10)));
  EXPECT_FALSE(half.at_frame_boundary());
}

TEST(StreamDemuxer, InvalidHeaderIsAProtocolError) {
  StreamDemuxer d(nullptr);
  auto st = d.feed("hello world, a TTY stream");
  ASSERT_FALSE(st);
  EXPECT_EQ(docker_error_kind(st.error()), DockerErrorKind::protocol);
  EXPECT_FALSE(d.feed(frame(1, "x")));  // stays failed

  std::string bad = frame(1, "x");
  bad[2] = 1;
  EXPECT_FALSE(StreamDemuxer(nullptr).feed(bad));
}

TEST(LineSplitter, EverySplitPointGivesTheSameLines) {
  const std::string input = "{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}\n";
  for (std::size_t i = 0; i <= input.size(); ++i) {
    std::vector<std::string> lines;
    LineSplitter s(1024, [&](std::string_view l) {
      lines.emplace_back(l);
      return true;
    });
    ASSERT_TRUE(s.feed(std::string_view(input).substr(0, i)).value());
    ASSERT_TRUE(s.feed(std::string_view(input).substr(i)).value());
    EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"})) << i;
  }
}

TEST(LineSplitter, StopsWhenAskedAndBoundsLines) {
  int seen = 0;
  LineSplitter s(1024, [&](std::string_view) { return ++seen < 2; });
  auto r = s.feed("a\nb\nc\n");
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_EQ(seen, 2);

  LineSplitter small(8, [](std::string_view) { return true; });
  ASSERT_TRUE(small.feed("1234"));
  auto over = small.feed("56789");
  ASSERT_FALSE(over);
  EXPECT_EQ(docker_error_kind(over.error()), DockerErrorKind::protocol);
}

TEST(OpNames, MatchTheMetricsLabels) {
  EXPECT_EQ(op_name(Op::container_create), "container_create");
  EXPECT_EQ(op_name(Op::exec_inspect), "exec_inspect");
  EXPECT_EQ(op_name(Op::network_inspect), "network_inspect");
  EXPECT_EQ(op_name(Op::other), "other");
}

}  // namespace
}  // namespace sandboxd::docker
