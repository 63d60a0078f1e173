// Renderings of API objects: ls / task ls / files ls / certs tables, get, create, url, and
// task events (SPEC §2.4, §6.4, §12).
#include "cli/render.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "base/json.h"

namespace sandboxd::cli {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

json::object obj(std::string_view text) {
  auto o = parse_json_object(text);
  EXPECT_TRUE(o) << text;
  return o ? *o : json::object{};
}

json::array arr(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v && v->is_array()) << text;
  return v && v->is_array() ? v->get_array() : json::array{};
}

const WallTime kNow = *parse_rfc3339("2026-11-22T15:10:00Z");

const char* kSandbox = R"({"id":"01JAAAAAAAAAAAAAAAAAAAAAAA","status":"running",
  "project":{"id":"p1","user_id":"u1"},"visibility":"public","idle_policy":"sleep","ports":[3000,5173],
  "preview":{"url":"http://s-01jaaaaaaaaaaaaaaaaaaaaaaa-3000.preview.localhost:8080/",
             "urls":{"3000":"http://s-01jaaaaaaaaaaaaaaaaaaaaaaa-3000.preview.localhost:8080/",
                     "5173":"http://s-01jaaaaaaaaaaaaaaaaaaaaaaa-5173.preview.localhost:8080/"},
             "status":"ready","last_http_status":200,"last_checked_at":"2026-11-22T15:09:58Z"},
  "runtime":"up","image":"sandboxd-test:latest",
  "resources":{"memory_bytes":2147483648,"pids":512,"nofile":4096,"cpus":1.5},
  "dev":{"command":"npm run dev","port":5173},"env_keys":["A","B"],
  "last_active_at":"2026-11-22T15:07:00Z","created_at":"2026-11-22T13:10:00Z","updated_at":"2026-11-22T15:00:00Z"})";

TEST(Render, SandboxTable) {
  json::array list;
  list.push_back(obj(kSandbox));
  list.push_back(obj(
      R"({"id":"01JBBBBBBBBBBBBBBBBBBBBBBB","status":"stopped","ports":[],"visibility":"private",
                        "idle_policy":"always_on","created_at":"2026-11-20T15:10:00Z"})"));
  list.push_back(json::value(42));  // not an object: skipped
  EXPECT_EQ(
      render_sandbox_table(list, kNow),
      "ID                          STATUS   PORTS      VISIBILITY  IDLE-POLICY  LAST-ACTIVE  AGE\n"
      "01JAAAAAAAAAAAAAAAAAAAAAAA  running  3000,5173  public      sleep        3m ago       2h\n"
      "01JBBBBBBBBBBBBBBBBBBBBBBB  stopped  -          private     always_on    never        2d\n");
}

TEST(Render, SandboxFields) {
  std::string text = render_sandbox_fields(obj(kSandbox));
  EXPECT_EQ(text,
            "id:          01JAAAAAAAAAAAAAAAAAAAAAAA\n"
            "status:      running\n"
            "user:        u1\n"
            "project:     p1\n"
            "visibility:  public\n"
            "idle-policy: sleep\n"
            "ports:       3000, 5173\n"
            "url 3000:    http://s-01jaaaaaaaaaaaaaaaaaaaaaaa-3000.preview.localhost:8080/\n"
            "url 5173:    http://s-01jaaaaaaaaaaaaaaaaaaaaaaa-5173.preview.localhost:8080/\n"
            "dev-server:  ready (last HTTP 200 at 2026-11-22T15:09:58Z)\n"
            "runtime:     up\n"
            "dev-command: npm run dev\n"
            "dev-port:    5173\n"
            "image:       sandboxd-test:latest\n"
            "memory:      2 GiB\n"
            "cpus:        1.5\n"
            "pids:        512\n"
            "nofile:      4096\n"
            "env:         A, B\n"
            "last-active: 2026-11-22T15:07:00Z\n"
            "created:     2026-11-22T13:10:00Z\n"
            "updated:     2026-11-22T15:00:00Z\n");
  std::string err = render_sandbox_fields(obj(
      R"({"id":"X","status":"error","error":{"reason":"create_failed","message":"no image"}})"));
  EXPECT_NE(err.find("error:       create_failed: no image\n"), std::string::npos) << err;
  EXPECT_NE(err.find("runtime:     -\n"), std::string::npos) << err;
  // Garbage fields render, they do not fail.
  EXPECT_NO_THROW(
      render_sandbox_fields(obj(R"({"id":5,"ports":"x","preview":[],"resources":{"cpus":"?"}})")));
}

