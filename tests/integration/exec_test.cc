// Exec through the control API (SPEC §2.5.5, §2.6.8): buffered, streamed (v1 NDJSON and the
// legacy text format), timeouts that kill the command, detached commands, and waking.
#include "sandboxd_fixture.h"

#include "raw_http.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fstream>
#include <regex>

namespace sandboxd::testing {
namespace {

const std::regex kCanonicalId("^[0-7][0-9A-HJKMNP-TV-Z]{25}$");

using Exec = SandboxdTest;

Answer t_exec(Sandboxd& s, const std::string& id, const std::vector<std::string>& argv) {
  return s.post("/v1/sandboxes/" + id + "/exec", R"({"cmd":)" + json_argv(argv) + "}");
}

// The NDJSON frames of a streamed v1 exec, one JSON object per line.
std::vector<json::object> frames_of(const std::string& body) {
  std::vector<json::object> out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t eol = body.find('\n', pos);
    if (eol == std::string::npos) eol = body.size();
    boost::system::error_code ec;
    json::value v = json::parse(std::string_view(body).substr(pos, eol - pos), ec);
    out.push_back(!ec && v.is_object() ? v.get_object() : json::object{{"type", "unparsable"}});
    pos = eol + 1;
  }
  return out;
}

TEST_F(Exec, BufferedSeparatesStdoutStderrAndExitCode) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  Answer a = exec(id, {"sh", "-c", "echo out; echo err >&2; echo more; exit 7"});
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.str("stdout"), "out\nmore\n");
  EXPECT_EQ(a.str("stderr"), "err\n");
  EXPECT_EQ(a.json.at("exit_code"), json::value(7));
  EXPECT_EQ(a.json.at("timed_out"), json::value(false));
  EXPECT_EQ(a.json.at("truncated"), json::value(false));
  EXPECT_TRUE(std::regex_match(a.str("exec_id"), kCanonicalId)) << a.body;
  EXPECT_TRUE(a.json.at("duration_ms").is_int64()) << a.body;

  // Default cwd, user, env and cwd of the request.
  Answer who = exec(id, {"sh", "-c", "pwd; id -u; echo $HOME $SANDBOX_ID"});
  EXPECT_EQ(who.str("stdout"), "/home/sandbox/workspace\n1000\n/home/sandbox " + id + "\n");
  Answer env = exec(id, {"sh", "-c", "pwd; echo $COLOUR"}, R"("env":{"COLOUR":"blue"},"cwd":"/tmp")");
  EXPECT_EQ(env.str("stdout"), "/tmp\nblue\n") << env.body;
  // A command that does not exist is an exit code, not an API error.
  Answer missing = exec(id, {"/no/such/binary"});
  EXPECT_EQ(missing.status, 200) << missing.body;
  EXPECT_NE(missing.json.at("exit_code"), json::value(0)) << missing.body;

  // Legacy: the same command, the original's shape.
  Answer legacy = sd().post("/sandbox/" + id + "/exec",
                            R"({"cmd":["sh","-c","echo out; echo err >&2; exit 7"]})");
  ASSERT_EQ(legacy.status, 200) << legacy.body;
  EXPECT_EQ(legacy.str("stdout"), "out\n");
  EXPECT_EQ(legacy.str("stderr"), "err\n");
  EXPECT_EQ(legacy.json.at("exit_code"), json::value(7));
  EXPECT_EQ(legacy.json.at("timed_out"), json::value(false));
  EXPECT_EQ(legacy.json.at("truncated"), json::value(false));
}

TEST_F(Exec, OutputOverTheLimitIsTruncatedNotAnError) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  // exec.max_output is 1MiB by default: write 1.5 MiB.
  Answer a = exec(id, {"sh", "-c", "head -c 1572864 /dev/zero | tr '\\0' x; echo done >&2"});
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.json.at("truncated"), json::value(true));
  EXPECT_EQ(a.str("stdout").size(), 1048576u);
  EXPECT_EQ(a.str("stderr"), "done\n");
  EXPECT_EQ(a.json.at("exit_code"), json::value(0));
}

