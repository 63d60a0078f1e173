// Tasks and runtimed through the real sandboxd, its test image (runtimed as the entrypoint,
// the testapp as the dev server) and a real Docker Engine (SPEC §2.7.1-2.7.5, §6, §8).
//
// Commands that must wait inside the sandbox wait for a file the test creates (a "gate"),
// so the test decides when a task goes on; nothing here sleeps to synchronise.
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include <fstream>
#include <regex>

#include "raw_http.h"
#include "sandboxd_fixture.h"

namespace sandboxd::testing {
namespace {

namespace fs = std::filesystem;

std::string text_of(const SseEvent& e) { return str_of(e.data.at("data"), "text"); }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

class Tasks : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra =
        "tasks:\n"
        "  agents:\n"
        "    opencode:\n"
        "      model: anthropic/claude-sonnet-4-5\n"
        "    claude-code:\n"
        "      extra_args: [\"--max-turns\", \"3\"]\n";
    return c;
  }

  std::string base(const std::string& id) { return "/v1/sandboxes/" + id; }

  Answer submit(const std::string& id, const std::string& body) {
    return sd().post(base(id) + "/tasks", body);
  }

  // Submits a command task; the task id ("" after a failed expectation).
  std::string submit_command(const std::string& id, const std::vector<std::string>& argv) {
    Answer a = submit(id, R"({"agent":"command","command":)" + json_argv(argv) + "}");
    EXPECT_EQ(a.status, 202) << a.body;
    return a.status == 202 ? a.str("id") : std::string();
  }

  Answer task(const std::string& id, const std::string& task_id) {
    return sd().get(base(id) + "/tasks/" + task_id);
  }

  ::testing::AssertionResult wait_task(const std::string& id, const std::string& task_id,
                                       const std::string& status,
                                       std::chrono::milliseconds deadline = 60s) {
    Answer a;
    if (wait_until(
            [&] {
              a = task(id, task_id);
              return a.str("status") == status;
            },
            deadline)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "task " << task_id << " is not " << status << ": " << a.body;
  }

  // The whole SSE stream (it ends after `done`).
  SseStream events(const std::string& id, const std::string& task_id,
                   const std::vector<std::string>& headers = {}, const std::string& query = "") {
    Answer a =
        sd().call("GET", base(id) + "/tasks/" + task_id + "/events" + query, "", headers, 90s);
    EXPECT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.header("content-type"), "text/event-stream");
    EXPECT_EQ(a.header("cache-control"), "no-cache");
    EXPECT_EQ(a.header("x-accel-buffering"), "no");
    return parse_sse(a.body);
  }

  // `sh -c` that prints `before`, waits until the gate file exists, then prints `after`.
  static std::vector<std::string> gated(const std::string& gate, const std::string& before,
                                        const std::string& after) {
    return {"sh", "-c",
            "echo " + before + "; while [ ! -e /home/sandbox/" + gate +
                " ]; do sleep 0.05; done; echo " + after};
  }

  void open_gate(const std::string& id, const std::string& gate) {
    std::ofstream(sd().workspace(id) + "/" + gate) << "go\n";
  }

  std::string pid_of_app(const std::string& id) {
    Answer a = exec(id, {"pidof", "testapp"});
    return a.status == 200 ? trim(a.str("stdout")) : std::string();
  }

