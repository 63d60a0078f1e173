// docker::Client against a scripted fake engine on a temporary unix socket: the transport
// faults a real engine does not produce on demand (a pooled connection closed by the peer,
// malformed answers, oversized errors, a stream that drops).
#include "docker/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::docker {
namespace {

using namespace std::chrono_literals;
using local = asio::local::stream_protocol;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Runs `task` on `io` until it completes; the fake engine's coroutine stays suspended for the
// next call.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) out.emplace(std::move(value));
    io.stop();
  });
  io.restart();
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

struct Answer {
  std::string bytes;   // written verbatim after the request head arrives
  bool close = false;  // close the connection afterwards
};

// Serves `answers` in order, one per request, then stops listening.
class FakeEngine {
 public:
  explicit FakeEngine(asio::io_context& io, std::vector<Answer> answers)
      : path_((std::filesystem::temp_directory_path() /
               ("sbxt-fake-" + std::to_string(::getpid()) + ".sock"))
                  .string()),
        answers_(std::move(answers)) {
    ::unlink(path_.c_str());
    acceptor_.emplace(io, local::endpoint(path_));
    asio::co_spawn(io, serve(), asio::detached);
  }
  ~FakeEngine() { ::unlink(path_.c_str()); }

  const std::string& path() const { return path_; }
  int accepted() const { return accepted_; }
  const std::vector<std::string>& requests() const { return requests_; }

 private:
  asio::awaitable<void> serve() {
    std::optional<local::socket> conn;
    std::string buffer;
    for (const auto& answer : answers_) {
      if (!conn) {
        auto [ec, s] = co_await acceptor_->async_accept(nothrow);
        if (ec) co_return;
        conn.emplace(std::move(s));
        buffer.clear();
        ++accepted_;
      }
      auto [rec, n] = co_await asio::async_read_until(*conn, asio::dynamic_buffer(buffer),
                                                      "\r\n\r\n", nothrow);
      if (rec) co_return;
      requests_.push_back(buffer.substr(0, buffer.find("\r\n")));
      buffer.erase(0, n);
      auto [wec, w] = co_await asio::async_write(*conn, asio::buffer(answer.bytes), nothrow);
      if (answer.close || wec) conn.reset();
    }
    acceptor_->close();
  }

  std::string path_;
  std::vector<Answer> answers_;
  std::optional<local::acceptor> acceptor_;
  int accepted_ = 0;
  std::vector<std::string> requests_;
};

std::string ok_ping() { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"; }

std::string json_answer(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

class FakeEngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<Client> client_for(const FakeEngine& fake) {
    ClientOptions options;
    options.socket_path = fake.path();
    options.call_timeout = 5s;
    options.on_call = [this](const CallRecord& r) { calls_.push_back(r); };
    return std::make_unique<Client>(io_.get_executor(), options);
  }

  asio::io_context io_;
  std::vector<CallRecord> calls_;
};

TEST_F(FakeEngineTest, PooledConnectionClosedByTheEngineIsRetriedOnce) {
  FakeEngine fake(io_, {{ok_ping(), true}, {ok_ping(), true}, {ok_ping(), false}});
  auto client = client_for(fake);
  ASSERT_TRUE(run(io_, client->ping()));
  // The engine closed the pooled connection meanwhile: the next call goes out again on a new one.
  auto second = run(io_, client->ping());
  ASSERT_TRUE(second) << second.error().message();
  ASSERT_TRUE(run(io_, client->ping()));
  EXPECT_EQ(fake.accepted(), 3);
  EXPECT_EQ(client->connections_opened(), 3u);
  EXPECT_EQ(fake.requests(), std::vector<std::string>(3, "GET /_ping HTTP/1.1"));
}

TEST_F(FakeEngineTest, MalformedJsonIsAProtocolError) {
  FakeEngine fake(io_, {{json_answer(200, "{\"ApiVersion\": "), false}});
  auto client = client_for(fake);
  auto v = run(io_, client->version());
  ASSERT_FALSE(v);
  EXPECT_EQ(docker_error_kind(v.error()), DockerErrorKind::protocol);
  EXPECT_EQ(v.error().code, Errc::internal);
}

TEST_F(FakeEngineTest, MalformedHttpIsAProtocolError) {
  FakeEngine fake(io_, {{"SPDY/9 banana\r\n\r\n", true}});
  auto client = client_for(fake);
  auto st = run(io_, client->ping());
  ASSERT_FALSE(st);
  EXPECT_EQ(docker_error_kind(st.error()), DockerErrorKind::protocol) << st.error().message();
}

TEST_F(FakeEngineTest, ServerErrorsKeepDockersMessageCutTo512Bytes) {
  const std::string message(2000, 'm');
  FakeEngine fake(io_, {{json_answer(500, "{\"message\":\"" + message + "\"}"), false},
                        {json_answer(400, "{\"message\":\"bad parameter\"}"), false}});
  auto client = client_for(fake);
  auto st = run(io_, client->ping());
  ASSERT_FALSE(st);
  EXPECT_EQ(docker_error_kind(st.error()), DockerErrorKind::daemon);
  EXPECT_EQ(st.error().code, Errc::internal);
  EXPECT_EQ(st.error().detail, "docker daemon 500: " + message.substr(0, 512));
  ASSERT_EQ(calls_.size(), 1u);
  EXPECT_EQ(calls_[0].http_status, 500);
  EXPECT_EQ(calls_[0].error, DockerErrorKind::daemon);

  auto bad = run(io_, client->ping());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().detail, "docker daemon 400: bad parameter");
}

