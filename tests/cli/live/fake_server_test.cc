// sandboxctl against a scripted server: dropped event streams and reconnects, exec streams
// cut in tiny pieces or ended early, malformed and non-JSON answers (SPEC §2.6.8, §2.7.4,
// §12). Hermetic: no sandboxd, no Docker.
#include <gtest/gtest.h>

#include "ctl_runner.h"

namespace sandboxd::testing {
namespace {

const std::string kSid = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
const std::string kTid = "01BX5ZZKBKACTAV9WEVGEMMVRZ";

std::string answer(const std::string& status, const std::string& type, const std::string& body) {
  return "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string chunked_head(const std::string& type) {
  return "HTTP/1.1 200 OK\r\nContent-Type: " + type + "\r\nTransfer-Encoding: chunked\r\n\r\n";
}

std::string event(int id, const std::string& type, const std::string& ts, const std::string& data) {
  return "id: " + std::to_string(id) + "\nevent: " + type +
         "\ndata: {\"id\":" + std::to_string(id) + ",\"type\":\"" + type + "\",\"ts\":\"" + ts +
         "\",\"data\":" + data + "}\n\n";
}

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(SandboxctlFakeServer, TaskWatchReconnectsWithLastEventIdAndEndsAtDone) {
  FakeServer server([](const std::string&, int n) {
    if (n == 0) {
      // Two events, then the connection drops without the last chunk.
      return chunked_head("text/event-stream") + chunk("retry: 2000\n\n") +
             chunk(event(1, "started", "2026-11-22T12:03:07.120Z",
                         R"({"agent":"command","argv":["make"],"pid":7})")) +
             chunk(": ping\n\n" + event(2, "stdout", "2026-11-22T12:03:08Z", R"({"text":"hi"})"));
    }
    return chunked_head("text/event-stream") +
           chunk(event(3, "done", "2026-11-22T12:03:09Z",
                       R"({"status":"failed","exit_code":1,"duration_ms":2000})")) +
           "0\r\n\r\n";
  });
  Ctl r = ctl({"--server", server.url(), "task", "watch", kSid, kTid}, {"TZ=UTC"});
  EXPECT_EQ(r.status, 1) << r;
  EXPECT_EQ(r.out,
            "[12:03:07] started  command  pid 7\n"
            "hi\n"
            "[12:03:09] done  failed  exit 1  2.0s\n");
  EXPECT_EQ(r.err, "sandboxctl: task " + kTid + " failed\n");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(
      reqs[0].rfind("GET /v1/sandboxes/" + kSid + "/tasks/" + kTid + "/events HTTP/1.1\r\n", 0), 0u)
      << reqs[0];
  EXPECT_TRUE(has(reqs[0], "Accept: text/event-stream\r\n")) << reqs[0];
  EXPECT_FALSE(has(reqs[0], "Last-Event-ID")) << reqs[0];
  EXPECT_TRUE(has(reqs[1], "Last-Event-ID: 2\r\n")) << reqs[1];
}

TEST(SandboxctlFakeServer, TaskWatchSinceAndJsonLines) {
  FakeServer server([](const std::string&, int) {
    return chunked_head("text/event-stream") +
           chunk(event(5, "done", "2026-11-22T12:03:09Z",
                       R"({"status":"succeeded","exit_code":0})")) +
           "0\r\n\r\n";
  });
  Ctl r = ctl({"--server", server.url(), "--json", "task", "watch", kSid, kTid, "--since", "5"});
  EXPECT_EQ(r.status, 0) << r;
  EXPECT_EQ(
      r.out,
      R"({"id":5,"type":"done","ts":"2026-11-22T12:03:09Z","data":{"status":"succeeded","exit_code":0}})"
      "\n");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_TRUE(has(server.requests()[0], "/events?since=5 HTTP/1.1")) << server.requests()[0];
}

TEST(SandboxctlFakeServer, TaskRunFollowPassesTheCommandsExitCodeThrough) {
  std::string submitted = R"({"id":")" + kTid + R"(","sandbox_id":")" + kSid +
                          R"(","status":"queued","agent":"command"})";
  for (const auto& [done_events, expected] : std::vector<std::pair<std::string, int>>{
           {event(2, "exit", "2026-11-22T12:03:08Z", R"({"code":3,"signal":null})") +
                event(3, "done", "2026-11-22T12:03:09Z", R"({"status":"failed","exit_code":3})"),
            3},
           {event(2, "exit", "2026-11-22T12:03:08Z", R"({"code":null,"signal":"SIGKILL"})") +
                event(3, "done", "2026-11-22T12:03:09Z", R"({"status":"failed","exit_code":null})"),
            137},
           {event(3, "done", "2026-11-22T12:03:09Z", R"({"status":"succeeded","exit_code":0})"),
            0}}) {
    std::string tail = done_events;  // a lambda does not capture a structured binding
    FakeServer server([&](const std::string&, int n) {
      if (n == 0) return answer("202 Accepted", "application/json", submitted);
      return chunked_head("text/event-stream") +
             chunk(event(1, "stdout", "2026-11-22T12:03:07Z", R"({"text":"building"})") + tail) +
             "0\r\n\r\n";
    });
    Ctl r = ctl({"--server", server.url(), "task", "run", kSid, "--follow", "--", "make", "all"},
                {"TZ=UTC"});
    EXPECT_EQ(r.status, expected) << r;
    EXPECT_EQ(lines(r.out).at(0), "building") << r;
    EXPECT_EQ(r.err.rfind("task " + kTid + "\n", 0), 0u) << r;
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_EQ(reqs[0].rfind("POST /v1/sandboxes/" + kSid + "/tasks HTTP/1.1\r\n", 0), 0u)
        << reqs[0];
    EXPECT_TRUE(has(reqs[0], R"({"agent":"command","command":["make","all"]})")) << reqs[0];
  }
  // Without --follow: the task id; sandboxctl's own failure under --follow -- ARGV is 125.
  FakeServer plain([&](const std::string&, int) {
    return answer("202 Accepted", "application/json", submitted);
  });
  Ctl r = ctl({"--server", plain.url(), "task", "run", kSid, "--prompt", "fix the tests"});
  EXPECT_EQ(r.status, 0) << r;
  EXPECT_EQ(r.out, kTid + "\n");
  FakeServer broken([&](const std::string&, int) { return std::string("nonsense\r\n\r\n"); });
  EXPECT_EQ(ctl({"--server", broken.url(), "task", "run", kSid, "-f", "--", "true"}).status, 125);
}