  // The secret of the sandbox's runtimed as SPEC §6.2 derives it, from node.key and the
  // stored generation; also checks the stored hash.
  std::string runtimed_secret(const std::string& id) {
    std::string key = read_whole(sd().data_dir() + "/state/node.key");
    EXPECT_EQ(key.size(), 32u);
    sqlite3* db = nullptr;
    std::string db_path = sd().data_dir() + "/state/sandboxd.db";
    EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(
        db, "SELECT runtimed_secret_gen, runtimed_secret_hash FROM sandbox WHERE id = ?1", -1,
        &stmt, nullptr);
    sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    long long gen = -1;
    std::string stored_hash;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      gen = sqlite3_column_int64(stmt, 0);
      const unsigned char* h = sqlite3_column_text(stmt, 1);
      stored_hash = h ? reinterpret_cast<const char*>(h) : "";
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    EXPECT_GE(gen, 1);
    std::string message = "runtimed";
    message += '\0';
    message += id;
    message += '\0';
    message += std::to_string(gen);
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
    std::string secret = hex(mac, len);
    unsigned char digest[32];
    SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), digest);
    EXPECT_EQ(stored_hash, hex(digest, 32)) << "the store keeps hex(SHA-256(secret))";
    return secret;
  }

  // One request to the sandbox's runtimed over its socket, as sandboxd makes them.
  std::pair<int, std::string> runtimed_call(const std::string& id, const std::string& method,
                                            const std::string& path, const std::string& secret) {
    std::string socket = sd().data_dir() + "/run/" + id + "/runtimed.sock";
    RunResult r =
        run({"/usr/bin/curl", "-sS", "-m", "10", "--unix-socket", socket, "-X", method, "-H",
             "Authorization: Bearer " + secret, "-w", "\n%{http_code}", "http://runtimed" + path},
            20s);
    std::size_t nl = r.out.rfind('\n');
    if (r.status != 0 || nl == std::string::npos) return {0, r.err};
    return {std::atoi(r.out.c_str() + nl + 1), r.out.substr(0, nl)};
  }
};

// ---------------------------------------------------------------------------- events