TEST_F(FakeEngineTest, UnsupportedEngineIsRefusedBeforeAnyVersionedCall) {
  FakeEngine fake(io_, {{json_answer(200, R"({"Version":"18.09","ApiVersion":"1.39",)"
                                          R"("MinAPIVersion":"1.12"})"),
                         false}});
  auto client = client_for(fake);
  auto list = run(io_, client->container_list(ListOptions{}));
  ASSERT_FALSE(list);
  EXPECT_EQ(docker_error_kind(list.error()), DockerErrorKind::daemon);
  EXPECT_NE(list.error().detail.find("1.39"), std::string::npos);
  EXPECT_EQ(client->api_version(), "");
  EXPECT_EQ(fake.requests(), std::vector<std::string>{"GET /version HTTP/1.1"});
}

TEST_F(FakeEngineTest, NewerEngineIsSpokenToAtOurMaximum) {
  FakeEngine fake(io_, {{json_answer(200, R"({"Version":"29.0","ApiVersion":"1.52",)"
                                          R"("MinAPIVersion":"1.44"})"),
                         false},
                        {json_answer(200, "[]"), false}});
  auto client = client_for(fake);
  auto list = run(io_, client->container_list(ListOptions{}));
  ASSERT_TRUE(list) << list.error().message();
  EXPECT_EQ(client->api_version(), kMaxApiVersion);
  ASSERT_EQ(fake.requests().size(), 2u);
  EXPECT_EQ(fake.requests()[1],
            "GET /v" + std::string(kMaxApiVersion) + "/containers/json?all=0 HTTP/1.1");
}

TEST_F(FakeEngineTest, EventStreamDropIsUnreachableAndMalformedEventIsProtocol) {
  const std::string version = json_answer(200, R"({"Version":"20.10","ApiVersion":"1.41"})");
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string event = R"({"Type":"container","Action":"start","Actor":{"ID":"c1"}})"
                            "\n";
  auto chunk = [](const std::string& data) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return std::string(size) + data + "\r\n";
  };
  // Two events split across chunks at an odd place, then the connection drops mid-stream.
  // Streams use a connection of their own: the version answer closes its one.
  FakeEngine fake(io_, {{version, true},
                        {head + chunk(event.substr(0, 10)) + chunk(event.substr(10) + event),
                         true},
                        {head + chunk("{not json}\n"), true}});
  auto client = client_for(fake);
  std::vector<Event> seen;
  bool connected = false;
  auto st = run(io_, client->events(
                         EventFilter{}, [&](const Event& e) { seen.push_back(e); return true; },
                         [&] { connected = true; }));
  ASSERT_FALSE(st);
  EXPECT_TRUE(connected);
  EXPECT_EQ(docker_error_kind(st.error()), DockerErrorKind::unreachable) << st.error().message();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].action, "start");
  EXPECT_EQ(seen[1].id, "c1");

  auto bad = run(io_, client->events(EventFilter{}, [](const Event&) { return true; }));
  ASSERT_FALSE(bad);
  EXPECT_EQ(docker_error_kind(bad.error()), DockerErrorKind::protocol);
}

TEST_F(FakeEngineTest, ContainerLogsAskForBothStreamsAndAreDemultiplexed) {
  const std::string version = json_answer(200, R"({"Version":"20.10","ApiVersion":"1.41"})");
  auto frame = [](char stream, const std::string& data) {
    std::string f{stream, 0, 0, 0, 0, 0, 0, static_cast<char>(data.size())};
    return f + data;
  };
  const std::string body = frame(1, "2024-01-02T03:04:05.1Z out\n") +
                           frame(2, "2024-01-02T03:04:05.2Z err\n");
  FakeEngine fake(io_, {{version, true},
                        {"HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\n\r\n" + body,
                         true},
                        {json_answer(404, R"({"message":"No such container: c9"})"), true}});
  auto client = client_for(fake);
  std::string out;
  std::string err;
  LogsOptions options;
  options.tail = 5;
  options.since_ms = 1700000000042;
  options.timestamps = true;
  options.on_output = [&](ExecStream s, std::string_view b) {
    (s == ExecStream::err ? err : out).append(b);
  };
  auto st = run(io_, client->container_logs("c1", options));
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(out, "2024-01-02T03:04:05.1Z out\n");
  EXPECT_EQ(err, "2024-01-02T03:04:05.2Z err\n");
  ASSERT_EQ(fake.requests().size(), 2u);
  EXPECT_EQ(fake.requests()[1],
            "GET /v1.41/containers/c1/logs?stdout=1&stderr=1&timestamps=1&follow=0&tail=5"
            "&since=1700000000.042000000 HTTP/1.1");

  auto missing = run(io_, client->container_logs("c9", LogsOptions{}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(docker_error_kind(missing.error()), DockerErrorKind::not_found);
}

}  // namespace
}  // namespace sandboxd::docker
