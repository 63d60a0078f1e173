// The sandbox lifecycle through the HTTP API (SPEC §2.4-2.6, §5), legacy and v1, against the
// real binary and a real Docker Engine; the workspace's fate through stop, destroy and purge.
#include "sandboxd_fixture.h"

#include "raw_http.h"

#include <boost/json/serialize.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <regex>
#include <set>
#include <thread>

namespace sandboxd::testing {
namespace {

namespace fs = std::filesystem;

const std::regex kRfc3339Seconds(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$)");
const std::regex kCanonicalId("^[0-7][0-9A-HJKMNP-TV-Z]{25}$");
const std::regex kContainerId("^[0-9a-f]{64}$");

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> ids_of(const json::value& items) {
  std::vector<std::string> out;
  if (!items.is_array()) return out;
  for (const auto& i : items.get_array()) out.push_back(str_of(i, "id"));
  return out;
}

bool has_key(const json::value& v, const std::string& key) {
  return v.is_object() && v.get_object().contains(key);
}

using Lifecycle = SandboxdTest;

TEST_F(Lifecycle, LegacyCreateGetListExecWakeDestroyReviveAndPurge) {
  Answer made = sd().post("/sandbox", R"({"ports":[3000,8080],"env":{"GREETING":"hi"},
      "external":{"user_id":"alice","project_id":"p1"},"memory_high":"4G","future":1})");
  ASSERT_EQ(made.status, 201) << made.body;
  std::string id = made.str("id");
  // The legacy object, flat (SPEC §2.4).
  EXPECT_TRUE(std::regex_match(id, kCanonicalId)) << id;
  EXPECT_EQ(made.str("status"), "running");
  EXPECT_EQ(made.str("image"), "sandboxd-test:latest");
  EXPECT_EQ(made.str("workspace_img"), sd().workspace(id));
  EXPECT_EQ(made.str("workspace_mnt"), sd().workspace(id));
  EXPECT_TRUE(std::regex_match(made.str("container_id"), kContainerId)) << made.body;
  EXPECT_EQ(made.str("memory_high"), "2G");
  EXPECT_EQ(json::serialize(made.json.at("ports")), "[3000,8080]");
  EXPECT_TRUE(std::regex_match(made.str("created_at"), kRfc3339Seconds)) << made.body;
  EXPECT_TRUE(std::regex_match(made.str("updated_at"), kRfc3339Seconds)) << made.body;
  EXPECT_TRUE(made.json.at("last_active_at").is_int64()) << made.body;
  EXPECT_FALSE(made.str("container_ip").empty()) << made.body;
  EXPECT_EQ(made.str("external_user_id"), "alice");
  EXPECT_EQ(made.str("external_project_id"), "p1");
  EXPECT_EQ(made.str("visibility"), "public");
  EXPECT_EQ(made.str("idle_policy"), "sleep");
  EXPECT_FALSE(has_key(made.json, "error_message"));
  EXPECT_FALSE(has_key(made.json, "stopped_at"));
  EXPECT_FALSE(has_key(made.json, "future"));
  std::string container = made.str("container_id");
  auto inspected = engine_inspect("s-" + id);
  ASSERT_TRUE(inspected);
  EXPECT_EQ(str_of(*inspected, "Id"), container);
  struct stat st {};
  ASSERT_EQ(stat(sd().workspace(id).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  EXPECT_EQ(st.st_uid, 1000u);

  // GET: row, live_state from Docker (SPEC §2.5.3).
  Answer got = sd().get("/sandbox/" + id);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(str_of(got.json.at("row"), "id"), id);
  EXPECT_EQ(str_of(got.json.at("row"), "status"), "running");
  const json::value& live = got.json.at("live_state");
  ASSERT_TRUE(live.is_object()) << got.body;
  EXPECT_EQ(str_of(live, "Id"), container);
  EXPECT_EQ(live.at("State").at("Running"), json::value(true)) << got.body;
  EXPECT_EQ(str_of(live.at("State"), "Status"), "running");
  EXPECT_EQ(str_of(live.at("Config"), "Image"), "sandboxd-test:latest");
  EXPECT_EQ(str_of(live.at("Config").at("Labels"), "sandboxd.id"), id);
  EXPECT_EQ(str_of(live.at("NetworkSettings").at("Networks").at(sd().network()), "IPAddress"),
            made.str("container_ip"))
      << got.body;

  // List and its filters.
  std::string other = create_legacy();
  ASSERT_FALSE(other.empty());
  Answer all = sd().get("/sandboxes");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(ids_of(all.json), (std::vector<std::string>{other, id})) << "newest first";
  EXPECT_EQ(ids_of(sd().get("/sandboxes?external_user_id=alice").json),
            std::vector<std::string>{id});
  EXPECT_EQ(ids_of(sd().get("/sandboxes?external_user_id=local").json),
            std::vector<std::string>{other});
  EXPECT_EQ(ids_of(sd().get("/sandboxes?external_project_id=p1").json),
            std::vector<std::string>{id});
  EXPECT_EQ(ids_of(sd().get("/sandboxes?status=stopped").json), std::vector<std::string>{});
  EXPECT_EQ(sd().get("/sandboxes?status=stopped").body, "[]");
  EXPECT_EQ(sd().get("/sandboxes?status=running&status=stopped").status, 400);

  // Exec, legacy shape (SPEC §2.5.5); the request env reached the container.
  Answer ran = sd().post("/sandbox/" + id + "/exec", R"({"cmd":["sh","-c","echo $GREETING"]})");
  ASSERT_EQ(ran.status, 200) << ran.body;
  EXPECT_EQ(ran.str("stdout"), "hi\n");
  EXPECT_EQ(ran.str("stderr"), "");
  EXPECT_EQ(ran.json.at("exit_code"), json::value(0));
  EXPECT_EQ(ran.json.at("timed_out"), json::value(false));
  EXPECT_EQ(ran.json.at("truncated"), json::value(false));

  // Stop (v1 route; legacy has none), then /wake.
  ASSERT_TRUE(wait_init_ready(id));
  ASSERT_EQ(sd().post("/v1/sandboxes/" + id + "/stop").status, 200);
  Answer stopped = sd().get("/sandbox/" + id);
  EXPECT_EQ(str_of(stopped.json.at("row"), "status"), "stopped");
  EXPECT_TRUE(has_key(stopped.json.at("row"), "stopped_at")) << stopped.body;
  EXPECT_FALSE(has_key(stopped.json.at("row"), "container_ip")) << stopped.body;
  Answer woke = sd().post("/wake/" + id);
  ASSERT_EQ(woke.status, 200) << woke.body;
  EXPECT_EQ(woke.str("id"), id);
  EXPECT_EQ(woke.str("status"), "running");
  EXPECT_TRUE(woke.json.at("wake_duration_ms").is_int64()) << woke.body;

  // Keepalive (SPEC §2.5.6): {} means now + idle.threshold, 0 clears, the past is refused.
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch()).count();
  Answer kept = sd().post("/sandbox/" + id + "/keepalive", "{}");
  ASSERT_EQ(kept.status, 200) << kept.body;
  EXPECT_EQ(kept.str("id"), id);
  EXPECT_GT(kept.json.at("keepalive_until").to_number<std::int64_t>(), now_s);
  EXPECT_TRUE(has_key(sd().get("/sandbox/" + id).json.at("row"), "keepalive_until"));
  Answer cleared = sd().post("/sandbox/" + id + "/keepalive", R"({"until":0})");
  EXPECT_EQ(cleared.json.at("keepalive_until"), json::value(0)) << cleared.body;
  EXPECT_EQ(sd().post("/sandbox/" + id + "/keepalive", R"({"until":1000})").status, 400);

  // Destroy: container gone, workspace kept, the sandbox reads as absent.
  ASSERT_TRUE(wait_init_ready(id));
  ASSERT_EQ(sd().post("/sandbox/" + id + "/exec",
                      R"({"cmd":["sh","-c","echo kept > /home/sandbox/marker"]})")
                .status,
            200);
  Answer destroyed = sd().del("/sandbox/" + id);
  EXPECT_EQ(destroyed.status, 204) << destroyed.body;
  EXPECT_EQ(destroyed.body, "");
  Answer gone = sd().get("/sandbox/" + id);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.str("code"), "not_found") << gone.body;
  EXPECT_EQ(sd().del("/sandbox/" + id).status, 404);
  EXPECT_EQ(ids_of(sd().get("/sandboxes").json), std::vector<std::string>{other});
  EXPECT_FALSE(engine_inspect("s-" + id));
  EXPECT_EQ(read_whole(sd().workspace(id) + "/marker"), "kept\n");

