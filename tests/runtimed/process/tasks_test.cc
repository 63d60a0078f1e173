// Tasks through the real runtimed (SPEC §6.3–§6.6): events, persistence, resume, cancel,
// the queue, timeouts and the output cap.
#include "harness.h"

#include "base/json.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sandboxd::runtimed::testing {
namespace {

namespace json = boost::json;

std::string type_of(const json::object& e) { return std::string(e.at("type").as_string()); }
std::string text_of(const json::object& e) {
  return std::string(e.at("data").as_object().at("text").as_string());
}

// A fifo in the workspace; a task reading it waits until the test writes a line.
std::string make_fifo(Runtimed& rt, const std::string& name) {
  std::string path = rt.workspace() + "/" + name;
  EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0);
  return path;
}

void release(const std::string& fifo) {
  int fd = -1;
  ASSERT_TRUE(wait_until(
      [&] {
        fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        return fd >= 0;
      },
      10s))
      << "nobody reads " << fifo;
  ASSERT_EQ(::write(fd, "go\n", 3), 3);
  ::close(fd);
}

void expect_contiguous(const std::vector<json::object>& events, std::int64_t first = 1) {
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].at("id").as_int64(), first + static_cast<std::int64_t>(i));
  }
}

TEST(RuntimedTasks, CommandEventsComeInOrderAndArePersisted) {
  Runtimed rt;
  ASSERT_TRUE(rt.start());
  std::string id = rt.submit_command(
      {"bash", "-c", "echo one; echo two; echo oops >&2; printf 'tail without newline'; exit 3"},
      R"(,"env":{"GREETING":"hello"})");
  json::object t = rt.wait_final(id);
  EXPECT_EQ(t["status"].as_string(), "failed");
  EXPECT_EQ(t["exit_code"].as_int64(), 3);
  EXPECT_TRUE(t["error"].is_null());

  auto lines = rt.event_lines(id);
  std::vector<json::object> events;
  for (const auto& l : lines) events.push_back(*parse_json_object(l));
  ASSERT_GE(events.size(), 7u);
  expect_contiguous(events);
  EXPECT_EQ(type_of(events.front()), "started");
  const json::object& started = events.front().at("data").as_object();
  EXPECT_EQ(started.at("agent").as_string(), "command");
  EXPECT_EQ(started.at("cwd").as_string(), "workspace/app");
  EXPECT_GT(started.at("pid").as_int64(), 0);
  std::vector<std::string> out, err;
  for (const auto& e : events) {
    if (type_of(e) == "stdout") out.push_back(text_of(e));
    if (type_of(e) == "stderr") err.push_back(text_of(e));
    EXPECT_NE(e.at("ts").as_string().size(), 0u);
  }
  EXPECT_EQ(out, (std::vector<std::string>{"one", "two", "tail without newline"}));
  EXPECT_EQ(err, (std::vector<std::string>{"oops"}));
  EXPECT_EQ(type_of(events[events.size() - 2]), "exit");
  EXPECT_EQ(events[events.size() - 2].at("data").as_object().at("code").as_int64(), 3);
  const json::object& done = events.back().at("data").as_object();
  EXPECT_EQ(type_of(events.back()), "done");
  EXPECT_EQ(done.at("status").as_string(), "failed");
  EXPECT_EQ(done.at("exit_code").as_int64(), 3);
  EXPECT_EQ(done.at("output_dropped_bytes").as_int64(), 0);
  EXPECT_TRUE(done.at("devserver").as_object().contains("state"));
  EXPECT_EQ(t["last_event_id"].as_int64(), static_cast<std::int64_t>(events.size()));

  // On disk: the same lines, the done data, the request and the raw output. The journal
  // writes result.json last, after the events, and a moment after the task reads final.
  std::string dir = rt.task_dir(id);
  ASSERT_TRUE(wait_until([&] { return parse_json_object(read_file(dir + "/result.json")).has_value(); },
                         std::chrono::seconds(5)));
  std::string file;
  for (const auto& l : lines) file += l + "\n";
  EXPECT_EQ(read_file(dir + "/events.ndjson"), file);
  auto result = parse_json_object(read_file(dir + "/result.json"));
  ASSERT_TRUE(result);
  EXPECT_EQ(json::serialize(*result), json::serialize(done));
  auto stored = parse_json_object(read_file(dir + "/task.json"));
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->at("env").as_object().at("GREETING").as_string(), "hello");
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/task.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string log = read_file(dir + "/agent.log");
  EXPECT_NE(log.find("one\ntwo\n"), std::string::npos);
  EXPECT_NE(log.find("oops\n"), std::string::npos);
}