TEST_F(Exec, TimeoutKillsTheWholeCommand) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  auto begin = std::chrono::steady_clock::now();
  // The shell stays the parent of sleep (a second command follows), so the whole process
  // tree has to go, not just the process Docker started.
  Answer a = exec(id, {"sh", "-c", "echo started; sleep 300; echo never"}, R"("timeout_s":1)");
  auto took = std::chrono::steady_clock::now() - begin;
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.json.at("timed_out"), json::value(true)) << a.body;
  EXPECT_EQ(a.str("stdout"), "started\n");
  EXPECT_LT(took, 15s);
  // Nothing of it is left running.
  Answer ps;
  EXPECT_TRUE(wait_until([&] {
    ps = exec(id, {"ps", "-o", "pid,args"});
    return ps.str("stdout").find("sleep 300") == std::string::npos;
  }, 10s)) << ps.body;

  // Legacy stream: a `timed_out: true` line before the exit code.
  Answer legacy = sd().post("/sandbox/" + id + "/exec",
                            R"({"cmd":["sh","-c","sleep 300"],"stream":true,"timeout_s":1})");
  ASSERT_EQ(legacy.status, 200) << legacy.body;
  EXPECT_NE(legacy.body.find("---stderr---\ntimed_out: true\nexit_code: "), std::string::npos)
      << legacy.body;
}

TEST_F(Exec, StreamsV1AsNdjsonFrames) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  std::string cmd = json_argv({"sh", "-c", "echo one; echo two >&2; echo three; exit 3"});
  Answer a = sd().post("/v1/sandboxes/" + id + "/exec", R"({"stream":true,"cmd":)" + cmd + "}");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.header("content-type"), "application/x-ndjson");
  EXPECT_EQ(a.header("transfer-encoding"), "chunked");
  std::vector<json::object> frames = frames_of(a.body);
  ASSERT_GE(frames.size(), 3u) << a.body;
  EXPECT_EQ(str_of(frames.front(), "type"), "start");
  EXPECT_TRUE(std::regex_match(str_of(frames.front(), "exec_id"), kCanonicalId)) << a.body;
  std::string out, err;
  for (std::size_t i = 1; i + 1 < frames.size(); ++i) {
    std::string type = str_of(frames[i], "type");
    if (type == "stdout") out += str_of(frames[i], "data");
    else if (type == "stderr") err += str_of(frames[i], "data");
    else ADD_FAILURE() << "unexpected frame " << json::serialize(frames[i]);
  }
  EXPECT_EQ(out, "one\nthree\n");
  EXPECT_EQ(err, "two\n");
  const json::object& last = frames.back();
  EXPECT_EQ(str_of(last, "type"), "exit") << a.body;
  EXPECT_EQ(last.at("exit_code"), json::value(3));
  EXPECT_EQ(last.at("timed_out"), json::value(false));
  EXPECT_TRUE(last.at("duration_ms").is_int64());

  // Accept: application/x-ndjson asks for the same without the field.
  Answer by_accept = sd().call("POST", "/v1/sandboxes/" + id + "/exec",
                               R"({"cmd":["echo","hi"]})", {"Accept: application/x-ndjson"});
  ASSERT_EQ(by_accept.status, 200);
  std::vector<json::object> f = frames_of(by_accept.body);
  ASSERT_EQ(f.size(), 3u) << by_accept.body;
  EXPECT_EQ(str_of(f[1], "data"), "hi\n");
  EXPECT_EQ(str_of(f[2], "type"), "exit");

  // Bytes that are not UTF-8 travel as base64.
  Answer raw = sd().post("/v1/sandboxes/" + id + "/exec",
                         R"({"stream":true,"cmd":["printf","\\377\\376"]})");
  ASSERT_EQ(raw.status, 200);
  std::vector<json::object> rf = frames_of(raw.body);
  ASSERT_EQ(rf.size(), 3u) << raw.body;
  EXPECT_EQ(str_of(rf[1], "data_b64"), "//4=") << raw.body;
}