TEST(SandboxctlFakeServer, ExecFramesCutIntoTinyChunks) {
  std::string frames = std::string(R"({"type":"start","exec_id":"01J"})") + "\n" +
                       R"({"type":"stdout","data_b64":"//4K"})" + "\n" + R"({"type":"heartbeat"})" +
                       "\n" + R"({"type":"stderr","data":"é"})" + "\n" + R"({"type":"progress"})" +
                       "\n" +
                       R"({"type":"exit","exit_code":42,"timed_out":false,"duration_ms":5})" + "\n";
  std::string body;
  for (std::size_t i = 0; i < frames.size(); i += 3) body += chunk(frames.substr(i, 3));
  FakeServer server([&](const std::string&, int) {
    return chunked_head("application/x-ndjson") + body + "0\r\n\r\n";
  });
  Ctl r = ctl({"--server", server.url(), "exec", kSid, "--", "cat", "x"});
  EXPECT_EQ(r.status, 42) << r;
  EXPECT_EQ(r.out, "\xff\xfe\n");
  EXPECT_EQ(r.err, "é");
  auto req = server.requests().at(0);
  EXPECT_TRUE(has(req, "Accept: application/x-ndjson\r\n")) << req;
  EXPECT_TRUE(has(req, R"({"cmd":["cat","x"],"stream":true})")) << req;
  Ctl j = ctl({"--server", server.url(), "--json", "exec", kSid, "--", "cat", "x"});
  EXPECT_EQ(j.status, 42) << j;
  EXPECT_EQ(j.out, std::string(R"({"stream":"stdout","data_b64":"//4K"})") + "\n" +
                       R"({"stream":"stderr","data":"é"})" + "\n" + R"({"exit_code":42})" + "\n");
}

TEST(SandboxctlFakeServer, ExecOwnFailuresAre125) {
  struct Case {
    std::string frames;
    std::string err;
    int status;
  };
  for (const Case& c :
       std::vector<Case>{{R"({"type":"start","exec_id":"01J"})"
                          "\n"
                          R"({"type":"error","code":"internal","message":"docker went away"})"
                          "\n",
                          "sandboxctl: exec failed: docker went away (internal)\n", 125},
                         {R"({"type":"stdout","data":"partial"})"
                          "\n",
                          "sandboxctl: the exec stream ended before the command exited\n", 125},
                         {"{not json\n", "", 125},
                         {R"({"type":"exit","exit_code":143,"timed_out":true})"
                          "\n",
                          "sandboxctl: the command passed its timeout and was killed\n", 143}}) {
    FakeServer server([&](const std::string&, int) {
      return chunked_head("application/x-ndjson") + chunk(c.frames) + "0\r\n\r\n";
    });
    Ctl r = ctl({"--server", server.url(), "exec", kSid, "--", "true"});
    EXPECT_EQ(r.status, c.status) << c.frames << r;
    if (!c.err.empty()) {
      EXPECT_TRUE(has(r.err, c.err)) << c.frames << r;
    } else {
      EXPECT_EQ(r.err.rfind("sandboxctl: malformed exec frame: ", 0), 0u) << r;
    }
  }
  // An older server that ignores `stream` and answers the buffered object.
  FakeServer buffered([](const std::string&, int) {
    return answer("200 OK", "application/json",
                  R"({"stdout":"a\n","stderr":"b\n","exit_code":4,"timed_out":false})");
  });
  Ctl r = ctl({"--server", buffered.url(), "exec", kSid, "--", "true"});
  EXPECT_EQ(r.status, 4) << r;
  EXPECT_EQ(r.out, "a\n");
  EXPECT_EQ(r.err, "b\n");
  // --detach prints the exec id and exits 0.
  FakeServer detached([](const std::string&, int) {
    return answer("202 Accepted", "application/json",
                  R"({"exec_id":"01JEXEC","status":"running"})");
  });
  Ctl d = ctl({"--server", detached.url(), "exec", kSid, "--detach", "--", "sleep", "9"});
  EXPECT_EQ(d.status, 0) << d;
  EXPECT_EQ(d.out, "01JEXEC\n");
}

TEST(SandboxctlFakeServer, MalformedAndUnexpectedAnswers) {
  struct Case {
    std::string answer;
    std::string err;  // the start of stderr
    int status;
  };
  std::string ok_list = R"({"sandboxes":[]})";
  for (
      const Case& c : std::vector<Case>{
          {"garbage\r\n\r\n", "sandboxctl: malformed answer from sandboxd: bad status line\n", 1},
          {"", "sandboxctl: sandboxd at ", 1},
          {answer("502 Bad Gateway", "text/html", "<html>bad gateway</html>"),
           "sandboxctl: the server answered bad gateway (HTTP 502)\n", 6},
          {answer(
               "503 Service Unavailable", "application/json",
               R"({"error":{"code":"unavailable","message":"docker is unreachable","retryable":true}})"),
           "sandboxctl: docker is unreachable (unavailable, HTTP 503)\n", 6},
          {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"sandboxes\":",
           "sandboxctl: the connection to sandboxd", 1},
          {chunked_head("application/json") + "zz\r\n",
           "sandboxctl: malformed answer from sandboxd: chunked body", 1},
          {answer("200 OK", "application/json", "[1,2]"),
           "sandboxctl: the server's answer is not a JSON object\n", 1},
          {"HTTP/1.1 100 Continue\r\n\r\n" + answer("200 OK", "application/json", ok_list), "", 0},
          {"HTTP/1.1 200 OK\r\n\r\n" + ok_list, "", 0},  // no length: the body ends at the close
          {chunked_head("application/json") + chunk(ok_list.substr(0, 5)) +
               chunk(ok_list.substr(5)) + "0\r\n\r\n",
           "", 0}}) {
    FakeServer server([&](const std::string&, int) { return c.answer; });
    Ctl r = ctl({"--server", server.url(), "ls"});
    EXPECT_EQ(r.status, c.status) << c.answer << "\n" << r;
    if (c.status == 0) {
      EXPECT_EQ(r.out, "ID  STATUS  PORTS  VISIBILITY  IDLE-POLICY  LAST-ACTIVE  AGE\n") << r;
    } else {
      EXPECT_EQ(r.err.rfind(c.err, 0), 0u) << c.answer << "\n" << r;
      EXPECT_EQ(r.out, "");
    }
  }
}

}  // namespace
}  // namespace sandboxd::testing