TEST(Render, CreatedAndUrls) {
  json::object s = obj(kSandbox);
  EXPECT_EQ(render_created(s),
            "01JAAAAAAAAAAAAAAAAAAAAAAA\n"
            "http://s-01jaaaaaaaaaaaaaaaaaaaaaaa-3000.preview.localhost:8080/\n"
            "http://s-01jaaaaaaaaaaaaaaaaaaaaaaa-5173.preview.localhost:8080/\n");
  // The dev port by default, else the first; --port must be declared.
  EXPECT_EQ(pick_preview_url(s, std::nullopt).value(),
            "http://s-01jaaaaaaaaaaaaaaaaaaaaaaa-5173.preview.localhost:8080/");
  EXPECT_EQ(pick_preview_url(s, 3000).value(),
            "http://s-01jaaaaaaaaaaaaaaaaaaaaaaa-3000.preview.localhost:8080/");
  auto undeclared = pick_preview_url(s, 8080);
  ASSERT_FALSE(undeclared);
  EXPECT_EQ(undeclared.error().message,
            "port 8080 is not declared by sandbox 01JAAAAAAAAAAAAAAAAAAAAAAA (ports: 3000, 5173)");
  EXPECT_EQ(exit_code_of(undeclared.error()), 1);
  s.erase("dev");
  EXPECT_EQ(dev_or_first_port(s), 3000);
  EXPECT_EQ(pick_preview_url(s, std::nullopt).value(),
            "http://s-01jaaaaaaaaaaaaaaaaaaaaaaa-3000.preview.localhost:8080/");
  auto none = pick_preview_url(obj(R"({"id":"X","ports":[]})"), std::nullopt);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "sandbox X declares no ports");
  EXPECT_EQ(dev_or_first_port(obj(R"({"ports":[]})")), std::nullopt);
}

TEST(Render, OtherTables) {
  EXPECT_EQ(render_task_table(arr(R"([{"id":"T1","agent":"command","status":"succeeded",
      "created_at":"2026-11-22T15:00:00Z","duration_ms":1234,"exit_code":0},
      {"id":"T2","agent":"opencode","status":"running","created_at":"2026-11-22T15:09:00Z",
       "started_at":"2026-11-22T15:09:30Z"}])"),
                              kNow),
            "TASK  AGENT     STATUS     CREATED  DURATION  EXIT\n"
            "T1    command   succeeded  10m ago  1.2s      0\n"
            "T2    opencode  running    1m ago   30.0s     -\n");
  EXPECT_EQ(render_files_table(
                arr(R"([{"path":"src","type":"dir","size":4096,"mtime":"2026-11-22T15:00:00Z"},
      {"path":"src/a.txt","type":"file","size":1536,"mtime":"2026-11-22T14:10:00Z"},
      {"path":"link","type":"symlink","size":3,"mtime":1795359727,"target":"../x"}])"),
                kNow),
            "TYPE     SIZE     MTIME    PATH\n"
            "dir      -        10m ago  src\n"
            "file     1.5 KiB  1h ago   src/a.txt\n"
            "symlink  3 B      7m ago   link -> ../x\n");
  EXPECT_EQ(
      render_certs_table(arr(R"([{"name":"preview","domains":["*.p.example.com","p.example.com"],
      "status":"error","not_after":"2027-01-04T10:00:00Z","next_renewal_at":"2026-12-19T03:12:00Z",
      "last_error":{"code":"x","step":"propagation","message":"TXT not seen"}}])"),
                         kNow),
      "NAMES                          NOT-AFTER  NEXT-RENEWAL  STATUS  LAST-ERROR\n"
      "*.p.example.com,p.example.com  in 42d     in 26d        error   propagation: TXT not "
      "seen\n");
}

