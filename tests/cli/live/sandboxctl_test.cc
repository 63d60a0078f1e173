// sandboxctl as a user runs it (SPEC §12): the real binary as a subprocess against a live
// sandboxd (the integration fixture) and the real Docker Engine. Each run gets stdin from a
// pipe (never a terminal), SANDBOXD_URL and SANDBOXD_TOKEN removed from its environment
// unless a test sets them, and a deadline; nothing sleeps to synchronise.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <regex>
#include <sstream>

#include "ctl_runner.h"
#include "sandboxd_fixture.h"

namespace sandboxd::testing {
namespace {

bool is_ulid(const std::string& s) {
  return std::regex_match(s, std::regex("[0-7][0-9A-HJKMNP-TV-Z]{25}"));
}

// A loopback port where nothing listens (bound, then closed).
std::uint16_t closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class Sandboxctl : public SandboxdTest {
 protected:
  std::string server() { return "http://127.0.0.1:" + std::to_string(sd().port()); }
  // sandboxctl --server <this sandboxd> args…
  Ctl run(std::vector<std::string> args, const std::vector<std::string>& env = {},
          const std::string& input = "") {
    args.insert(args.begin(), {"--server", server()});
    return ctl(args, env, input);
  }
  std::string status_of(const std::string& id) {
    return sd().get("/v1/sandboxes/" + id).str("status");
  }
};

TEST_F(Sandboxctl, CreateListGetExecUrlStopStartRmPurge) {
  // create --wait: the id, then one preview URL per port; running, its dev port answering.
  Ctl made = run({"create", "--port", "3000", "--env", "GREETING=hello", "--user-id", "u1",
                  "--project-id", "p1", "--wait"});
  ASSERT_EQ(made.status, 0) << made;
  auto out = lines(made.out);
  ASSERT_EQ(out.size(), 2u) << made;
  std::string id = out[0];
  ASSERT_TRUE(is_ulid(id)) << made;
  std::string url =
      "http://" + preview_host(id, 3000) + ":" + std::to_string(sd().edge_port()) + "/";
  EXPECT_EQ(out[1], url);
  EXPECT_EQ(status_of(id), "running");
  EXPECT_EQ(made.err, "");
  // The same user and project give the same sandbox back.
  Ctl again = run({"create", "--user-id", "u1", "--project-id", "p1"});
  ASSERT_EQ(again.status, 0) << again;
  EXPECT_EQ(lines(again.out).at(0), id);

  // ls: an aligned table, -q ids only, --json the API's object, filters.
  Ctl ls = run({"ls"});
  ASSERT_EQ(ls.status, 0) << ls;
  auto rows = lines(ls.out);
  ASSERT_EQ(rows.size(), 2u) << ls;
  EXPECT_TRUE(std::regex_match(
      rows[0], std::regex("ID +STATUS +PORTS +VISIBILITY +IDLE-POLICY +LAST-ACTIVE +AGE")))
      << rows[0];
  EXPECT_TRUE(std::regex_match(
      rows[1],
      std::regex(id + " +running +3000 +public +sleep +(never|just now|.* ago) +[0-9]+[sm]")))
      << rows[1];
  EXPECT_EQ(rows[0].find("STATUS"), rows[1].find("running"));
  EXPECT_EQ(run({"ls", "-q"}).out, id + "\n");
  EXPECT_EQ(run({"ls", "-q", "--status", "stopped"}).out, "");
  EXPECT_EQ(run({"ls", "-q", "--user", "u1", "--project", "p1"}).out, id + "\n");
  Ctl ls_json = run({"--json", "ls"});
  ASSERT_EQ(ls_json.status, 0) << ls_json;
  json::value listed = json::parse(ls_json.out);
  ASSERT_EQ(listed.at("sandboxes").as_array().size(), 1u);
  EXPECT_EQ(listed.at("sandboxes").at(0).at("id").as_string(), id);
  EXPECT_EQ(listed.at("sandboxes").at(0).at("project").at("user_id").as_string(), "u1");

  // get takes the id in any case; key: value lines, or the API's object with --json.
  std::string lower = id;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  Ctl got = run({"get", lower});
  ASSERT_EQ(got.status, 0) << got;
  EXPECT_TRUE(std::regex_search(got.out, std::regex("(^|\n)id: +" + id + "\n"))) << got;
  EXPECT_TRUE(std::regex_search(got.out, std::regex("\nstatus: +running\n"))) << got;
  EXPECT_TRUE(std::regex_search(got.out, std::regex("\nenv: +GREETING\n"))) << got;
  EXPECT_TRUE(
      std::regex_search(got.out, std::regex("\ncreated: +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\n")))
      << got;
  Ctl got_json = run({"get", id, "--json"});
  ASSERT_EQ(got_json.status, 0) << got_json;
  EXPECT_EQ(json::parse(got_json.out).at("id").as_string(), id);

  // exec: stdout and stderr where they belong, the exit code passed through.
  Ctl ex = run({"exec", id, "--", "sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(ex.status, 3) << ex;
  EXPECT_EQ(ex.out, "out\n");
  EXPECT_EQ(ex.err, "err\n");
  Ctl env = run(
      {"exec", id, "--env", "A=1=2", "--workdir", "/tmp", "sh", "-c", "echo $A $GREETING; pwd"});
  EXPECT_EQ(env.status, 0) << env;
  EXPECT_EQ(env.out, "1=2 hello\n/tmp\n");
  Ctl killed = run({"exec", id, "--", "sh", "-c", "kill -9 $$"});
  EXPECT_EQ(killed.status, 137) << killed;
  Ctl ex_json = run({"exec", "--json", id, "--", "sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(ex_json.status, 3) << ex_json;
  auto frames = lines(ex_json.out);
  ASSERT_EQ(frames.size(), 3u) << ex_json;
  std::vector<std::string> expected{R"({"stream":"stdout","data":"out\n"})",
                                    R"({"stream":"stderr","data":"err\n"})", R"({"exit_code":3})"};
  // stdout and stderr are separate streams: their order between each other is not fixed.
  std::sort(frames.begin(), frames.begin() + 2);
  std::sort(expected.begin(), expected.begin() + 2);
  EXPECT_EQ(frames, expected);
  Ctl detached = run({"exec", id, "--detach", "--", "sleep", "1"});
  EXPECT_EQ(detached.status, 0) << detached;
  EXPECT_TRUE(is_ulid(lines(detached.out).at(0))) << detached;

  // url: the server's URL for the default (first) port; an undeclared port is an error.
  Ctl u = run({"url", id});
  EXPECT_EQ(u.status, 0) << u;
  EXPECT_EQ(u.out, url + "\n");
  EXPECT_EQ(run({"url", id, "--port", "3000"}).out, url + "\n");
  Ctl bad_port = run({"url", id, "--port", "4000"});
  EXPECT_EQ(bad_port.status, 1) << bad_port;
  EXPECT_EQ(bad_port.err,
            "sandboxctl: port 4000 is not declared by sandbox " + id + " (ports: 3000)\n");

  // stop / start print the new status; exec wakes a stopped sandbox.
  ASSERT_TRUE(wait_init_ready(id));
  Ctl stopped = run({"stop", id});
  EXPECT_EQ(stopped.status, 0) << stopped;
  EXPECT_EQ(stopped.out, "stopped\n");
  EXPECT_EQ(status_of(id), "stopped");
  Ctl woke = run({"exec", id, "--", "echo", "woke"});
  EXPECT_EQ(woke.status, 0) << woke;
  EXPECT_EQ(woke.out, "woke\n");
  EXPECT_EQ(status_of(id), "running");
  ASSERT_TRUE(wait_init_ready(id));
  EXPECT_EQ(run({"stop", id, "--force"}).out, "stopped\n");
  Ctl started = run({"start", id, "--wait"});
  EXPECT_EQ(started.status, 0) << started;
  EXPECT_EQ(started.out, "running\n");

  // rm keeps the workspace; purge without a terminal needs --yes (a usage error).
  ASSERT_TRUE(wait_init_ready(id));
  Ctl rm = run({"rm", id});
  EXPECT_EQ(rm.status, 0) << rm;
  EXPECT_EQ(rm.out, "");
  EXPECT_EQ(status_of(id), "destroyed");
  Ctl refused = run({"purge", id}, {}, id + "\n");
  EXPECT_EQ(refused.status, 2) << refused;
  EXPECT_NE(refused.err.find(
                "sandboxctl: purge asks for the id on a terminal; without one, pass --yes\n"),
            std::string::npos)
      << refused;
  EXPECT_EQ(status_of(id), "destroyed");
  Ctl purged = run({"purge", id, "--yes"});
  EXPECT_EQ(purged.status, 0) << purged;
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).status, 404);
  Ctl gone = run({"get", id});
  EXPECT_EQ(gone.status, 3) << gone;
  EXPECT_EQ(gone.err, "sandboxctl: no such sandbox " + id + " (not_found, HTTP 404)\n");
  EXPECT_EQ(gone.out, "");
}

// The transcript a user types (create → exec → url → task → rm), against the real tasks
// API and the runtimed inside the test image.
TEST_F(Sandboxctl, TranscriptCreateExecUrlTaskRm) {
  Ctl made = run({"create", "--port", "3000", "--wait"});
  ASSERT_EQ(made.status, 0) << made;
  const std::string id = lines(made.out).at(0);
  ASSERT_TRUE(is_ulid(id)) << made;

  Ctl exec = run({"exec", id, "--", "sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(exec.status, 3) << exec;
  EXPECT_EQ(exec.out, "out\n");
  EXPECT_EQ(exec.err, "err\n");

  Ctl url = run({"url", id});
  ASSERT_EQ(url.status, 0) << url;
  EXPECT_EQ(url.out, "http://" + preview_host(id, 3000) + ":" + std::to_string(sd().edge_port()) + "/\n");

  // task run --follow: the command's output as it comes, the task id on stderr, and the
  // command's exit status as sandboxctl's own.
  Ctl task = run({"task", "run", id, "--follow", "--", "sh", "-c", "echo building; echo done building; exit 4"});
  EXPECT_EQ(task.status, 4) << task;
  // One line per event as `watch` renders them; the command's own output bare.
  auto rendered = lines(task.out);
  ASSERT_EQ(rendered.size(), 5u) << task;
  EXPECT_TRUE(std::regex_match(rendered[0], std::regex(R"(\[[0-9:]{8}\] started  command  pid [0-9]+)"))) << task;
  EXPECT_EQ(rendered[1], "building");
  EXPECT_EQ(rendered[2], "done building");
  EXPECT_TRUE(std::regex_match(rendered[4], std::regex(R"(\[[0-9:]{8}\] done  failed  exit 4 .*)"))) << task;
  ASSERT_EQ(task.err.rfind("task ", 0), 0u) << task;
  const std::string tid = lines(task.err).at(0).substr(5);
  ASSERT_TRUE(is_ulid(tid)) << task;
  Ctl ok = run({"task", "run", id, "-f", "--", "true"});
  EXPECT_EQ(ok.status, 0) << ok;

  Ctl listed = run({"--json", "task", "ls", id});
  ASSERT_EQ(listed.status, 0) << listed;
  json::value tasks = json::parse(listed.out);
  ASSERT_EQ(tasks.at("tasks").as_array().size(), 2u) << listed;
  bool found = false;
  for (const auto& t : tasks.at("tasks").as_array()) {
    if (t.at("id").as_string() != tid) continue;
    found = true;
    EXPECT_EQ(t.at("status").as_string(), "failed") << listed;
  }
  EXPECT_TRUE(found) << listed;
  Ctl table = run({"task", "ls", id});
  ASSERT_EQ(table.status, 0) << table;
  // TASK  AGENT  STATUS  CREATED  DURATION  EXIT: the failed task's row ends in its code.
  bool row_found = false;
  for (const std::string& row : lines(table.out)) {
    if (row.rfind(tid, 0) != 0) continue;
    row_found = true;
    EXPECT_TRUE(std::regex_match(row, std::regex(tid + R"(\s+command\s+failed\s+.*\s4)"))) << table;
  }
  EXPECT_TRUE(row_found) << table;

  // rm destroys the container and keeps the workspace.
  Ctl rm = run({"rm", id});
  EXPECT_EQ(rm.status, 0) << rm;
  EXPECT_EQ(status_of(id), "destroyed");
  EXPECT_TRUE(instance_container_ids(sd()).empty());
}

TEST_F(Sandboxctl, ErrorsHaveTheirExitCodes) {
  const std::string unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
  Ctl get = run({"get", unknown});
  EXPECT_EQ(get.status, 3) << get;
  EXPECT_EQ(get.err, "sandboxctl: no such sandbox " + unknown + " (not_found, HTTP 404)\n");
  // With --json stdout stays empty and stderr says the same.
  Ctl get_json = run({"--json", "get", unknown});
  EXPECT_EQ(get_json.status, 3);
  EXPECT_EQ(get_json.out, "");
  EXPECT_EQ(get_json.err, get.err);
  for (const auto& cmd : std::vector<std::vector<std::string>>{{"stop", unknown},
                                                               {"start", unknown},
                                                               {"rm", unknown},
                                                               {"url", unknown},
                                                               {"purge", unknown, "-y"}}) {
    Ctl r = run(cmd);
    EXPECT_EQ(r.status, 3) << cmd[0] << ": " << r;
  }
  // exec: sandboxctl's own failures are 125 (not the remote command's codes).
  Ctl exec = run({"exec", unknown, "--", "true"});
  EXPECT_EQ(exec.status, 125) << exec;
  EXPECT_EQ(exec.err, get.err);
  EXPECT_EQ(run({"exec", unknown}).status, 125);
  // Usage errors: exit 2 and the command's usage, before any request.
  Ctl bad_id = run({"get", "not-an-id"});
  EXPECT_EQ(bad_id.status, 2) << bad_id;
  EXPECT_EQ(bad_id.err,
            "sandboxctl: invalid sandbox id \"not-an-id\": expected 26 characters of Crockford "
            "base32 (a ULID)\n"
            "usage: sandboxctl get ID\n"
            "run 'sandboxctl get -h' for help\n");
  Ctl bad_flag = run({"create", "--port", "http"});
  EXPECT_EQ(bad_flag.status, 2) << bad_flag;
  EXPECT_EQ(run({"ls", "--frob"}).status, 2);
  // A 400 from the server: exit 1 with the envelope's message.
  Ctl refused = run({"create", "--env", "HOME=/x"});
  EXPECT_EQ(refused.status, 1) << refused;
  EXPECT_NE(refused.err.find("(invalid_request, HTTP 400)"), std::string::npos) << refused;
  // -h works for every command and exits 0.
  Ctl help = run({"exec", "-h"});
  EXPECT_EQ(help.status, 0);
  EXPECT_EQ(help.out.rfind("usage: sandboxctl exec ID", 0), 0u) << help;
}

TEST_F(Sandboxctl, CommandsTheServerMayNotServeYetFailCleanly) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  // Routes of SPEC §2.6.9 / §2.7 that a server may not have yet: a clean answer or a clean
  // API error (one "sandboxctl: " message and an exit code of the table), never a crash.
  TempDir tmp;
  for (const auto& cmd :
       std::vector<std::vector<std::string>>{{"logs", id},
                                             {"task", "ls", id},
                                             {"task", "cancel", id, id},
                                             {"task", "watch", id, id},
                                             {"task", "run", id, "--", "true"},
                                             {"files", "ls", id},
                                             {"files", "get", id, "README.md"},
                                             {"files", "put", id, "x.txt", "-"},
                                             {"files", "export", id, "-o", tmp.path() + "/ws.tar"},
                                             {"certs"}}) {
    Ctl r = run(cmd, {}, "data");
    std::string name = cmd[0] + (cmd.size() > 1 && cmd[0] != "logs" ? " " + cmd[1] : "");
    EXPECT_TRUE(r.status == 0 || r.status == 1 || (r.status >= 3 && r.status <= 6))
        << name << ": " << r;
    if (r.status != 0) {
      EXPECT_EQ(r.err.rfind("sandboxctl: ", 0), 0u) << name << ": " << r;
      EXPECT_NE(r.err.find(" HTTP "), std::string::npos) << name << ": " << r;
    }
  }
}

TEST_F(Sandboxctl, FilesPutGetListExport) {
  std::string id = create_v1("u", "files");
  ASSERT_FALSE(id.empty());
  TempDir tmp;
  // put from stdin, then --append from a file; the answer's byte count and normalized path.
  Ctl put = run({"files", "put", id, "notes/a.txt"}, {}, "hello");
  EXPECT_EQ(put.status, 0) << put;
  EXPECT_EQ(put.out, "wrote 5 bytes to notes/a.txt\n");
  std::string local = tmp.write("b.txt", " world\n");
  Ctl append = run({"files", "put", id, "./notes/a.txt", local, "--append"});
  EXPECT_EQ(append.status, 0) << append;
  EXPECT_EQ(append.out, "wrote 7 bytes to notes/a.txt\n");
  // get to stdout, or to a file through a temporary one that is renamed.
  Ctl get = run({"files", "get", id, "notes/a.txt"});
  EXPECT_EQ(get.status, 0) << get;
  EXPECT_EQ(get.out, "hello world\n");
  std::string copy = tmp.path() + "/copy.txt";
  Ctl saved = run({"files", "get", id, "notes/a.txt", "-o", copy});
  EXPECT_EQ(saved.status, 0) << saved;
  EXPECT_EQ(saved.out, "");
  EXPECT_EQ(sandboxd::testing::run({"/bin/cat", copy}).out, "hello world\n");
  EXPECT_EQ(sandboxd::testing::run({"/bin/ls", "-A", tmp.path()}).out, "b.txt\ncopy.txt\n");
  // A failed download leaves neither the file nor a temporary one.
  Ctl missing = run({"files", "get", id, "nope.txt", "-o", tmp.path() + "/nope.txt"});
  EXPECT_EQ(missing.status, 3) << missing;
  EXPECT_EQ(sandboxd::testing::run({"/bin/ls", "-A", tmp.path()}).out, "b.txt\ncopy.txt\n");
  Ctl escape = run({"files", "get", id, "../etc/passwd"});
  EXPECT_EQ(escape.status, 1) << escape;
  EXPECT_NE(escape.err.find("(invalid_path, HTTP 400)"), std::string::npos) << escape;
  // ls: TYPE  SIZE  MTIME  PATH, or the API's object.
  Ctl ls = run({"files", "ls", id, "notes"});
  EXPECT_EQ(ls.status, 0) << ls;
  auto rows = lines(ls.out);
  ASSERT_EQ(rows.size(), 2u) << ls;
  EXPECT_TRUE(std::regex_match(rows[0], std::regex("TYPE +SIZE +MTIME +PATH"))) << ls;
  EXPECT_TRUE(
      std::regex_match(rows[1], std::regex("file +12 B +(just now|[0-9]+[sm] ago) +notes/a.txt")))
      << ls;
  Ctl ls_json = run({"--json", "files", "ls", id, "-r"});
  ASSERT_EQ(ls_json.status, 0) << ls_json;
  bool found = false;
  json::value listing_json = json::parse(ls_json.out);
  for (const auto& e : listing_json.at("entries").as_array()) {
    found = found || e.at("path").as_string() == "notes/a.txt";
  }
  EXPECT_TRUE(found) << ls_json;
  // export: a tar to a file (or to stdout when it is not a terminal).
  std::string tar = tmp.path() + "/notes.tar";
  Ctl exported = run({"files", "export", id, "notes", "-o", tar});
  EXPECT_EQ(exported.status, 0) << exported;
  RunResult listing = sandboxd::testing::run({"/bin/tar", "-tf", tar});
  EXPECT_EQ(listing.status, 0) << listing.err;
  EXPECT_NE(listing.out.find("a.txt"), std::string::npos) << listing.out;
  Ctl to_stdout = run({"files", "export", id, "notes"});
  EXPECT_EQ(to_stdout.status, 0) << to_stdout.err;
  EXPECT_GE(to_stdout.out.size(), 1024u);
  EXPECT_EQ(to_stdout.out.size() % 512, 0u);
}

TEST_F(Sandboxctl, VersionCertsAndVerbose) {
  Ctl certs = run({"certs"});
  EXPECT_EQ(certs.status, 0) << certs;
  EXPECT_EQ(certs.out, "NAMES  NOT-AFTER  NEXT-RENEWAL  STATUS  LAST-ERROR\n");
  EXPECT_EQ(certs.err, "sandboxctl: TLS is off on this server (tls.mode: off)\n");
  Ctl v = run({"version"});
  EXPECT_EQ(v.status, 0) << v;
  EXPECT_TRUE(
      std::regex_match(v.out, std::regex("sandboxctl [0-9.]+\nsandboxd [0-9.]+ \\(api v1\\)\n")))
      << v;
  Ctl verbose = run({"-v", "ls", "-q"});
  EXPECT_EQ(verbose.status, 0);
  EXPECT_NE(verbose.err.find("> GET " + server() + "/v1/sandboxes?limit=1000\n"), std::string::npos)
      << verbose;
  EXPECT_TRUE(std::regex_search(verbose.err, std::regex("< 200 OK \\([0-9]+ ms\\)\n"))) << verbose;
  // The env names the server when no flag does.
  Ctl by_env = ctl({"ls", "-q"}, {"SANDBOXD_URL=" + server()});
  EXPECT_EQ(by_env.status, 0) << by_env;
}

constexpr const char* kAdmin = "admin-secret-0123456789";
constexpr const char* kReader = "reader-secret-0123456789";

class SandboxctlAuth : public Sandboxctl {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = std::string("auth:\n  required: true\n  tokens:\n    - name: admin\n      secret: ") +
              kAdmin + "\n    - name: reader\n      secret: " + kReader +
              "\n      read_only: true\n";
    return c;
  }
};

TEST_F(SandboxctlAuth, TokensComeFromTheFlagOrTheEnvAndAreNeverPrinted) {
  Ctl none = run({"ls"});
  EXPECT_EQ(none.status, 4) << none;
  EXPECT_EQ(none.err,
            "sandboxctl: the server requires a token\nhint: set --token or SANDBOXD_TOKEN\n");
  Ctl wrong = run({"ls", "--token", "not-the-secret"});
  EXPECT_EQ(wrong.status, 4) << wrong;
  EXPECT_EQ(
      wrong.err,
      "sandboxctl: the server did not accept the token\nhint: check --token or SANDBOXD_TOKEN\n");
  Ctl by_env = run({"-v", "ls", "-q"}, {std::string("SANDBOXD_TOKEN=") + kAdmin});
  EXPECT_EQ(by_env.status, 0) << by_env;
  EXPECT_EQ(by_env.err.find(kAdmin), std::string::npos) << by_env;
  // The flag beats the env.
  Ctl flag = run({"-v", "ls", "--token", kAdmin}, {"SANDBOXD_TOKEN=wrong-token-value"});
  EXPECT_EQ(flag.status, 0) << flag;
  EXPECT_EQ(flag.err.find(kAdmin), std::string::npos) << flag;
  // A read-only token reads but may not create: 403 is exit 4 too.
  EXPECT_EQ(run({"ls", "--token", kReader}).status, 0);
  Ctl denied = run({"create", "--token", kReader});
  EXPECT_EQ(denied.status, 4) << denied;
  EXPECT_NE(denied.err.find("(forbidden, HTTP 403)"), std::string::npos) << denied;
}

// No sandboxd needed: nothing listens, or something listens and never answers.
TEST(SandboxctlNoServer, UnreachableIsExitSixWithTheSpecMessage) {
  std::string server = "http://127.0.0.1:" + std::to_string(closed_port());
  Ctl r = ctl({"ls", "--server", server});
  EXPECT_EQ(r.status, 6) << r;
  EXPECT_EQ(r.err,
            "sandboxctl: cannot reach sandboxd at " + server +
                ": connection refused\nhint: is sandboxd running? set --server or SANDBOXD_URL\n");
  EXPECT_EQ(r.out, "");
  Ctl env = ctl({"get", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, {"SANDBOXD_URL=" + server});
  EXPECT_EQ(env.status, 6) << env;
  EXPECT_EQ(env.err, r.err);
  // exec's own failure is 125 whatever it is.
  EXPECT_EQ(ctl({"exec", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--server", server, "--", "true"}).status,
            125);
}

TEST(SandboxctlNoServer, ASilentServerIsExitSevenAfterTheTimeout) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 8), 0);  // the kernel completes the handshake; nobody ever answers
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::string server = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  auto begin = std::chrono::steady_clock::now();
  Ctl r = ctl({"ls", "--server", server, "--timeout", "1s"});
  auto took = std::chrono::steady_clock::now() - begin;
  close(fd);
  EXPECT_EQ(r.status, 7) << r;
  EXPECT_EQ(r.err, "sandboxctl: no answer from sandboxd at " + server + " within 1s\n");
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 10s);
}

}  // namespace
}  // namespace sandboxd::testing