  // Revive: same id and owner, in lower case; the workspace is attached again.
  Answer revived = sd().post(
      "/sandbox", R"({"id":")" + lower(id) + R"(","external":{"user_id":"alice"}})");
  ASSERT_EQ(revived.status, 201) << revived.body;
  EXPECT_EQ(revived.str("id"), id);
  EXPECT_NE(revived.str("container_id"), container);
  Answer cat = sd().post("/sandbox/" + id + "/exec", R"({"cmd":["cat","/home/sandbox/marker"]})");
  EXPECT_EQ(cat.str("stdout"), "kept\n") << cat.body;
  // A live id cannot be taken again.
  Answer taken = sd().post("/sandbox", R"({"id":")" + id + R"(","external":{"user_id":"alice"}})");
  EXPECT_EQ(taken.status, 409) << taken.body;
  EXPECT_EQ(taken.str("code"), "conflict");

  // Purge (SPEC §2.5.8): everything goes, bytes are counted; unknown ids purge to 0.
  Answer purged = sd().post("/sandbox/" + id + "/purge");
  ASSERT_EQ(purged.status, 200) << purged.body;
  EXPECT_EQ(purged.json.at("purged"), json::value(true));
  EXPECT_GT(purged.json.at("freed_bytes").to_number<std::int64_t>(), 0) << purged.body;
  EXPECT_FALSE(fs::exists(sd().workspace(id)));
  EXPECT_FALSE(engine_inspect("s-" + id));
  EXPECT_EQ(sd().get("/sandbox/" + id).status, 404);
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).status, 404);
  Answer again = sd().post("/sandbox/" + id + "/purge");
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(json::serialize(again.json), R"({"purged":true,"freed_bytes":0})");
  Answer unknown = sd().post("/sandbox/01ARZ3NDEKTSV4RRFFQ69G5FAV/purge");
  EXPECT_EQ(unknown.status, 200);
  EXPECT_EQ(json::serialize(unknown.json), R"({"purged":true,"freed_bytes":0})");
}