TEST(RuntimedTasks, TaskEnvironmentAndWorkingDirectory) {
  Runtimed rt({.env = {"FROM_RUNTIMED=yes"}});
  ASSERT_TRUE(rt.start());
  std::string id = rt.submit_command(
      {"bash", "-c", "echo $FROM_RUNTIMED $FROM_TASK $SANDBOXD_TASK_ID $HOME $TERM; pwd; read x; echo read=$?"},
      R"(,"env":{"FROM_TASK":"t"})");
  rt.wait_final(id);
  auto events = rt.events(id);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(text_of(events[1]), "yes t " + id + " " + rt.workspace() + " dumb");
  EXPECT_EQ(text_of(events[2]), rt.workspace() + "/workspace/app");  // created on demand
  EXPECT_EQ(text_of(events[3]), "read=1");                           // stdin is /dev/null

  ::mkdir((rt.workspace() + "/other").c_str(), 0755);
  std::string in_other = rt.submit_command({"pwd"}, R"(,"cwd":"other")");
  rt.wait_final(in_other);
  EXPECT_EQ(text_of(rt.events(in_other)[1]), rt.workspace() + "/other");
}

TEST(RuntimedTasks, ResumeFromAnOffsetGivesExactlyTheMissingEvents) {
  Runtimed rt;
  ASSERT_TRUE(rt.start());
  std::string id = rt.submit_command({"bash", "-c", "for i in $(seq 1 20); do echo line$i; done"});
  rt.wait_final(id);
  auto all = rt.events(id);
  ASSERT_EQ(all.size(), 23u);  // started, 20 lines, exit, done

  auto from7 = rt.events(id, "?since=7");
  ASSERT_EQ(from7.size(), all.size() - 7);
  expect_contiguous(from7, 8);
  for (std::size_t i = 0; i < from7.size(); ++i) {
    EXPECT_EQ(json::serialize(from7[i]), json::serialize(all[i + 7]));
  }
  auto by_header = rt.event_lines(id, "", {"Last-Event-ID: 12"});
  ASSERT_EQ(by_header.size(), all.size() - 12);
  EXPECT_EQ(parse_json_object(by_header.front())->at("id").as_int64(), 13);
  EXPECT_TRUE(rt.event_lines(id, "?since=23").empty());
  EXPECT_TRUE(rt.event_lines(id, "?since=1000").empty());
}

TEST(RuntimedTasks, LiveStreamFromAnOffsetTailsUntilDone) {
  Runtimed rt;
  ASSERT_TRUE(rt.start());
  std::string fifo = make_fifo(rt, "gate");
  std::string id = rt.submit_command({"bash", "-c", "echo a; echo b; read line < \"$0\"; echo c; echo d", fifo});
  ASSERT_TRUE(wait_until([&] { return rt.task(id)["last_event_id"].as_int64() >= 3; }, 10s));

  EventStream live(rt.socket(), "/tasks/" + id + "/events?since=2", rt.auth_headers());
  ASSERT_EQ(live.status(), 200);
  auto third = live.next();
  ASSERT_TRUE(third);
  EXPECT_EQ(parse_json_object(*third)->at("id").as_int64(), 3);  // "b"
  EXPECT_FALSE(live.next(200ms));  // nothing more until the task goes on
  release(fifo);
  auto rest = live.rest();
  EXPECT_TRUE(live.ended());
  std::vector<std::string> types;
  for (const auto& l : rest) types.push_back(type_of(*parse_json_object(l)));
  EXPECT_EQ(types, (std::vector<std::string>{"stdout", "stdout", "exit", "done"}));
  EXPECT_EQ(parse_json_object(rest.front())->at("id").as_int64(), 4);
}