TEST_F(Exec, StreamsOutputAsItArrives) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  // The first chunk must reach the client while the command still runs: it waits for a
  // file that the test creates only after reading that chunk.
  RawConnection conn(sd().port());
  std::string body = json_argv({"sh", "-c",
                                "echo first; while [ ! -e /home/sandbox/go ]; do sleep 0.05; done;"
                                " echo second"});
  body = R"({"stream":true,"timeout_s":30,"cmd":)" + body + "}";
  conn.send("POST /v1/sandboxes/" + id + "/exec HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n\r\n" + body);
  // The answer is chunked and still open when "first" arrives.
  ASSERT_TRUE(conn.read_until(R"("data":"first\n")", 10s)) << conn.received();
  EXPECT_EQ(conn.received().find("second"), std::string::npos);
  std::ofstream(sd().workspace(id) + "/go") << "";
  ASSERT_TRUE(conn.read_until(R"("type":"exit")", 15s)) << conn.received();
  std::string seen = conn.received();
  EXPECT_NE(seen.find("second"), std::string::npos);
}

// A client that goes away cancels its (non-detached) exec: the command's processes end.
void expect_disconnect_ends_command(SandboxdTest& t, Sandboxd& s, const std::string& id,
                                    const std::string& path, bool stream,
                                    const std::string& marker, const std::string& prefix = "") {
  std::string body = json_argv({"sh", "-c", prefix + "echo started; " + marker + "; echo never"});
  body = std::string(R"({"timeout_s":600,"stream":)") + (stream ? "true" : "false") +
         R"(,"cmd":)" + body + "}";
  {
    RawConnection conn(s.port());
    conn.send("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    Answer ps;
    ASSERT_TRUE(wait_until([&] {
      ps = t_exec(s, id, {"ps", "-o", "args"});
      return ps.str("stdout").find(marker) != std::string::npos;
    }, 15s)) << ps.body;
  }  // the client hangs up here
  Answer ps;
  EXPECT_TRUE(wait_until([&] {
    ps = t_exec(s, id, {"ps", "-o", "args"});
    return ps.status == 200 && ps.str("stdout").find(marker) == std::string::npos;
  }, 20s)) << path << (stream ? " (stream)" : " (buffered)") << ": " << ps.body;
  (void)t;
}

TEST_F(Exec, ClientDisconnectEndsTheCommand) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  expect_disconnect_ends_command(*this, sd(), id, "/v1/sandboxes/" + id + "/exec", true,
                                 "sleep 301");
  expect_disconnect_ends_command(*this, sd(), id, "/sandbox/" + id + "/exec", true, "sleep 302");
  expect_disconnect_ends_command(*this, sd(), id, "/v1/sandboxes/" + id + "/exec", false,
                                 "sleep 303");
  expect_disconnect_ends_command(*this, sd(), id, "/sandbox/" + id + "/exec", false, "sleep 304");
  // A command that ignores SIGTERM gets SIGKILL 5 s later.
  auto begin = std::chrono::steady_clock::now();
  expect_disconnect_ends_command(*this, sd(), id, "/v1/sandboxes/" + id + "/exec", false,
                                 "sleep 305", "trap '' TERM; ");
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 4s) << "SIGKILL came before the grace";
}

TEST_F(Exec, StreamsLegacyAsTextWithStderrAfterStdout) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  Answer a = sd().post("/sandbox/" + id + "/exec",
                       R"({"stream":true,"cmd":["sh","-c","echo one; echo two >&2; echo three; exit 4"]})");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(a.body, "one\nthree\n---stderr---\ntwo\nexit_code: 4\n");
}