TEST_F(Lifecycle, V1CreateIsIdempotentAndGoesThroughEveryState) {
  Answer made = sd().post("/v1/sandboxes", R"({"project":{"id":"p1","user_id":"u1",
      "workspace_id":"w1"},"env":{"ZED":"z","ALPHA":"a"},"idle_policy":"always_on",
      "visibility":"private"})");
  ASSERT_EQ(made.status, 201) << made.body;
  std::string id = made.str("id");
  EXPECT_EQ(made.header("location"), "/v1/sandboxes/" + id);
  // The v1 object (SPEC §2.4).
  EXPECT_EQ(made.str("status"), "running");
  EXPECT_FALSE(has_key(made.json, "error"));
  const json::value& project = made.json.at("project");
  EXPECT_EQ(str_of(project, "id"), "p1");
  EXPECT_EQ(str_of(project, "user_id"), "u1");
  EXPECT_EQ(str_of(project, "workspace_id"), "w1");
  EXPECT_EQ(made.str("visibility"), "private");
  EXPECT_EQ(made.str("idle_policy"), "always_on");
  EXPECT_EQ(json::serialize(made.json.at("ports")), "[3000]");
  // The edge listens on an ephemeral port here, so the URL names it (SPEC §1.4).
  ASSERT_NE(sd().edge_port(), 0);
  std::string url = "http://" + preview_host(id, 3000) + ":" + std::to_string(sd().edge_port()) + "/";
  EXPECT_EQ(str_of(made.json.at("preview"), "url"), url);
  EXPECT_EQ(str_of(made.json.at("preview").at("urls"), "3000"), url);
  EXPECT_FALSE(str_of(made.json.at("preview"), "status").empty());
  EXPECT_EQ(made.str("image"), "sandboxd-test:latest");
  EXPECT_FALSE(has_key(made.json, "template"));
  const json::value& res = made.json.at("resources");
  EXPECT_EQ(res.at("memory_bytes").to_number<std::int64_t>(), 2LL << 30);
  EXPECT_EQ(res.at("nofile").to_number<std::int64_t>(), 4096);
  EXPECT_TRUE(res.get_object().contains("pids"));
  EXPECT_TRUE(res.get_object().contains("cpus"));
  EXPECT_EQ(json::serialize(made.json.at("env_keys")), R"(["ALPHA","ZED"])");
  EXPECT_EQ(made.body.find("\"z\""), std::string::npos) << "env values are never returned";
  EXPECT_TRUE(std::regex_match(made.str("created_at"), kRfc3339Seconds)) << made.body;
  EXPECT_TRUE(std::regex_match(made.str("updated_at"), kRfc3339Seconds)) << made.body;
  EXPECT_FALSE(has_key(made.json, "stopped_at"));

  // Idempotent per (user_id, project_id): 200 with the same sandbox, body not applied.
  Answer same = sd().post("/v1/sandboxes", R"({"project":{"id":"p1","user_id":"u1"},
      "ports":[4000]})");
  EXPECT_EQ(same.status, 200) << same.body;
  EXPECT_EQ(same.str("id"), id);
  EXPECT_EQ(json::serialize(same.json.at("ports")), "[3000]");
  Answer with_id = sd().post("/v1/sandboxes",
                             R"({"id":")" + id + R"(","project":{"id":"p1","user_id":"u1"}})");
  EXPECT_EQ(with_id.status, 200) << with_id.body;
  EXPECT_EQ(with_id.str("id"), id);
  // The key is the pair: the same project of another user is another sandbox.
  std::string theirs = create_v1("u2", "p1");
  ASSERT_FALSE(theirs.empty());
  EXPECT_NE(theirs, id);

  Answer got = sd().get("/v1/sandboxes/" + id);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.str("id"), id);

  // Stop and start, each idempotent.
  ASSERT_TRUE(wait_init_ready(id));
  Answer stopped = sd().post("/v1/sandboxes/" + id + "/stop");
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  EXPECT_EQ(stopped.str("status"), "stopped");
  EXPECT_TRUE(std::regex_match(stopped.str("stopped_at"), kRfc3339Seconds)) << stopped.body;
  auto inspected = engine_inspect("s-" + id);
  ASSERT_TRUE(inspected);
  EXPECT_EQ(inspected->at("State").at("Running"), json::value(false));
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/stop").str("status"), "stopped");
  // Still the same sandbox for idempotent create: stopped is a live state.
  EXPECT_EQ(sd().post("/v1/sandboxes", R"({"project":{"id":"p1","user_id":"u1"}})").status, 200);
  Answer started = sd().post("/v1/sandboxes/" + id + "/start");
  ASSERT_EQ(started.status, 200) << started.body;
  EXPECT_EQ(started.str("status"), "running");
  EXPECT_FALSE(has_key(started.json, "stopped_at"));
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/start").status, 200);
  inspected = engine_inspect("s-" + id);
  ASSERT_TRUE(inspected);
  EXPECT_EQ(inspected->at("State").at("Running"), json::value(true));

  // Destroy keeping the workspace: 204, then visible as destroyed in v1, absent in legacy.
  ASSERT_TRUE(wait_init_ready(id));
  Answer destroyed = sd().del("/v1/sandboxes/" + id + "?keep_workspace=true");
  EXPECT_EQ(destroyed.status, 204) << destroyed.body;
  Answer after = sd().get("/v1/sandboxes/" + id);
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(after.str("status"), "destroyed");
  EXPECT_EQ(str_of(after.json.at("preview"), "status"), "down");
  EXPECT_EQ(sd().get("/sandbox/" + id).status, 404);
  EXPECT_FALSE(engine_inspect("s-" + id));
  EXPECT_TRUE(fs::is_directory(sd().workspace(id)));
  EXPECT_EQ(sd().del("/v1/sandboxes/" + id + "?keep_workspace=true").status, 204);
  // Routes by state (SPEC §2.9): destroyed refuses start, stop and exec.
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/start").status, 409);
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/stop").status, 409);
  EXPECT_EQ(exec(id, {"true"}).status, 409);
  // A destroyed sandbox is not live: idempotent create makes a new one.
  Answer fresh = sd().post("/v1/sandboxes", R"({"project":{"id":"p1","user_id":"u1"}})");
  EXPECT_EQ(fresh.status, 201) << fresh.body;
  EXPECT_NE(fresh.str("id"), id);

  // The same id under another owner: 409 that does not name the owner.
  Answer stolen = sd().post("/v1/sandboxes",
                            R"({"id":")" + id + R"(","project":{"id":"p9","user_id":"mallory"}})");
  EXPECT_EQ(stolen.status, 409) << stolen.body;
  EXPECT_EQ(stolen.error_code(), "conflict");
  EXPECT_EQ(stolen.body.find("u1"), std::string::npos) << stolen.body;
  Answer legacy_stolen = sd().post("/sandbox", R"({"id":")" + id + R"("})");
  EXPECT_EQ(legacy_stolen.status, 409) << legacy_stolen.body;
  EXPECT_EQ(legacy_stolen.body.find("u1"), std::string::npos) << legacy_stolen.body;
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "destroyed");

  // Revive by its owner.
  Answer revived = sd().post("/v1/sandboxes",
                             R"({"id":")" + id + R"(","project":{"id":"p1","user_id":"u1"}})");
  EXPECT_EQ(revived.status, 201) << revived.body;
  EXPECT_EQ(revived.str("status"), "running");

  // Purge: 204, then unknown; again 204; unknown ids 204 too.
  EXPECT_EQ(sd().del("/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).status, 404);
  EXPECT_FALSE(fs::exists(sd().workspace(id)));
  EXPECT_FALSE(engine_inspect("s-" + id));
  EXPECT_EQ(sd().del("/v1/sandboxes/" + id).status, 204);
  EXPECT_EQ(sd().del("/v1/sandboxes/01ARZ3NDEKTSV4RRFFQ69G5FAV").status, 204);
  EXPECT_EQ(sd().del("/v1/sandboxes/01ARZ3NDEKTSV4RRFFQ69G5FAV?keep_workspace=true").status, 204);
  // After a purge the id is free for anyone.
  Answer reused = sd().post("/v1/sandboxes",
                            R"({"id":")" + id + R"(","project":{"id":"p9","user_id":"mallory"}})");
  EXPECT_EQ(reused.status, 201) << reused.body;
}

TEST_F(Lifecycle, V1ListFiltersNewestFirstAndPages) {
  std::string a1 = create_v1("a", "p1");
  std::string a2 = create_v1("a", "p2");
  std::string b1 = create_v1("b", "p1");
  ASSERT_FALSE(a1.empty() || a2.empty() || b1.empty());

  auto list = [&](const std::string& query) {
    Answer a = sd().get("/v1/sandboxes" + query);
    EXPECT_EQ(a.status, 200) << query << ": " << a.body;
    return a.json.is_object() ? ids_of(a.json.at("sandboxes")) : std::vector<std::string>{};
  };
  using Ids = std::vector<std::string>;
  EXPECT_EQ(list(""), (Ids{b1, a2, a1}));
  EXPECT_EQ(list("?user_id=a"), (Ids{a2, a1}));
  EXPECT_EQ(list("?project_id=p1"), (Ids{b1, a1}));
  EXPECT_EQ(list("?user_id=a&project_id=p1"), (Ids{a1}));
  EXPECT_EQ(list("?user_id=nobody"), Ids{});
  EXPECT_EQ(sd().get("/v1/sandboxes?user_id=nobody").body, R"({"sandboxes":[]})");
  EXPECT_EQ(list("?status=running"), (Ids{b1, a2, a1}));
  ASSERT_TRUE(wait_init_ready(a2));
  ASSERT_EQ(sd().post("/v1/sandboxes/" + a2 + "/stop").status, 200);
  EXPECT_EQ(list("?status=stopped"), (Ids{a2}));
  EXPECT_EQ(list("?status=running,stopped"), (Ids{b1, a2, a1}));
  EXPECT_EQ(list("?status=destroyed"), Ids{});

  // Paging: limit and an opaque cursor.
  Answer first = sd().get("/v1/sandboxes?limit=2");
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(ids_of(first.json.at("sandboxes")), (Ids{b1, a2}));
  std::string cursor = first.str("next_cursor");
  ASSERT_FALSE(cursor.empty()) << first.body;
  Answer second = sd().get("/v1/sandboxes?limit=2&cursor=" + url_encode(cursor));
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(ids_of(second.json.at("sandboxes")), (Ids{a1}));
  EXPECT_FALSE(has_key(second.json, "next_cursor")) << second.body;
  EXPECT_FALSE(has_key(sd().get("/v1/sandboxes?limit=3").json, "next_cursor"));
  for (const char* bad : {"?limit=0", "?limit=1001", "?limit=x", "?limit=-1", "?limit=1&limit=2",
                          "?cursor=nonsense"}) {
    Answer a = sd().get(std::string("/v1/sandboxes") + bad);
    EXPECT_EQ(a.status, 400) << bad << ": " << a.body;
    EXPECT_EQ(a.error_code(), "invalid_request") << bad;
  }
}

TEST_F(Lifecycle, WorkspaceSurvivesStopStartAndDestroyButNotPurge) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  std::string ws = sd().workspace(id);
  // Seeded from the image's /opt/sandbox-skel, owned by the sandbox user.
  EXPECT_NE(read_whole(ws + "/README.md").find("sandbox-skel"), std::string::npos);
  EXPECT_TRUE(fs::is_directory(ws + "/workspace"));

  Answer wrote = exec(id, {"sh", "-c", "echo hello > /home/sandbox/workspace/note.txt"});
  ASSERT_EQ(wrote.status, 200) << wrote.body;
  ASSERT_EQ(wrote.json.at("exit_code"), json::value(0)) << wrote.body;
  EXPECT_EQ(read_whole(ws + "/workspace/note.txt"), "hello\n");
  struct stat st {};
  ASSERT_EQ(stat((ws + "/workspace/note.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);

  auto cat = [&] { return exec(id, {"cat", "/home/sandbox/workspace/note.txt"}).str("stdout"); };
  ASSERT_TRUE(wait_init_ready(id));
  ASSERT_EQ(sd().post("/v1/sandboxes/" + id + "/stop").status, 200);
  EXPECT_EQ(read_whole(ws + "/workspace/note.txt"), "hello\n");
  ASSERT_EQ(sd().post("/v1/sandboxes/" + id + "/start").status, 200);
  EXPECT_EQ(cat(), "hello\n");

  ASSERT_TRUE(wait_init_ready(id));
  ASSERT_EQ(sd().del("/v1/sandboxes/" + id + "?keep_workspace=true").status, 204);
  EXPECT_EQ(read_whole(ws + "/workspace/note.txt"), "hello\n");
  Answer revived = sd().post("/v1/sandboxes",
                             R"({"id":")" + id + R"(","project":{"id":"p","user_id":"u"}})");
  ASSERT_EQ(revived.status, 201) << revived.body;
  EXPECT_EQ(cat(), "hello\n");

  ASSERT_EQ(sd().del("/v1/sandboxes/" + id).status, 204);
  EXPECT_FALSE(fs::exists(ws));
  Answer again = sd().post("/v1/sandboxes",
                           R"({"id":")" + id + R"(","project":{"id":"p","user_id":"u"}})");
  ASSERT_EQ(again.status, 201) << again.body;
  Answer missing = exec(id, {"test", "-e", "/home/sandbox/workspace/note.txt"});
  EXPECT_EQ(missing.json.at("exit_code"), json::value(1)) << missing.body;
  EXPECT_TRUE(fs::exists(ws + "/README.md")) << "a purged id gets a fresh skeleton";
}

TEST_F(Lifecycle, StartAndStopWithoutWaitAnswer202) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  Answer stopping = sd().post("/v1/sandboxes/" + id + "/stop?wait=false");
  EXPECT_EQ(stopping.status, 202) << stopping.body;
  EXPECT_EQ(stopping.str("id"), id);
  EXPECT_EQ(stopping.str("status"), "stopping");
  EXPECT_TRUE(wait_status(id, "stopped"));
  Answer waking = sd().post("/v1/sandboxes/" + id + "/start?wait=false");
  EXPECT_EQ(waking.status, 202) << waking.body;
  EXPECT_EQ(waking.str("id"), id);
  EXPECT_EQ(waking.str("status"), "waking");
  EXPECT_TRUE(wait_status(id, "running"));
  // Already in the asked state: 200 at once.
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/start?wait=false").status, 200);
  // Bad query values are refused before anything happens.
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/stop?wait=maybe").status, 400);
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/stop", R"({"timeout_s":0})").status, 400);
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/stop", R"({"grace":1})").status, 400);
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "running");
  Answer forced = sd().post("/v1/sandboxes/" + id + "/stop", R"({"force":true,"timeout_s":1})");
  EXPECT_EQ(forced.status, 200) << forced.body;
  EXPECT_EQ(forced.str("status"), "stopped");
}

// Sends `body` to POST `path` from `n` threads at once; the answers.
std::vector<Answer> concurrently(std::uint16_t port, const std::string& path,
                                 const std::string& body, int n) {
  std::vector<Answer> answers(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      auto r = http_request(port, "POST", path, body, {"Content-Type: application/json"}, 60s);
      Answer& a = answers[static_cast<std::size_t>(i)];
      if (!r) return;
      a.status = r->status;
      a.body = r->body;
      boost::system::error_code ec;
      a.json = json::parse(a.body, ec);
    });
  }
  for (auto& t : threads) t.join();
  return answers;
}

