// runtimed's own life (SPEC §6.1, §6.2, §6.6): startup, the socket and the settings file,
// graceful shutdown, a crash mid-task and what recovery makes of the task directories.
#include "harness.h"

#include "base/json.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

namespace sandboxd::runtimed::testing {
namespace {

namespace json = boost::json;

std::string type_of(const json::object& e) { return std::string(e.at("type").as_string()); }

std::vector<std::string> types(const std::vector<json::object>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(type_of(e));
  return out;
}

// Waits until the task has printed at least one stdout line; returns the pid of `started`.
pid_t wait_running(Runtimed& rt, const std::string& id) {
  EventStream s(rt.socket(), "/tasks/" + id + "/events", rt.auth_headers());
  pid_t pid = 0;
  while (auto line = s.next()) {
    auto e = parse_json_object(*line);
    if (type_of(*e) == "started") pid = static_cast<pid_t>(e->at("data").as_object().at("pid").as_int64());
    if (type_of(*e) == "stdout") return pid;
  }
  ADD_FAILURE() << "task " << id << " printed nothing";
  return pid;
}

TEST(RuntimedLifecycle, SocketIsPrivateAndSettingsAreConsumed) {
  Runtimed rt;
  ASSERT_TRUE(rt.start());
  struct stat st {};
  ASSERT_EQ(::lstat(rt.socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(exists(rt.run_dir() + "/runtimed.json"));  // read and unlinked
  auto status = rt.get("/status").json();
  EXPECT_EQ(status["sandbox_id"].as_string(), "01JSANDBQX00000000000000AA");
  auto self = status["runtimed"].as_object();
  EXPECT_EQ(self["version"].as_string(), "1.0.0");
  EXPECT_EQ(self["pid"].as_int64(), rt.pid());
  EXPECT_EQ(self["booted_at"].as_string().size(), std::string("2026-11-22T14:03:07.123Z").size());
  EXPECT_GT(status["workspace"].as_object()["free_bytes"].as_int64(), 0);
  EXPECT_TRUE(status["tasks"].as_object()["running"].is_null());
  EXPECT_TRUE(exists(rt.workspace() + "/.sandboxd/tasks"));
}

TEST(RuntimedLifecycle, MissingOrInvalidSettingsExit78) {
  Runtimed missing;
  EXPECT_EQ(missing.start_expecting_exit(std::nullopt, 10s), 78);
  EXPECT_NE(missing.log().find("runtimed configuration missing"), std::string::npos) << missing.log();

  Runtimed invalid;
  EXPECT_EQ(invalid.start_expecting_exit(std::string(R"({"version":1,"sandbox_id":"x"})"), 10s), 78);
  EXPECT_NE(invalid.log().find("runtimed configuration invalid"), std::string::npos) << invalid.log();
  EXPECT_FALSE(exists(invalid.run_dir() + "/runtimed.json"));
}

TEST(RuntimedLifecycle, CrashMidTaskIsRecordedAsInterruptedAtTheNextBoot) {
  Runtimed rt({.cancel_grace_ms = 300});
  ASSERT_TRUE(rt.start());
  std::string running = rt.submit_command({"bash", "-c", "echo one; exec sleep 300"});
  std::string queued = rt.submit_command({"echo", "after the restart"});
  pid_t sleeper = wait_running(rt, running);
  ASSERT_GT(sleeper, 0);

  rt.signal(SIGKILL);
  ASSERT_EQ(rt.wait_exit(), 128 + SIGKILL);
  EXPECT_FALSE(pid_gone(sleeper));  // the task outlived runtimed

  ASSERT_TRUE(rt.start());
  json::object t = rt.task(running);
  EXPECT_EQ(t["status"].as_string(), "failed");
  EXPECT_EQ(t["error"].as_object()["code"].as_string(), "interrupted");
  auto events = rt.events(running);
  EXPECT_EQ(types(events), (std::vector<std::string>{"started", "stdout", "error", "done"}));
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i]["id"].as_int64(), static_cast<std::int64_t>(i + 1));
  EXPECT_EQ(events[2]["data"].as_object()["code"].as_string(), "interrupted");
  EXPECT_EQ(events[3]["data"].as_object()["status"].as_string(), "failed");
  EXPECT_TRUE(exists(rt.task_dir(running) + "/result.json"));
  EXPECT_EQ(t["last_event_id"].as_int64(), 4);
  // Leftovers of the interrupted task are killed.
  EXPECT_TRUE(wait_until([&] { return pid_gone(sleeper); }, 10s));

  // The task that was still queued is queued again and runs.
  json::object q = rt.wait_final(queued);
  EXPECT_EQ(q["status"].as_string(), "succeeded");
  auto qe = rt.events(queued);
  ASSERT_GE(qe.size(), 2u);
  EXPECT_EQ(qe[1]["data"].as_object()["text"].as_string(), "after the restart");
}

TEST(RuntimedLifecycle, GracefulShutdownFinalizesTheRunningTaskAndKeepsTheQueue) {
  Runtimed rt;
  ASSERT_TRUE(rt.start());
  std::string running = rt.submit_command({"bash", "-c", "echo one; sleep 300; echo never"});
  std::string queued = rt.submit_command({"echo", "later"});
  pid_t leader = wait_running(rt, running);

  auto begin = std::chrono::steady_clock::now();
  rt.signal(SIGTERM);
  ASSERT_EQ(rt.wait_exit(12s), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 3s);  // every process honoured SIGTERM
  EXPECT_FALSE(exists(rt.socket()));
  EXPECT_TRUE(pid_gone(leader));

  std::string file = read_file(rt.task_dir(running) + "/events.ndjson");
  std::vector<std::string> seen;
  std::size_t pos = 0;
  while (pos < file.size()) {
    std::size_t nl = file.find('\n', pos);
    seen.push_back(type_of(*parse_json_object(file.substr(pos, nl - pos))));
    pos = nl + 1;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"started", "stdout", "exit", "error", "done"}));
  EXPECT_NE(file.find(R"("code":"interrupted")"), std::string::npos);
  EXPECT_TRUE(exists(rt.task_dir(running) + "/result.json"));
  EXPECT_TRUE(exists(rt.task_dir(queued) + "/task.json"));
  EXPECT_FALSE(exists(rt.task_dir(queued) + "/events.ndjson"));

