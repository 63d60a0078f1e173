// dockerd restarted under a running sandboxd (SPEC §5.9, §13): while the engine is gone
// sandboxd says so (503, /readyz 503) and keeps serving what needs no Docker; once it is
// back, sandboxd reconnects, reconciles and works again.
//
// This restarts the Docker Engine, so it runs only against the private dockerd that
// scripts/docker-engine.sh started (never a shared one), in its own test binary marked
// RUN_SERIAL; the engine is started again at the end, also when the test fails.
#include "sandboxd_fixture.h"

#include <cstdlib>
#include <fstream>

namespace sandboxd::testing {
namespace {

std::string state_dir() {
  const char* dir = std::getenv("SANDBOXD_DOCKERD_DIR");
  return dir && *dir ? dir : "/tmp/sandboxd-dockerd";
}

// True when the engine in use is the private dockerd of scripts/docker-engine.sh: its socket,
// and a live pid in its pidfile that is a dockerd serving that socket.
bool private_engine(std::string* why) {
  std::string sock = state_dir() + "/docker.sock";
  if (docker_socket() != sock) {
    *why = "the engine at " + docker_socket() + " is not scripts/docker-engine.sh's private one";
    return false;
  }
  std::ifstream pidfile(state_dir() + "/dockerd.pid");
  int pid = 0;
  if (!(pidfile >> pid) || pid <= 0) {
    *why = "no pidfile under " + state_dir();
    return false;
  }
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string args(std::istreambuf_iterator<char>(cmdline), {});
  if (args.find("dockerd") == std::string::npos ||
      args.find("unix://" + sock) == std::string::npos) {
    *why = "pid " + std::to_string(pid) + " is not the private dockerd";
    return false;
  }
  return true;
}

RunResult engine_script(const std::string& command) {
  Process p({std::string(SANDBOXD_SOURCE_DIR) + "/scripts/docker-engine.sh", command},
            {"DOCKER_HOST=unix://" + docker_socket(), "SANDBOXD_DOCKERD_DIR=" + state_dir()});
  RunResult r;
  r.status = p.wait_exit(120s).value_or(-1);
  r.out = p.out();
  r.err = p.err();
  return r;
}

// Starts the engine again when it does not answer, whatever happened in between.
class EngineRestorer {
 public:
  ~EngineRestorer() {
    if (engine_call("GET", "/_ping").status == 200) return;
    RunResult r = engine_script("start");
    if (r.status != 0) ADD_FAILURE() << "could not start the engine again: " << r.err;
  }
};

using DockerRestart = SandboxdTest;

TEST_F(DockerRestart, SandboxdReconnectsAndKeepsServing) {
  std::string why;
  // It stops and starts the engine, so it runs only against scripts/docker-engine.sh's
  // private dockerd (what scripts/test.sh starts on a machine without one); any other engine
  // is a failure, never a silent skip.
  ASSERT_TRUE(private_engine(&why)) << "this test restarts the Docker engine and will not restart a "
                                       "shared one; run it with scripts/docker-engine.sh's private "
                                       "engine: " << why;
  std::string id = create_v1("u", "before");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));

  EngineRestorer restorer;
  RunResult stopped = engine_script("stop");
  ASSERT_EQ(stopped.status, 0) << stopped.err;
  ASSERT_NE(engine_call("GET", "/_ping").status, 200);

  // Docker is gone: /readyz says so once the last good ping is stale; the process serves on.
  Answer ready;
  EXPECT_TRUE(wait_until([&] {
    ready = sd().get("/readyz");
    return ready.status == 503;
  }, 20s)) << ready.status << " " << ready.body;
  EXPECT_EQ(str_of(ready.json, "code"), "unavailable") << ready.body;
  EXPECT_NE(ready.json.at("checks").at("docker"), json::value("ok")) << ready.body;
  EXPECT_EQ(sd().get("/healthz").status, 200);
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).status, 200) << "reads need no Docker";
  Answer refused = sd().post("/v1/sandboxes", R"({"project":{"id":"during","user_id":"u"}})");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.error_code(), "unavailable") << refused.body;
  EXPECT_FALSE(refused.header("retry-after").empty());
  EXPECT_EQ(sd().get("/v1/sandboxes?project_id=during").body, R"({"sandboxes":[]})")
      << "a refused create leaves no row";

  RunResult started = engine_script("start");
  ASSERT_EQ(started.status, 0) << started.err;
  ASSERT_EQ(engine_call("GET", "/_ping").status, 200);

  // Back: ready again, the sandbox whose container the restart stopped reads stopped, and
  // every operation works.
  EXPECT_TRUE(wait_until([&] {
    ready = sd().get("/readyz");
    return ready.status == 200;
  }, 60s)) << ready.body;
  EXPECT_TRUE(wait_status(id, "stopped", 60s));
  std::string after = create_v1("u", "after");
  EXPECT_FALSE(after.empty());
  Answer up = sd().post("/v1/sandboxes/" + id + "/start");
  EXPECT_EQ(up.status, 200) << up.body;
  Answer ran = exec(id, {"echo", "back"});
  EXPECT_EQ(ran.str("stdout"), "back\n") << ran.body;
  // Events flow again: a container killed now is noticed.
  ASSERT_TRUE(wait_init_ready(id));
  ASSERT_EQ(engine_call("POST", "/containers/s-" + id + "/kill?signal=KILL").status, 204);
  EXPECT_TRUE(wait_status(id, "stopped", 30s));
}

}  // namespace
}  // namespace sandboxd::testing