TEST_F(Lifecycle, ConcurrentIdempotentCreatesMakeOneSandbox) {
  // A client that retries (or several replicas of it) must not get two sandboxes for one
  // project: one 201, the others 200 with the same id.
  std::vector<Answer> answers = concurrently(
      sd().port(), "/v1/sandboxes", R"({"project":{"id":"same","user_id":"u"}})", 4);
  std::set<std::string> ids;
  int created = 0;
  for (const auto& a : answers) {
    EXPECT_TRUE(a.status == 201 || a.status == 200) << a.status << " " << a.body;
    created += a.status == 201;
    ids.insert(a.str("id"));
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(ids.size(), 1u);
  Answer listed = sd().get("/v1/sandboxes?user_id=u&project_id=same");
  EXPECT_EQ(ids_of(listed.json.at("sandboxes")).size(), 1u) << listed.body;

  // The same id from several callers at once: one wins, the others are refused.
  std::string id = "01KZ3NDEKTSV4RRFFQ69G5FAVC";
  answers = concurrently(sd().port(), "/sandbox", R"({"id":")" + id + R"("})", 3);
  int won = 0;
  for (const auto& a : answers) {
    EXPECT_TRUE(a.status == 201 || a.status == 409) << a.status << " " << a.body;
    won += a.status == 201;
  }
  EXPECT_EQ(won, 1);
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "running");
}