TEST(RuntimedTasks, CancelEndsTheTaskAndEveryChild) {
  Runtimed rt({.cancel_grace_ms = 400});
  ASSERT_TRUE(rt.start());
  // A child in the group, one that left it with setsid, and a leader that ignores SIGTERM.
  std::string id = rt.submit_command(
      {"bash", "-c", "trap '' TERM; sleep 300 & echo $!; setsid sleep 301 & echo $!; echo $$; "
                     "while :; do sleep 0.2; done"});
  std::vector<pid_t> pids;
  EventStream s(rt.socket(), "/tasks/" + id + "/events", rt.auth_headers());
  while (pids.size() < 3) {
    auto line = s.next();
    ASSERT_TRUE(line) << "no pids seen";
    auto e = parse_json_object(*line);
    if (type_of(*e) == "stdout") pids.push_back(std::stoi(text_of(*e)));
  }
  for (pid_t p : pids) EXPECT_FALSE(pid_gone(p)) << p;

  auto cancel = rt.post("/tasks/" + id + "/cancel");
  EXPECT_EQ(cancel.status, 202);
  EXPECT_TRUE(cancel.json()["cancel_requested"].as_bool());
  json::object t = rt.wait_final(id, 15s);
  EXPECT_EQ(t["status"].as_string(), "cancelled");
  for (pid_t p : pids) EXPECT_TRUE(wait_until([&] { return pid_gone(p); }, 5s)) << "pid " << p << " survived";

  auto rest = s.rest();
  ASSERT_GE(rest.size(), 2u);
  auto exit = parse_json_object(rest[rest.size() - 2]);
  EXPECT_EQ(type_of(*exit), "exit");
  EXPECT_EQ(exit->at("data").as_object().at("signal").as_string(), "SIGKILL");
  auto done = parse_json_object(rest.back());
  EXPECT_EQ(done->at("data").as_object().at("status").as_string(), "cancelled");

  // Idempotent: a finished task answers 200, unchanged.
  auto again = rt.post("/tasks/" + id + "/cancel");
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json()["status"].as_string(), "cancelled");
}

TEST(RuntimedTasks, OneTaskAtATimeAndABoundedQueue) {
  Runtimed rt({.max_queued = 1});
  ASSERT_TRUE(rt.start());
  std::string fifo = make_fifo(rt, "gate");
  std::string first = rt.submit_command({"bash", "-c", "read line < \"$0\"", fifo});
  ASSERT_TRUE(wait_until([&] { return rt.task(first)["status"].as_string() == "running"; }, 10s));

  std::string second = rt.submit_command({"echo", "second"});
  json::object queued = rt.task(second);
  EXPECT_EQ(queued["status"].as_string(), "queued");
  EXPECT_EQ(queued["queue_position"].as_int64(), 1);

  // Beyond max_queued: 429 queue_full naming the running task.
  std::string third = new_task_id();
  auto full = rt.post("/tasks", R"({"id":")" + third + R"(","agent":"command","argv":["true"]})");
  EXPECT_EQ(full.status, 429);
  EXPECT_EQ(full.json()["error"].as_object()["code"].as_string(), "queue_full");
  EXPECT_NE(full.body.find(first), std::string::npos);
  EXPECT_EQ(rt.get("/tasks/" + third).status, 404);

  // A repeated id is 200 with the existing task, whatever the body says.
  auto repeat = rt.post("/tasks", R"({"id":")" + second + R"(","agent":"nonsense"})");
  EXPECT_EQ(repeat.status, 200);
  EXPECT_EQ(repeat.json()["id"].as_string(), second);

  auto status = rt.get("/status").json();
  EXPECT_EQ(status["tasks"].as_object()["running"].as_string(), first);
  EXPECT_EQ(status["tasks"].as_object()["queued"].as_int64(), 1);

  // Cancelling the queued one leaves only a done event.
  EXPECT_EQ(rt.post("/tasks/" + second + "/cancel").status, 202);
  EXPECT_EQ(rt.task(second)["status"].as_string(), "cancelled");
  auto cancelled_events = rt.events(second);
  ASSERT_EQ(cancelled_events.size(), 1u);
  EXPECT_EQ(type_of(cancelled_events[0]), "done");
  EXPECT_EQ(cancelled_events[0]["data"].as_object()["status"].as_string(), "cancelled");

  // The next one waits for the running task, then runs.
  std::string fourth = rt.submit_command({"echo", "fourth"});
  EXPECT_EQ(rt.task(fourth)["status"].as_string(), "queued");
  release(fifo);
  json::object a = rt.wait_final(first);
  json::object d = rt.wait_final(fourth);
  EXPECT_EQ(d["status"].as_string(), "succeeded");
  EXPECT_GE(std::string(d["started_at"].as_string()), std::string(a["finished_at"].as_string()));

  auto list = rt.get("/tasks?limit=2").json()["tasks"].as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].as_object().at("id").as_string(), fourth);  // newest first
  EXPECT_EQ(list[1].as_object().at("id").as_string(), second);
}