TEST_F(Tasks, CommandEventsStreamLiveInOrderAndResumeExactly) {
  std::string id = create_v1("u", "stream");
  ASSERT_FALSE(id.empty());
  std::string task_id = submit_command(id, gated("go", "first", "second"));
  ASSERT_FALSE(task_id.empty());
  Answer made = task(id, task_id);
  EXPECT_EQ(made.status, 200) << made.body;
  EXPECT_EQ(made.str("agent"), "command");
  EXPECT_EQ(made.str("sandbox_id"), id);

  // Live: the first line arrives while the task still waits for its gate.
  std::string path = base(id) + "/tasks/" + task_id + "/events";
  {
    RawConnection live(sd().port());
    live.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(live.read_until("\"text\":\"first\"", 30s)) << live.received();
    EXPECT_NE(live.received().find("text/event-stream"), std::string::npos);
    EXPECT_NE(live.received().find("retry: 2000"), std::string::npos);
    EXPECT_EQ(live.received().find("\"text\":\"second\""), std::string::npos);
    Answer running = task(id, task_id);
    EXPECT_EQ(running.str("status"), "running") << running.body;
    EXPECT_EQ(running.str("phase"), "agent_running") << running.body;
  }  // the client leaves mid-task

  // It comes back saying what it saw: exactly the missing events follow.
  open_gate(id, "go");
  SseStream rest = events(id, task_id, {"Last-Event-ID: 2"});
  EXPECT_TRUE(rest.retry_first);
  ASSERT_FALSE(rest.events.empty());
  EXPECT_EQ(rest.events.front().id, 3);
  for (std::size_t i = 1; i < rest.events.size(); ++i) {
    EXPECT_EQ(rest.events[i].id, rest.events[i - 1].id + 1) << "no gap, no duplicate";
  }
  EXPECT_EQ(text_of(rest.events.front()), "second");
  EXPECT_EQ(rest.events.back().event, "done");

  // The whole stream, replayed from the store once the task is over.
  ASSERT_TRUE(wait_task(id, task_id, "succeeded"));
  SseStream all = events(id, task_id);
  std::vector<std::string> types;
  for (const auto& e : all.events) types.push_back(e.event);
  EXPECT_EQ(types, (std::vector<std::string>{"started", "stdout", "stdout", "exit", "done"}));
  for (std::size_t i = 0; i < all.events.size(); ++i) {
    const SseEvent& e = all.events[i];
    EXPECT_EQ(e.id, static_cast<long long>(i) + 1);
    ASSERT_TRUE(e.data.is_object()) << "data is one JSON line";
    EXPECT_EQ(e.data.at("id"), json::value(e.id));
    EXPECT_EQ(str_of(e.data, "type"), e.event);
    EXPECT_TRUE(std::regex_match(str_of(e.data, "ts"),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
        << str_of(e.data, "ts");
  }
  EXPECT_EQ(text_of(all.events[1]), "first");
  EXPECT_EQ(text_of(all.events[2]), "second");
  EXPECT_EQ(str_of(all.events[4].data.at("data"), "status"), "succeeded");
  // ?since=n starts at n.
  SseStream since = events(id, task_id, {}, "?since=4");
  ASSERT_EQ(since.events.size(), 2u);
  EXPECT_EQ(since.events[0].event, "exit");
  // Bad resume points are refused before any SSE byte.
  EXPECT_EQ(sd().call("GET", path, "", {"Last-Event-ID: x"}).status, 400);
  EXPECT_EQ(sd().get(path + "?since=0").status, 400);
  EXPECT_EQ(sd().get(base(id) + "/tasks/01KZ3NDEKTSV4RRFFQ69G5FAVB/events").status, 404);

  // The task object now carries the outcome.
  Answer done = task(id, task_id);
  EXPECT_EQ(done.str("status"), "succeeded");
  EXPECT_EQ(done.json.at("exit_code"), json::value(0)) << done.body;
  EXPECT_FALSE(done.str("finished_at").empty());
  EXPECT_TRUE(done.json.at("duration_ms").is_int64()) << done.body;
  EXPECT_FALSE(done.json.as_object().contains("phase"));
  Answer listed = sd().get(base(id) + "/tasks");
  ASSERT_EQ(listed.status, 200) << listed.body;
  ASSERT_EQ(listed.json.at("tasks").as_array().size(), 1u);
  EXPECT_EQ(str_of(listed.json.at("tasks").as_array()[0], "id"), task_id);
  EXPECT_FALSE(listed.json.at("tasks").as_array()[0].as_object().contains("exit_code"))
      << "list items stop at finished_at";
}

TEST_F(Tasks, SubmitValidatesBeforeAnythingElse) {
  std::string id = create_v1("u", "validate");
  ASSERT_FALSE(id.empty());
  auto refused = [&](const std::string& body, const std::string& field) {
    Answer a = submit(id, body);
    EXPECT_EQ(a.status, 400) << body << ": " << a.body;
    EXPECT_NE(a.body.find(field), std::string::npos) << body << ": " << a.body;
  };
  refused(R"({"agent":"command"})", "command");
  refused(R"({"agent":"command","command":[]})", "command");
  refused(R"({"agent":"command","command":["true"],"prompt":"x"})", "prompt");
  refused(R"({"agent":"opencode"})", "prompt");
  refused(R"({"agent":"bash","prompt":"x"})", "agent");
  refused(R"({"agent":"command","command":["true"],"timeout_s":0})", "timeout_s");
  refused(R"({"agent":"command","command":["true"],"env":{"HOME":"/"}})", "env");
  refused(R"({"agent":"command","command":["true"],"colour":"blue"})", "colour");
  EXPECT_EQ(
      submit("01KZ3NDEKTSV4RRFFQ69G5FAVB", R"({"agent":"command","command":["true"]})").status,
      404);
  EXPECT_EQ(sd().get(base(id) + "/tasks/not-a-ulid").status, 400);
  EXPECT_EQ(sd().get(base(id) + "/tasks/01KZ3NDEKTSV4RRFFQ69G5FAVB").status, 404);
  Answer none = sd().get(base(id) + "/tasks");
  EXPECT_EQ(json::serialize(none.json.at("tasks")), "[]") << "nothing was submitted";
}

// ---------------------------------------------------------------------------- cancel

TEST_F(Tasks, CancelEndsTheTaskAndItsChildren) {
  std::string id = create_v1("u", "cancel");
  ASSERT_FALSE(id.empty());
  std::string task_id =
      submit_command(id, {"sh", "-c", "sleep 1001 & sleep 1002 & echo children; wait"});
  ASSERT_FALSE(task_id.empty());
  Answer ps;
  ASSERT_TRUE(wait_until(
      [&] {
        ps = exec(id, {"ps", "-o", "args"});
        return ps.str("stdout").find("sleep 1001") != std::string::npos &&
               ps.str("stdout").find("sleep 1002") != std::string::npos;
      },
      30s))
      << ps.body;

  Answer cancel = sd().post(base(id) + "/tasks/" + task_id + "/cancel");
  EXPECT_EQ(cancel.status, 202) << cancel.body;
  EXPECT_EQ(cancel.str("status"), "cancelling");
  ASSERT_TRUE(wait_task(id, task_id, "cancelled"));
  Answer after = task(id, task_id);
  EXPECT_EQ(after.str("failure_reason"), "cancelled") << after.body;
  EXPECT_TRUE(wait_until(
      [&] {
        ps = exec(id, {"ps", "-o", "args"});
        return ps.status == 200 && ps.str("stdout").find("sleep 100") == std::string::npos;
      },
      20s))
      << "the task's children are gone: " << ps.body;
  SseStream all = events(id, task_id);
  ASSERT_FALSE(all.events.empty());
  EXPECT_EQ(all.events.back().event, "done");
  EXPECT_EQ(str_of(all.events.back().data.at("data"), "status"), "cancelled");
  // Cancel is idempotent once the task is over.
  Answer again = sd().post(base(id) + "/tasks/" + task_id + "/cancel");
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.str("status"), "cancelled");
  EXPECT_EQ(sd().post(base(id) + "/tasks/01KZ3NDEKTSV4RRFFQ69G5FAVB/cancel").status, 404);
}

// ---------------------------------------------------------------------------- wake, restart

TEST_F(Tasks, SubmitWakesAStoppedSandbox) {
  std::string id = create_v1("u", "wake");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  Answer stopped = sd().post(base(id) + "/stop");
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  EXPECT_EQ(stopped.str("status"), "stopped");

  Answer a = submit(id, R"({"agent":"command","command":["sh","-c","echo awake; id -u"]})");
  ASSERT_EQ(a.status, 202) << a.body;
  std::string task_id = a.str("id");
  EXPECT_EQ(a.header("location"), base(id) + "/tasks/" + task_id);
  EXPECT_EQ(a.str("events_url"), base(id) + "/tasks/" + task_id + "/events");
  EXPECT_TRUE(a.str("status") == "queued" || a.str("status") == "running") << a.body;
  EXPECT_EQ(sd().get(base(id)).str("status"), "running");
  ASSERT_TRUE(wait_task(id, task_id, "succeeded"));
  SseStream all = events(id, task_id);
  std::vector<std::string> lines;
  for (const auto& e : all.events) {
    if (e.event == "stdout") lines.push_back(text_of(e));
  }
  EXPECT_EQ(lines, (std::vector<std::string>{"awake", "1000"})) << "it runs as the sandbox user";
  // runtimed answers for the sandbox object once it runs.
  Answer row = sd().get(base(id));
  EXPECT_EQ(row.str("runtime"), "up") << row.body;
}

TEST_F(Tasks, FinalStateSurvivesASandboxdRestartMidTask) {
  std::string id = create_v1("u", "restart");
  ASSERT_FALSE(id.empty());
  std::string task_id = submit_command(id, gated("go", "before", "after"));
  ASSERT_FALSE(task_id.empty());
  {
    RawConnection live(sd().port());
    live.send("GET " + base(id) + "/tasks/" + task_id + "/events HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(live.read_until("\"text\":\"before\"", 30s)) << live.received();
  }
  sd().kill9();
  // The task finishes while sandboxd is down; runtimed keeps its events.
  open_gate(id, "go");
  ASSERT_TRUE(sd().start());
  ASSERT_TRUE(wait_task(id, task_id, "succeeded"));
  SseStream all = events(id, task_id);
  std::vector<std::string> types;
  for (const auto& e : all.events) types.push_back(e.event);
  EXPECT_EQ(types, (std::vector<std::string>{"started", "stdout", "stdout", "exit", "done"}));
  ASSERT_EQ(all.events.size(), 5u);
  EXPECT_EQ(text_of(all.events[2]), "after");

  // A task running when its sandbox stops is finalized as interrupted (SPEC §8).
  std::string long_task = submit_command(id, gated("never", "waiting", "unreachable"));
  ASSERT_FALSE(long_task.empty());
  ASSERT_TRUE(wait_task(id, long_task, "running"));
  Answer refused = sd().post(base(id) + "/stop");
  EXPECT_EQ(refused.status, 409) << "a running task blocks a stop: " << refused.body;
  EXPECT_EQ(refused.error_code(), "task_in_progress");
  Answer forced = sd().post(base(id) + "/stop", R"({"force":true})");
  EXPECT_EQ(forced.status, 200) << forced.body;
  ASSERT_TRUE(wait_until([&] { return task(id, long_task).str("status") != "running"; }, 30s));
  Answer ended = task(id, long_task);
  EXPECT_TRUE(ended.str("status") == "cancelled" || ended.str("status") == "failed") << ended.body;
  SseStream tail = events(id, long_task);
  ASSERT_FALSE(tail.events.empty());
  EXPECT_EQ(tail.events.back().event, "done") << "a stopped sandbox still replays to the end";
}