TEST_F(Lifecycle, CreateWithoutWaitAnswers202AndFinishesInTheBackground) {
  Answer a = sd().post("/v1/sandboxes?wait=false", R"({"project":{"id":"p","user_id":"u"}})");
  ASSERT_EQ(a.status, 202) << a.body;
  std::string id = a.str("id");
  EXPECT_EQ(a.str("status"), "creating");
  EXPECT_EQ(a.header("location"), "/v1/sandboxes/" + id);
  EXPECT_TRUE(wait_status(id, "running"));
  EXPECT_TRUE(engine_inspect("s-" + id));

  // A failure after the answer shows as state error, with its reason; the container is not
  // ours, so it stays; the workspace stays until purge.
  std::string taken = "01KZ3NDEKTSV4RRFFQ69G5FAVD";
  json::object spec{{"Image", "sandboxd-test:latest"},
                    {"HostConfig", json::object{{"NetworkMode", sd().network()}}}};
  ASSERT_EQ(engine_call("POST", "/containers/create?name=s-" + taken, json::serialize(spec)).status,
            201);
  Answer b = sd().post("/v1/sandboxes?wait=false",
                       R"({"id":")" + taken + R"(","project":{"id":"q","user_id":"u"}})");
  ASSERT_EQ(b.status, 202) << b.body;
  ASSERT_TRUE(wait_status(taken, "error"));
  Answer failed = sd().get("/v1/sandboxes/" + taken);
  EXPECT_EQ(str_of(failed.json.at("error"), "reason"), "name_taken") << failed.body;
  EXPECT_FALSE(str_of(failed.json.at("error"), "message").empty()) << failed.body;
  Answer legacy = sd().get("/sandbox/" + taken);
  EXPECT_EQ(str_of(legacy.json.at("row"), "status"), "error");
  EXPECT_FALSE(str_of(legacy.json.at("row"), "error_message").empty()) << legacy.body;
  // error refuses stop and exec (SPEC §2.9); purge clears it.
  EXPECT_EQ(sd().post("/v1/sandboxes/" + taken + "/stop").status, 409);
  EXPECT_EQ(exec(taken, {"true"}).status, 409);
  EXPECT_EQ(sd().del("/v1/sandboxes/" + taken).status, 204);
  EXPECT_EQ(sd().get("/v1/sandboxes/" + taken).status, 404);
  EXPECT_TRUE(engine_inspect("s-" + taken)) << "a container that is not ours is never removed";
  engine_call("DELETE", "/containers/s-" + taken + "?force=1");
}