  ASSERT_TRUE(rt.start());
  EXPECT_EQ(rt.task(running)["status"].as_string(), "failed");
  EXPECT_EQ(rt.wait_final(queued)["status"].as_string(), "succeeded");
}

TEST(RuntimedLifecycle, RecoveryReadsTrimsAndCleansTaskDirectories) {
  Runtimed rt;
  std::string tasks = rt.workspace() + "/.sandboxd/tasks";
  ::mkdir((rt.workspace() + "/.sandboxd").c_str(), 0700);
  ::mkdir(tasks.c_str(), 0700);
  auto make_task = [&](const std::string& id, const std::string& created) {
    std::string dir = tasks + "/" + id;
    ::mkdir(dir.c_str(), 0700);
    write_file(dir + "/task.json",
               R"({"id":")" + id + R"(","agent":"command","argv":["echo","requeued"],"env":{},"timeout_s":60,"created_at":")" +
                   created + "\"}",
               0600);
    return dir;
  };
  auto event = [](int id, const std::string& type, const std::string& data) {
    return R"({"id":)" + std::to_string(id) + R"(,"type":")" + type +
           R"(","ts":"2026-01-01T00:00:0)" + std::to_string(id) + R"(.000Z","data":)" + data + "}\n";
  };
  std::string done_data =
      R"({"status":"succeeded","exit_code":0,"duration_ms":5,"output_dropped_bytes":0,"devserver":{"state":"ready"}})";

  // Finished long ago: deleted at boot.
  std::string old_id = new_task_id();
  std::string old_dir = make_task(old_id, "2026-01-01T00:00:00.000Z");
  write_file(old_dir + "/events.ndjson", event(1, "done", done_data));
  write_file(old_dir + "/result.json", done_data);
  struct timeval past[2] = {{::time(nullptr) - 8 * 86400, 0}, {::time(nullptr) - 8 * 86400, 0}};
  ASSERT_EQ(::utimes((old_dir + "/result.json").c_str(), past), 0);

  // Finished recently: kept and listed.
  std::string kept_id = new_task_id();
  std::string kept_dir = make_task(kept_id, "2026-01-01T00:00:01.000Z");
  write_file(kept_dir + "/events.ndjson",
             event(1, "started", R"({"agent":"command","argv":["echo"],"cwd":".","pid":1})") +
                 event(2, "exit", R"({"code":0,"signal":null})") + event(3, "done", done_data));
  write_file(kept_dir + "/result.json", done_data);

  // Interrupted with a torn last line: cut, then error and done appended.
  std::string torn_id = new_task_id();
  std::string torn_dir = make_task(torn_id, "2026-01-01T00:00:02.000Z");
  write_file(torn_dir + "/events.ndjson",
             event(1, "started", R"({"agent":"command","argv":["x"],"cwd":".","pid":1})") +
                 event(2, "stdout", R"({"text":"hi"})") + R"({"id":3,"type":"std)");

  // Only task.json: queued again and run.
  std::string queued_id = new_task_id();
  make_task(queued_id, "2026-01-01T00:00:03.000Z");

  ASSERT_TRUE(rt.start());
  EXPECT_FALSE(exists(old_dir));
  EXPECT_EQ(rt.get("/tasks/" + old_id).status, 404);

  json::object kept = rt.task(kept_id);
  EXPECT_EQ(kept["status"].as_string(), "succeeded");
  EXPECT_EQ(kept["last_event_id"].as_int64(), 3);
  EXPECT_EQ(kept["started_at"].as_string(), "2026-01-01T00:00:01.000Z");
  EXPECT_EQ(kept["finished_at"].as_string(), "2026-01-01T00:00:03.000Z");
  EXPECT_EQ(rt.events(kept_id).size(), 3u);

  json::object torn = rt.task(torn_id);
  EXPECT_EQ(torn["status"].as_string(), "failed");
  EXPECT_EQ(torn["error"].as_object()["code"].as_string(), "interrupted");
  auto torn_events = rt.events(torn_id);
  EXPECT_EQ(types(torn_events), (std::vector<std::string>{"started", "stdout", "error", "done"}));
  EXPECT_EQ(torn_events.back()["id"].as_int64(), 4);
  EXPECT_TRUE(exists(torn_dir + "/result.json"));

  json::object q = rt.wait_final(queued_id);
  EXPECT_EQ(q["status"].as_string(), "succeeded");
  auto list = rt.get("/tasks").json()["tasks"].as_array();
  EXPECT_EQ(list.size(), 3u);
}

#ifdef RUNTIMED_STATIC_BIN
// The statically linked binary the sandbox images carry serves like the dynamic one.
TEST(RuntimedLifecycle, StaticBinaryRunsATask) {
  Runtimed rt({.binary = RUNTIMED_STATIC_BIN});
  ASSERT_TRUE(rt.start());
  std::string id = rt.submit_command({"echo", "static"});
  EXPECT_EQ(rt.wait_final(id)["status"].as_string(), "succeeded");
  auto events = rt.events(id);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1]["data"].as_object()["text"].as_string(), "static");
  EXPECT_EQ(rt.get("/devserver").status, 200);
  rt.signal(SIGTERM);
  EXPECT_EQ(rt.wait_exit(), 0);
}
#endif

}  // namespace
}  // namespace sandboxd::runtimed::testing