TEST_F(Tasks, TaskOfAContainerThatDiesIsFinalizedAsInterrupted) {
  std::string id = create_v1("u", "killed");
  ASSERT_FALSE(id.empty());
  std::string task_id = submit_command(id, gated("never", "waiting", "unreachable"));
  ASSERT_FALSE(task_id.empty());
  ASSERT_TRUE(wait_task(id, task_id, "running"));
  // SIGKILL for the whole container: runtimed cannot finish the task itself.
  ASSERT_EQ(engine_call("POST", "/containers/s-" + id + "/kill?signal=KILL").status, 204);
  ASSERT_TRUE(wait_task(id, task_id, "failed"));
  Answer t = task(id, task_id);
  EXPECT_EQ(t.str("failure_reason"), "interrupted") << t.body;
  SseStream all = events(id, task_id);
  ASSERT_GE(all.events.size(), 3u);
  for (std::size_t i = 0; i < all.events.size(); ++i) {
    EXPECT_EQ(all.events[i].id, static_cast<long long>(i) + 1);
  }
  EXPECT_EQ(all.events[all.events.size() - 2].event, "error");
  EXPECT_EQ(str_of(all.events[all.events.size() - 2].data.at("data"), "code"), "interrupted");
  EXPECT_EQ(all.events.back().event, "done");
  // The next start's runtimed recovers the same task as interrupted; sandboxd's record,
  // written first, stays as it is.
  ASSERT_EQ(sd().post(base(id) + "/start").status, 200);
  std::string next = submit_command(id, {"true"});
  ASSERT_FALSE(next.empty());
  ASSERT_TRUE(wait_task(id, next, "succeeded"));
  EXPECT_EQ(events(id, task_id).events.size(), all.events.size());
  EXPECT_EQ(task(id, task_id).str("status"), "failed");
}