TEST_F(Exec, DetachedCommandReturnsAtOnceAndEndsWithTheSandbox) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  auto begin = std::chrono::steady_clock::now();
  Answer a = exec(id, {"sh", "-c", "echo up > /home/sandbox/detached.txt; exec sleep 600"},
                  R"("detach":true)");
  ASSERT_EQ(a.status, 202) << a.body;
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 10s);
  EXPECT_TRUE(std::regex_match(a.str("exec_id"), kCanonicalId)) << a.body;
  EXPECT_EQ(a.str("status"), "running");
  EXPECT_TRUE(wait_until([&] {
    return exec(id, {"cat", "/home/sandbox/detached.txt"}).str("stdout") == "up\n";
  }, 10s));
  Answer ps = exec(id, {"ps", "-o", "args"});
  EXPECT_NE(ps.str("stdout").find("sleep 600"), std::string::npos) << ps.body;
  // It does not keep the sandbox up: a stop ends it.
  Answer stopped = sd().post("/v1/sandboxes/" + id + "/stop");
  EXPECT_EQ(stopped.status, 200) << stopped.body;
  ASSERT_EQ(sd().post("/v1/sandboxes/" + id + "/start").status, 200);
  ps = exec(id, {"ps", "-o", "args"});
  EXPECT_EQ(ps.str("stdout").find("sleep 600"), std::string::npos) << ps.body;
}

// SPEC §2.6.8: a detached command gets timeout_s only when it is given; then its whole
// process tree ends, and one without it runs on.
TEST_F(Exec, DetachedCommandWithATimeoutIsEndedWhenItRunsOut) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  Answer limited = exec(id, {"sh", "-c", "sleep 701 & exec sleep 702"}, R"("detach":true,"timeout_s":1)");
  ASSERT_EQ(limited.status, 202) << limited.body;
  Answer free_running = exec(id, {"sleep", "703"}, R"("detach":true)");
  ASSERT_EQ(free_running.status, 202) << free_running.body;
  std::string args;
  auto running = [&](const char* what) {
    args = exec(id, {"ps", "-o", "args"}).str("stdout");
    return args.find(what) != std::string::npos;
  };
  ASSERT_TRUE(wait_until([&] { return running("sleep 702"); }, 10s)) << args;
  EXPECT_TRUE(wait_until([&] { return !running("sleep 701") && !running("sleep 702"); }, 20s)) << args;
  EXPECT_TRUE(running("sleep 703")) << args;
}

TEST_F(Exec, WakesAStoppedSandboxAndRefusesDestroyedOrUnknown) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  ASSERT_EQ(sd().post("/v1/sandboxes/" + id + "/stop").status, 200);
  Answer a = exec(id, {"echo", "awake"});
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.str("stdout"), "awake\n");
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "running");

  ASSERT_TRUE(wait_init_ready(id));
  ASSERT_EQ(sd().post("/v1/sandboxes/" + id + "/stop").status, 200);
  Answer legacy = sd().post("/sandbox/" + id + "/exec", R"({"cmd":["echo","legacy"]})");
  ASSERT_EQ(legacy.status, 200) << legacy.body;
  EXPECT_EQ(legacy.str("stdout"), "legacy\n");
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "running");

  ASSERT_EQ(sd().del("/v1/sandboxes/" + id + "?keep_workspace=true").status, 204);
  Answer destroyed = exec(id, {"true"});
  EXPECT_EQ(destroyed.status, 409) << destroyed.body;
  EXPECT_EQ(destroyed.error_code(), "conflict");
  // Streamed too: the refusal is the status line, not a frame after a 200.
  Answer streamed = exec(id, {"true"}, R"("stream":true)");
  EXPECT_EQ(streamed.status, 409) << streamed.body;
  EXPECT_EQ(streamed.error_code(), "conflict") << streamed.body;
  EXPECT_EQ(sd().post("/sandbox/" + id + "/exec", R"({"cmd":["true"]})").status, 404);
  Answer unknown = exec("01ARZ3NDEKTSV4RRFFQ69G5FAV", {"true"});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.error_code(), "not_found");
}

}  // namespace
}  // namespace sandboxd::testing