// ---------------------------------------------------------------------------- hardening

std::vector<std::string> strings_of(const json::value& v) {
  std::vector<std::string> out;
  if (!v.is_array()) return out;
  for (const auto& s : v.get_array()) out.emplace_back(s.is_string() ? s.get_string().c_str() : "?");
  return out;
}

bool empty_or_null(const json::value& v) {
  return v.is_null() || (v.is_array() && v.get_array().empty()) ||
         (v.is_object() && v.get_object().empty());
}

using Hardening = SandboxdTest;

TEST_F(Hardening, ContainerSpecReadBackFromDockerInspect) {
  std::string id = create_v1("u", "p", R"("resources":{"memory":"512MiB","pids":200})");
  ASSERT_FALSE(id.empty());
  std::string other = create_v1("u", "q");
  ASSERT_FALSE(other.empty());
  auto inspected = engine_inspect("s-" + id);
  ASSERT_TRUE(inspected);
  const json::object& c = *inspected;
  const json::value& config = c.at("Config");
  const json::value& hc = c.at("HostConfig");
  SCOPED_TRACE(json::serialize(c));

  EXPECT_EQ(str_of(c, "Name"), "/s-" + id);
  EXPECT_EQ(str_of(config, "Hostname"), "s-" + lower(id));
  EXPECT_EQ(str_of(config, "User"), "1000:1000");
  EXPECT_EQ(str_of(config, "WorkingDir"), "/home/sandbox/workspace");
  EXPECT_EQ(str_of(config, "Image"), "sandboxd-test:latest");
  EXPECT_EQ(str_of(config, "StopSignal"), "SIGTERM");
  EXPECT_EQ(config.at("StopTimeout"), json::value(5));
  const json::value& labels = config.at("Labels");
  EXPECT_EQ(str_of(labels, "sandboxd.managed"), "true");
  EXPECT_EQ(str_of(labels, "sandboxd.id"), id);
  EXPECT_EQ(str_of(labels, "sandboxd.instance"), sd().instance());
  std::vector<std::string> env = strings_of(config.at("Env"));
  auto has_env = [&](const std::string& kv) {
    return std::find(env.begin(), env.end(), kv) != env.end();
  };
  EXPECT_TRUE(has_env("HOME=/home/sandbox"));
  EXPECT_TRUE(has_env("SANDBOX_ID=" + id));
  EXPECT_TRUE(has_env("SANDBOX_PREVIEW_HOST=s-" + lower(id) + "-{port}.preview.localhost"));

  EXPECT_EQ(strings_of(hc.at("CapDrop")), std::vector<std::string>{"ALL"});
  EXPECT_TRUE(empty_or_null(hc.at("CapAdd")));
  EXPECT_EQ(strings_of(hc.at("SecurityOpt")), std::vector<std::string>{"no-new-privileges"});
  EXPECT_EQ(hc.at("ReadonlyRootfs"), json::value(true));
  ASSERT_TRUE(hc.at("Tmpfs").is_object());
  std::string tmpfs = str_of(hc.at("Tmpfs"), "/tmp");
  EXPECT_TRUE(tmpfs.starts_with("rw,exec,nosuid,nodev,size=")) << tmpfs;
  EXPECT_EQ(hc.at("Tmpfs").get_object().size(), 1u);
  EXPECT_EQ(hc.at("Memory"), json::value(512LL << 20));
  EXPECT_EQ(hc.at("MemorySwap"), hc.at("Memory"));
  EXPECT_EQ(hc.at("PidsLimit"), json::value(200));
  ASSERT_TRUE(hc.at("Ulimits").is_array());
  ASSERT_EQ(hc.at("Ulimits").get_array().size(), 1u);
  const json::value& nofile = hc.at("Ulimits").get_array()[0];
  EXPECT_EQ(str_of(nofile, "Name"), "nofile");
  EXPECT_EQ(nofile.at("Soft"), json::value(4096));
  EXPECT_EQ(nofile.at("Hard"), json::value(4096));
  EXPECT_EQ(hc.at("NanoCpus"), json::value(0));
  EXPECT_EQ(hc.at("Init"), json::value(false));
  EXPECT_EQ(hc.at("Privileged"), json::value(false));
  EXPECT_EQ(str_of(hc.at("RestartPolicy"), "Name"), "no");
  EXPECT_EQ(str_of(hc, "NetworkMode"), sd().network());
  EXPECT_TRUE(empty_or_null(hc.at("PortBindings")));
  EXPECT_EQ(hc.at("PublishAllPorts"), json::value(false));
  EXPECT_TRUE(empty_or_null(hc.at("Devices")));
  EXPECT_NE(str_of(hc, "PidMode"), "host");
  EXPECT_NE(str_of(hc, "IpcMode"), "host");
  EXPECT_NE(str_of(hc, "UTSMode"), "host");
  EXPECT_EQ(str_of(hc.at("LogConfig"), "Type"), "json-file");
  EXPECT_EQ(str_of(hc.at("LogConfig").at("Config"), "max-size"), "10m");
  EXPECT_EQ(str_of(hc.at("LogConfig").at("Config"), "max-file"), "2");
  std::vector<std::string> binds = strings_of(hc.at("Binds"));
  EXPECT_NE(std::find(binds.begin(), binds.end(), sd().workspace(id) + ":/home/sandbox:rw"),
            binds.end());
  EXPECT_NE(std::find(binds.begin(), binds.end(),
                      sd().data_dir() + "/run/" + id + ":/run/sandboxd:rw"),
            binds.end());
  EXPECT_EQ(binds.size(), 2u);
  const json::value& networks = c.at("NetworkSettings").at("Networks");
  ASSERT_TRUE(networks.is_object());
  EXPECT_EQ(networks.get_object().size(), 1u);
  EXPECT_TRUE(networks.get_object().contains(sd().network()));

  // The default limits for a sandbox without overrides.
  auto plain = engine_inspect("s-" + other);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->at("HostConfig").at("Memory"), json::value(2LL << 30));
  EXPECT_EQ(plain->at("HostConfig").at("MemorySwap"), json::value(2LL << 30));
  EXPECT_EQ(plain->at("HostConfig").at("PidsLimit"), json::value(1024));

  // The network: bridge, inter-container traffic off, owned by sandboxd.
  EngineAnswer net = engine_call("GET", "/networks/" + sd().network());
  ASSERT_EQ(net.status, 200);
  json::value n = net.json();
  EXPECT_EQ(str_of(n, "Driver"), "bridge");
  EXPECT_EQ(str_of(n.at("Options"), "com.docker.network.bridge.enable_icc"), "false");
  EXPECT_EQ(str_of(n.at("Labels"), "sandboxd.managed"), "true");

  // And from the inside: not root, no capabilities, no new privileges, read-only root.
  Answer inside = exec(id, {"sh", "-c",
                            "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; "
                            "touch /rootfs-probe 2>/dev/null && echo root-writable; "
                            "touch /tmp/probe && echo tmp-writable"});
  ASSERT_EQ(inside.status, 200) << inside.body;
  std::string out = inside.str("stdout");
  EXPECT_TRUE(out.starts_with("1000\n")) << out;
  EXPECT_NE(out.find("CapEff:\t0000000000000000"), std::string::npos) << out;
  EXPECT_NE(out.find("NoNewPrivs:\t1"), std::string::npos) << out;
  EXPECT_EQ(out.find("root-writable"), std::string::npos) << out;
  EXPECT_NE(out.find("tmp-writable"), std::string::npos) << out;
}