// ---------------------------------------------------------------------------- dev server

TEST_F(Tasks, DevServerRestartsAfterACrashAndWhenAsked) {
  std::string id = create_v1("u", "dev");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  std::string first = pid_of_app(id);
  ASSERT_FALSE(first.empty());
  std::string secret = runtimed_secret(id);
  auto [status_code, status_body] = runtimed_call(id, "GET", "/devserver", secret);
  ASSERT_EQ(status_code, 200) << status_body;
  json::value dev = json::parse(status_body);
  EXPECT_EQ(str_of(dev, "command"), "sandbox-dev");
  EXPECT_EQ(str_of(dev, "command_source"), "settings");
  EXPECT_EQ(dev.at("port"), json::value(3000));
  EXPECT_EQ(runtimed_call(id, "GET", "/status", std::string(64, '0')).first, 401)
      << "a wrong secret is refused";

  // A crash: runtimed starts it again.
  ASSERT_EQ(exec(id, {"kill", "-KILL", first}).status, 200);
  std::string second;
  ASSERT_TRUE(wait_until(
      [&] {
        second = pid_of_app(id);
        return !second.empty() && second != first;
      },
      30s));
  EXPECT_TRUE(wait_until(
      [&] {
        Answer a = exec(id, {"wget", "-q", "-O", "-", "http://127.0.0.1:3000/hostname"});
        return a.json.is_object() && a.json.at("exit_code") == json::value(0);
      },
      30s))
      << "the app answers again";
  auto [after_code, after_body] = runtimed_call(id, "GET", "/devserver", secret);
  ASSERT_EQ(after_code, 200) << after_body;
  EXPECT_GE(json::parse(after_body).at("restarts").to_number<int>(), 1) << after_body;

  // runtimed's restart endpoint, with the secret sandboxd issued.
  auto [restart_code, restart_body] = runtimed_call(id, "POST", "/devserver/restart", secret);
  EXPECT_EQ(restart_code, 202) << restart_body;
  std::string third;
  ASSERT_TRUE(wait_until(
      [&] {
        third = pid_of_app(id);
        return !third.empty() && third != second;
      },
      30s));
  // SIGHUP to runtimed (PID 1) restarts it too (SPEC §6.1).
  ASSERT_EQ(exec(id, {"kill", "-HUP", "1"}).status, 200);
  ASSERT_TRUE(wait_until(
      [&] {
        std::string fourth = pid_of_app(id);
        return !fourth.empty() && fourth != third;
      },
      30s));

  // The dev-server log through the API shows every start.
  Answer log;
  EXPECT_TRUE(wait_until(
      [&] {
        log = sd().get(base(id) + "/logs?source=dev_server&tail=1000");
        std::size_t starts = 0;
        for (std::size_t at = log.body.find("--- start "); at != std::string::npos;
             at = log.body.find("--- start ", at + 1)) {
          ++starts;
        }
        return log.status == 200 && starts >= 4;
      },
      30s))
      << log.status << " " << log.body;
  EXPECT_EQ(log.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_NE(log.body.find("cmd=sandbox-dev"), std::string::npos) << log.body;
  Answer one = sd().get(base(id) + "/logs?source=dev_server&tail=1");
  EXPECT_EQ(std::count(one.body.begin(), one.body.end(), '\n'), 1) << one.body;
  {
    // follow=true: what the log gains afterwards arrives on the open answer.
    RawConnection follow(sd().port());
    follow.send("GET " + base(id) +
                "/logs?source=dev_server&follow=true&tail=1 HTTP/1.1\r\n"
                "Host: x\r\n\r\n");
    ASSERT_TRUE(follow.read_until("\r\n\r\n", 10s)) << follow.received();
    EXPECT_NE(follow.received().find(" 200 "), std::string::npos) << follow.received();
    std::ofstream(sd().workspace(id) + "/.sandboxd/devserver.log", std::ios::app)
        << "follow-marker\n";
    EXPECT_TRUE(follow.read_until("follow-marker\n", 10s)) << follow.received();
  }
  // Also while stopped: read from the workspace without waking anything.
  ASSERT_EQ(sd().post(base(id) + "/stop").status, 200);
  Answer stopped_log = sd().get(base(id) + "/logs?source=dev_server&format=ndjson&tail=1000");
  EXPECT_EQ(stopped_log.status, 200);
  EXPECT_EQ(stopped_log.header("content-type"), "application/x-ndjson");
  EXPECT_NE(stopped_log.body.find("\"line\":\"--- start "), std::string::npos) << stopped_log.body;
  EXPECT_EQ(sd().get(base(id)).str("status"), "stopped");
  EXPECT_EQ(sd().get(base(id) + "/logs?source=nope").status, 400);
}

// ---------------------------------------------------------------------------- container logs

// source=container (the default): the container's output, i.e. runtimed's own log lines.
TEST_F(Tasks, ContainerLogsShowRuntimedOutput) {
  std::string id = create_v1("u", "clog");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));

  Answer text;
  EXPECT_TRUE(wait_until(
      [&] {
        text = sd().get(base(id) + "/logs");
        return text.status == 200 && text.body.find("runtimed ready") != std::string::npos;
      },
      30s))
      << text.status << " " << text.body;
  EXPECT_EQ(text.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_NE(text.body.find("runtimed starting"), std::string::npos) << text.body;

  Answer nd = sd().get(base(id) + "/logs?format=ndjson&source=container");
  EXPECT_EQ(nd.status, 200);
  EXPECT_EQ(nd.header("content-type"), "application/x-ndjson");
  const std::regex ts_form(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)");
  std::size_t lines = 0;
  bool saw_start = false;
  for (std::size_t at = 0; at < nd.body.size();) {
    std::size_t nl = nd.body.find('\n', at);
    ASSERT_NE(nl, std::string::npos) << "every line ends with a newline: " << nd.body;
    json::value v = json::parse(nd.body.substr(at, nl - at));
    at = nl + 1;
    ++lines;
    EXPECT_TRUE(std::regex_match(str_of(v, "ts"), ts_form)) << v;
    std::string stream = str_of(v, "stream");
    EXPECT_TRUE(stream == "stdout" || stream == "stderr") << v;
    saw_start = saw_start || str_of(v, "line").find("runtimed starting") != std::string::npos;
  }
  EXPECT_GE(lines, 2u) << nd.body;
  EXPECT_TRUE(saw_start) << nd.body;

  Answer one = sd().get(base(id) + "/logs?tail=1");
  EXPECT_EQ(one.status, 200);
  EXPECT_EQ(std::count(one.body.begin(), one.body.end(), '\n'), 1) << one.body;
  Answer none = sd().get(base(id) + "/logs?tail=0");
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.body, "");
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  Answer future = sd().get(base(id) + "/logs?since=" + std::to_string(now_s + 3600));
  EXPECT_EQ(future.status, 200);
  EXPECT_EQ(future.body, "") << "nothing was logged an hour from now";
  Answer past = sd().get(base(id) + "/logs?since=2000-01-01T00:00:00Z");
  EXPECT_NE(past.body.find("runtimed starting"), std::string::npos) << past.body;
  for (const char* bad : {"tail=-1", "tail=10001", "tail=x", "format=xml", "since=yesterday",
                          "follow=maybe", "tail=1&tail=2"}) {
    EXPECT_EQ(sd().get(base(id) + "/logs?" + bad).status, 400) << bad;
  }

  {
    // follow=true: a line runtimed logs afterwards arrives on the open answer, which ends when
    // the container stops.
    RawConnection follow(sd().port());
    follow.send("GET " + base(id) +
                "/logs?follow=true&tail=1&format=ndjson HTTP/1.1\r\n"
                "Host: x\r\n\r\n");
    ASSERT_TRUE(follow.read_until("\"line\":", 10s)) << follow.received();
    EXPECT_NE(follow.received().find(" 200 "), std::string::npos) << follow.received();
    std::string task_id = submit_command(id, {"true"});
    ASSERT_FALSE(task_id.empty());
    EXPECT_TRUE(follow.read_until(task_id, 30s)) << follow.received();
    ASSERT_EQ(sd().post(base(id) + "/stop").status, 200);
    EXPECT_TRUE(follow.read_until("\r\n0\r\n\r\n", 60s)) << follow.received();
  }

  // Destroyed (the workspace kept): no container, an empty answer.
  ASSERT_EQ(sd().del(base(id) + "?keep_workspace=true").status, 204);
  Answer gone = sd().get(base(id) + "/logs");
  EXPECT_EQ(gone.status, 200);
  EXPECT_EQ(gone.body, "");
  EXPECT_EQ(sd().get("/v1/sandboxes/01KZ3NDEKTSV4RRFFQ69G5FAVB/logs").status, 404);
}