TEST(Render, TaskEvents) {
  setenv("TZ", "UTC", 1);
  tzset();
  auto ev = [](std::string_view text) { return render_task_event(obj(text)); };
  EXPECT_EQ(
      ev(R"({"id":1,"type":"started","ts":"2026-11-22T12:03:07.123Z","data":{"agent":"opencode","pid":42}})")
          .out,
      "[12:03:07] started  opencode  pid 42\n");
  EXPECT_EQ(ev(R"({"id":2,"type":"tool","ts":"2026-11-22T12:03:07Z",
                  "data":{"call_id":"c","name":"Write","status":"completed","summary":"src/App.tsx"}})")
                .out,
            "[12:03:07] tool  completed  Write src/App.tsx\n");
  EXPECT_EQ(ev(R"({"id":2,"type":"tool","ts":"2026-11-22T12:03:07Z",
                  "data":{"name":"Write","status":"started","summary":"Write src/App.tsx"}})")
                .out,
            "[12:03:07] tool  started  Write src/App.tsx\n");
  auto out = ev(R"({"id":3,"type":"stdout","ts":"x","data":{"text":"hello"}})");
  EXPECT_EQ(out.out, "hello\n");
  EXPECT_EQ(out.err, "");
  auto partial = ev(R"({"id":4,"type":"stderr","ts":"x","data":{"text":"par","partial":true}})");
  EXPECT_EQ(partial.err, "par");
  EXPECT_EQ(
      ev(R"({"id":5,"type":"file","ts":"2026-11-22T12:03:08Z","data":{"path":"a.txt","op":"write"}})")
          .out,
      "[12:03:08] file  write  a.txt\n");
  auto exit = ev(
      R"({"id":6,"type":"exit","ts":"2026-11-22T12:03:09Z","data":{"code":null,"signal":"SIGKILL"}})");
  EXPECT_EQ(exit.out, "[12:03:09] exit  signal SIGKILL\n");
  EXPECT_EQ(exit.signal, "SIGKILL");
  auto done = ev(R"({"id":7,"type":"done","ts":"2026-11-22T12:03:10Z",
                     "data":{"status":"failed","exit_code":2,"duration_ms":3100,"devserver":{"state":"ready"}}})");
  EXPECT_TRUE(done.done);
  EXPECT_EQ(done.status, "failed");
  EXPECT_EQ(done.exit_code, 2);
  EXPECT_EQ(done.out, "[12:03:10] done  failed  exit 2  3.1s\n");
  // Unknown types and missing pieces still print.
  EXPECT_EQ(ev(R"({"type":"progress","ts":"bad","data":{"pct":5}})").out,
            "[--:--:--] progress  {\"pct\":5}\n");
  EXPECT_EQ(ev(R"({})").out, "[--:--:--] event\n");
  unsetenv("TZ");
  tzset();
}

TEST(Render, BuildInfoVersion) {
  std::string metrics =
      "# HELP sandboxd_build_info Build identity.\n"
      "# TYPE sandboxd_build_info gauge\n"
      "sandboxd_build_info{version=\"0.1.0\",commit=\"abc\"} 1\n";
  EXPECT_EQ(build_info_version(metrics), "0.1.0");
  EXPECT_EQ(build_info_version("sandboxd_build_info{commit=\"x\",version=\"2.0\"} 1\n"), "2.0");
  EXPECT_EQ(build_info_version("sandboxd_build_info{api_version=\"9\"} 1\n"), std::nullopt);
  EXPECT_EQ(build_info_version("other 1\n"), std::nullopt);
  EXPECT_EQ(build_info_version("sandboxd_build_info{version=\"unterminated"), std::nullopt);
}

}  // namespace
}  // namespace sandboxd::cli