// SPEC §2.6.6: start?port= answers once that port accepts a TCP connection on the container
// address, 504 `timeout` when it does not within wake.timeout (the sandbox keeps running),
// 400 for a port the sandbox did not declare.
class StartPortTest : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = "wake:\n  timeout: 3s\n";
    return c;
  }
};

TEST_F(StartPortTest, WaitsForTheDeclaredPortOrAnswers504) {
  const std::string id = create_v1("u1", "start-port", R"("ports":[3000,4000])");
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(sd().post("/v1/sandboxes/" + id + "/stop").status, 200);
  Answer up = sd().post("/v1/sandboxes/" + id + "/start?port=3000");
  ASSERT_EQ(up.status, 200) << up.body;
  // The dev server accepts at once: the answer came after it was listening.
  auto container = engine_inspect("s-" + id);
  ASSERT_TRUE(container);
  const std::string ip(container->at("NetworkSettings").at("Networks").at(sd().network())
                           .at("IPAddress").as_string());
  EXPECT_NO_THROW(RawConnection(ip, 3000));

  Answer silent = sd().post("/v1/sandboxes/" + id + "/start?port=4000");  // nothing listens
  EXPECT_EQ(silent.status, 504) << silent.body;
  EXPECT_EQ(silent.error_code(), "timeout") << silent.body;
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "running");
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/start?port=5000").status, 400);
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/start?port=abc").status, 400);
}

}  // namespace
}  // namespace sandboxd::testing