// ---------------------------------------------------------------------------- agents

TEST_F(Tasks, AgentsFailClearlyWithoutCredentials) {
  std::string id = create_v1("u", "nokey");
  ASSERT_FALSE(id.empty());
  for (const std::string agent : {"claude-code", "opencode"}) {
    Answer a = submit(id, R"({"agent":")" + agent + R"(","prompt":"make the button blue"})");
    ASSERT_EQ(a.status, 202) << a.body;
    std::string task_id = a.str("id");
    ASSERT_TRUE(wait_task(id, task_id, "failed")) << agent;
    Answer t = task(id, task_id);
    EXPECT_EQ(t.str("failure_reason"), "missing_credentials") << t.body;
    EXPECT_NE(t.str("error_message").find("ANTHROPIC_API_KEY"), std::string::npos) << t.body;
    SseStream all = events(id, task_id);
    std::vector<std::string> types;
    for (const auto& e : all.events) types.push_back(e.event);
    EXPECT_EQ(types, (std::vector<std::string>{"error", "done"})) << agent << ": never spawned";
  }
}

TEST_F(Tasks, AgentsRunTheirExactCommandLines) {
  std::string id = create_v1("u", "agents");
  ASSERT_FALSE(id.empty());
  // Stand-ins for the CLIs, found first on the task's PATH: they record their argv and print
  // what the real ones print, so nothing calls a model.
  const std::string record =
      "#!/bin/sh\nfor a in \"$0\" \"$@\"; do printf '%s\\n' \"$a\"; done > "
      "/home/sandbox/$(basename \"$0\").argv\n";
  std::string claude =
      record +
      "echo '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,"
      "\"result\":\"All done.\",\"total_cost_usd\":0.25,\"usage\":{\"input_tokens\":7,"
      "\"output_tokens\":3}}'\n";
  std::string opencode =
      record +
      "echo '{\"type\":\"text\",\"part\":{\"text\":\"Made it blue.\"}}'\n"
      "echo '{\"type\":\"tool_use\",\"part\":{\"callID\":\"c1\",\"tool\":\"write\","
      "\"state\":{\"status\":\"completed\",\"input\":{\"filePath\":"
      "\"/home/sandbox/app.css\"}}}}'\n";
  ASSERT_EQ(sd().call("PUT", base(id) + "/files?path=bin/claude", claude,
                      {"Content-Type: application/octet-stream"})
                .status,
            200);
  ASSERT_EQ(sd().call("PUT", base(id) + "/files?path=bin/opencode", opencode,
                      {"Content-Type: application/octet-stream"})
                .status,
            200);
  ASSERT_EQ(
      exec(id, {"chmod", "755", "/home/sandbox/bin/claude", "/home/sandbox/bin/opencode"}).status,
      200);
  const std::string env =
      R"("env":{"PATH":"/home/sandbox/bin:/usr/local/bin:/bin","ANTHROPIC_API_KEY":"sk-test"})";

  Answer c = submit(
      id, R"({"agent":"claude-code","prompt":"-make it blue","model":"claude-x",)" + env + "}");
  ASSERT_EQ(c.status, 202) << c.body;
  ASSERT_TRUE(wait_task(id, c.str("id"), "succeeded"));
  SseStream claude_events = events(id, c.str("id"));
  ASSERT_FALSE(claude_events.events.empty());
  ASSERT_EQ(claude_events.events.front().event, "started");
  std::vector<std::string> shown;
  for (const auto& a : claude_events.events.front().data.at("data").at("argv").as_array()) {
    shown.emplace_back(a.as_string());
  }
  EXPECT_EQ(shown,
            (std::vector<std::string>{"claude", "-p", "--output-format", "stream-json", "--verbose",
                                      "--dangerously-skip-permissions", "--model", "claude-x",
                                      "--max-turns", "3", "--", "<prompt>"}));
  Answer ran = exec(id, {"cat", "/home/sandbox/claude.argv"});
  EXPECT_EQ(
      ran.str("stdout"),
      "/home/sandbox/bin/claude\n-p\n--output-format\nstream-json\n--verbose\n"
      "--dangerously-skip-permissions\n--model\nclaude-x\n--max-turns\n3\n--\n-make it blue\n");
  Answer claude_task = task(id, c.str("id"));
  EXPECT_EQ(claude_task.str("agent_message_final"), "All done.") << claude_task.body;
  EXPECT_EQ(claude_task.json.at("tokens").at("input"), json::value(7)) << claude_task.body;

  // opencode: the model comes from tasks.agents.opencode.model.
  Answer o = submit(id, R"({"agent":"opencode","prompt":"make it blue",)" + env + "}");
  ASSERT_EQ(o.status, 202) << o.body;
  ASSERT_TRUE(wait_task(id, o.str("id"), "succeeded"));
  Answer oc = exec(id, {"cat", "/home/sandbox/opencode.argv"});
  EXPECT_EQ(oc.str("stdout"),
            "/home/sandbox/bin/opencode\nrun\n--format\njson\n--model\n"
            "anthropic/claude-sonnet-4-5\n--\nmake it blue\n");
  Answer opencode_task = task(id, o.str("id"));
  EXPECT_EQ(opencode_task.str("agent_message_final"), "Made it blue.") << opencode_task.body;
  EXPECT_EQ(json::serialize(opencode_task.json.at("files_changed")), R"(["app.css"])")
      << opencode_task.body;
}

}  // namespace
}  // namespace sandboxd::testing