TEST(RuntimedTasks, TimeoutKillsTheTask) {
  Runtimed rt({.cancel_grace_ms = 300});
  ASSERT_TRUE(rt.start());
  std::string id = rt.submit_command({"sleep", "60"}, R"(,"timeout_s":1)");
  json::object t = rt.wait_final(id, 15s);
  EXPECT_EQ(t["status"].as_string(), "failed");
  EXPECT_EQ(t["error"].as_object()["code"].as_string(), "timeout");
  auto events = rt.events(id);
  std::vector<std::string> types;
  for (const auto& e : events) types.push_back(type_of(e));
  EXPECT_EQ(types, (std::vector<std::string>{"started", "error", "exit", "done"}));
  auto pid = events[0]["data"].as_object()["pid"].as_int64();
  EXPECT_TRUE(pid_gone(static_cast<pid_t>(pid)));
}

TEST(RuntimedTasks, OutputPastTheCapIsDroppedAndCounted) {
  Runtimed rt({.max_output_bytes = 1024});
  ASSERT_TRUE(rt.start());
  // 100 lines of 99 bytes + newline; the process keeps running past the cap and exits 0.
  std::string id = rt.submit_command(
      {"bash", "-c", "for i in $(seq 1 100); do printf '%099d\\n' $i; done; echo end >&2"});
  json::object t = rt.wait_final(id);
  EXPECT_EQ(t["status"].as_string(), "succeeded");
  auto events = rt.events(id);
  int truncated = 0, outputs = 0, errors = 0;
  for (const auto& e : events) {
    if (type_of(e) == "error") {
      EXPECT_EQ(e.at("data").as_object().at("code").as_string(), "output_truncated");
      ++truncated;
    }
    if (type_of(e) == "stdout") ++outputs;
    if (type_of(e) == "stderr") ++errors;
  }
  EXPECT_EQ(truncated, 1);
  EXPECT_EQ(outputs, 10);  // 10 × 100 bytes fit in 1024
  // The stderr line ("end" and its newline) made it only if it was read before the cap.
  auto dropped = events.back()["data"].as_object()["output_dropped_bytes"].as_int64();
  EXPECT_EQ(dropped, 90 * 100 + (errors == 0 ? 4 : 0));
  EXPECT_LE(read_file(rt.task_dir(id) + "/agent.log").size(), 1024u);
}

TEST(RuntimedTasks, LongLinesAreSplitIntoPieces) {
  Runtimed rt;
  ASSERT_TRUE(rt.start());
  std::string id = rt.submit_command({"bash", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'bad \\xff byte\\n'"});
  rt.wait_final(id);
  auto events = rt.events(id);
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(text_of(events[1]).size(), 16384u);
  EXPECT_TRUE(events[1]["data"].as_object()["partial"].as_bool());
  EXPECT_EQ(text_of(events[2]).size(), 16384u);
  EXPECT_TRUE(events[2]["data"].as_object()["partial"].as_bool());
  EXPECT_EQ(text_of(events[3]).size(), 40000u - 2 * 16384u);
  EXPECT_FALSE(events[3]["data"].as_object().contains("partial"));
  EXPECT_EQ(text_of(events[4]), "bad \xEF\xBF\xBD byte");
}

}  // namespace
}  // namespace sandboxd::runtimed::testing
