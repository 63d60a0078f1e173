// Dev-server supervision through the real runtimed (SPEC §6.7), with Python's http.server as
// the dev server.
#include "harness.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

namespace sandboxd::runtimed::testing {
namespace {

namespace json = boost::json;

json::object devserver(Runtimed& rt) { return rt.get("/devserver").json(); }

std::int64_t pid_of(const json::object& d) { return d.at("pid").is_null() ? 0 : d.at("pid").as_int64(); }

void make_project(Runtimed& rt) {
  std::string dir = rt.workspace() + "/workspace";
  ::mkdir(dir.c_str(), 0755);
  ::mkdir((dir + "/app").c_str(), 0755);
}

TEST(RuntimedDevServer, RestartedAfterACrashOnRequestAndOnSighup) {
  Runtimed rt({.dev_command = "exec python3 -m http.server \"$PORT\" --bind \"$HOST\""});
  make_project(rt);
  ASSERT_TRUE(rt.start());
  json::object d;
  ASSERT_TRUE(wait_until([&] { d = devserver(rt); return d["state"].as_string() == "ready"; }, 20s))
      << json::serialize(d);
  EXPECT_EQ(d["command_source"].as_string(), "settings");
  EXPECT_EQ(d["port"].as_int64(), rt.dev_port());
  EXPECT_TRUE(d["listening"].as_object()["container"].as_bool());
  EXPECT_TRUE(d["listening"].as_object()["loopback"].as_bool());
  EXPECT_EQ(d["restarts"].as_int64(), 0);
  EXPECT_TRUE(d["hint"].is_null());
  auto first = static_cast<pid_t>(pid_of(d));
  ASSERT_GT(first, 0);

  // A crash: restarted after the first backoff step.
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] {
    d = devserver(rt);
    return d["state"].as_string() == "ready" && pid_of(d) != first && pid_of(d) != 0;
  }, 20s)) << json::serialize(d);
  EXPECT_EQ(d["restarts"].as_int64(), 1);
  EXPECT_EQ(d["last_exit"].as_object()["signal"].as_string(), "SIGKILL");
  EXPECT_TRUE(pid_gone(first));
  auto second = static_cast<pid_t>(pid_of(d));

  // The restart endpoint: stopped with SIGTERM, started at once.
  auto r = rt.post("/devserver/restart");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.json()["port"].as_int64(), rt.dev_port());
  ASSERT_TRUE(wait_until([&] {
    d = devserver(rt);
    return d["state"].as_string() == "ready" && pid_of(d) != second && pid_of(d) != 0;
  }, 20s)) << json::serialize(d);
  EXPECT_EQ(d["restarts"].as_int64(), 2);
  EXPECT_EQ(d["last_exit"].as_object()["signal"].as_string(), "SIGTERM");
  auto third = static_cast<pid_t>(pid_of(d));

  // SIGHUP does the same.
  rt.signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] {
    d = devserver(rt);
    return d["state"].as_string() == "ready" && pid_of(d) != third && pid_of(d) != 0;
  }, 20s)) << json::serialize(d);
  EXPECT_EQ(d["restarts"].as_int64(), 3);

  auto status = rt.get("/status").json();
  EXPECT_EQ(status["devserver"].as_object()["state"].as_string(), "ready");

  auto log = rt.get("/devserver/log?tail=10000");
  EXPECT_EQ(log.status, 200);
  EXPECT_EQ(log.headers["content-type"], "text/plain; charset=utf-8");
  std::size_t starts = 0;
  for (std::size_t at = log.body.find("--- start "); at != std::string::npos;
       at = log.body.find("--- start ", at + 1)) {
    ++starts;
  }
  EXPECT_EQ(starts, 4u) << log.body;
  EXPECT_NE(log.body.find("cmd=exec python3 -m http.server"), std::string::npos);
  auto two = rt.get("/devserver/log?tail=2");
  EXPECT_EQ(std::count(two.body.begin(), two.body.end(), '\n'), 2);
}

TEST(RuntimedDevServer, LoopbackOnlyIsReportedWithAHint) {
  Runtimed rt({.dev_command = "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1"});
  make_project(rt);
  ASSERT_TRUE(rt.start());
  json::object d;
  ASSERT_TRUE(wait_until([&] { d = devserver(rt); return d["state"].as_string() == "loopback_only"; }, 20s))
      << json::serialize(d);
  EXPECT_FALSE(d["listening"].as_object()["container"].as_bool());
  EXPECT_TRUE(d["listening"].as_object()["loopback"].as_bool());
  EXPECT_NE(std::string(d["hint"].as_string()).find("0.0.0.0"), std::string::npos);

  // An override until the next boot: bind every address.
  auto r = rt.post("/devserver/restart", R"({"command":"exec python3 -m http.server \"$PORT\" --bind 0.0.0.0"})");
  EXPECT_EQ(r.status, 202);
  ASSERT_TRUE(wait_until([&] { d = devserver(rt); return d["state"].as_string() == "ready"; }, 20s))
      << json::serialize(d);
  EXPECT_EQ(d["command_source"].as_string(), "override");
}

TEST(RuntimedDevServer, WaitsForADevScriptThenBacksOff) {
  Runtimed rt;  // no command: detection from package.json
  ASSERT_TRUE(rt.start());
  json::object d = devserver(rt);
  EXPECT_EQ(d["state"].as_string(), "waiting");
  EXPECT_TRUE(d["command"].is_null());
  EXPECT_NE(std::string(d["hint"].as_string()).find("workspace/app"), std::string::npos);

  make_project(rt);
  write_file(rt.workspace() + "/workspace/app/package.json", R"({"scripts":{"dev":"vite"}})");
  write_file(rt.workspace() + "/workspace/app/pnpm-lock.yaml", "lockfileVersion: '9.0'\n");
  // pnpm is not installed here: the detected command starts, fails, and is retried with
  // backoff, never given up.
  ASSERT_TRUE(wait_until([&] {
    d = devserver(rt);
    return d["state"].as_string() == "backoff" && !d["last_exit"].is_null();
  }, 20s)) << json::serialize(d);
  EXPECT_EQ(d["command"].as_string(), "pnpm run dev");
  EXPECT_EQ(d["command_source"].as_string(), "detected");
  EXPECT_FALSE(d["next_restart_at"].is_null());
  ASSERT_TRUE(wait_until([&] { return devserver(rt)["restarts"].as_int64() >= 2; }, 20s));
}

}  // namespace
}  // namespace sandboxd::runtimed::testing
