// External identity and tenancy (SPEC §2.5.9, §2.5.10, §2.6.4, §5.7): tokens that act for
// one external user see and change only that user's sandboxes; claim moves a sandbox to
// another owner; the purges by external user and project remove exactly what they name;
// PATCH changes routing rules at once without touching the container.
#include "raw_http.h"
#include "sandboxd_fixture.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace sandboxd::testing {
namespace {

constexpr const char* kAdmin = "admin-secret-0123456789";
constexpr const char* kAlice = "alice-secret-0123456789";
constexpr const char* kBob = "bob-secret-0123456789ab";

class TenancyTest : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = std::string("auth:\n"
                          "  required: true\n"
                          "  tokens:\n"
                          "    - name: admin\n"
                          "      secret: ") + kAdmin + "\n"
              "    - name: alice\n"
              "      secret: " + kAlice + "\n"
              "      user_id: alice\n"
              "    - name: bob\n"
              "      secret: " + kBob + "\n"
              "      user_id: bob\n";
    return c;
  }

  void SetUp() override {
    SandboxdTest::SetUp();
    sd().set_token(kAdmin);
  }

  Answer as(const char* token, const std::string& method, const std::string& path,
            const std::string& body = "") {
    sd().set_token(token);
    Answer a = sd().call(method, path, body);
    sd().set_token(kAdmin);
    return a;
  }

  std::string create_as(const char* token, const std::string& user, const std::string& project) {
    Answer a = as(token, "POST", "/v1/sandboxes",
                  R"({"project":{"id":")" + project + R"(","user_id":")" + user + R"("}})");
    EXPECT_EQ(a.status, 201) << a.body;
    return a.status == 201 ? a.str("id") : "";
  }
};

TEST_F(TenancyTest, ATenantCannotSeeClaimExecInOrPurgeAnotherTenantsSandbox) {
  const std::string mine = create_as(kAlice, "alice", "shop");
  ASSERT_FALSE(mine.empty());
  const std::string base = "/v1/sandboxes/" + mine;

  // Alice cannot create for someone else.
  Answer forged = as(kAlice, "POST", "/v1/sandboxes", R"({"project":{"id":"x","user_id":"bob"}})");
  EXPECT_EQ(forged.status, 403) << forged.body;
  EXPECT_EQ(forged.error_code(), "forbidden");

  // To Bob, Alice's sandbox does not exist: every route answers as for an unknown id.
  EXPECT_EQ(as(kBob, "GET", base).status, 404);
  Answer exec = as(kBob, "POST", base + "/exec", R"({"cmd":["touch","/home/sandbox/workspace/bob-was-here"]})");
  EXPECT_EQ(exec.status, 404) << exec.body;
  EXPECT_EQ(exec.error_code(), "not_found");
  EXPECT_EQ(as(kBob, "POST", "/sandbox/" + mine + "/exec", R"({"cmd":["true"]})").status, 404);
  Answer claim = as(kBob, "POST", "/sandbox/" + mine + "/claim", R"({"external_user_id":"bob"})");
  EXPECT_EQ(claim.status, 404) << claim.body;
  EXPECT_EQ(as(kBob, "PATCH", base, R"({"visibility":"private"})").status, 404);
  EXPECT_EQ(as(kBob, "POST", base + "/stop").status, 404);
  EXPECT_EQ(as(kBob, "GET", base + "/files?path=.").status, 404);
  EXPECT_EQ(as(kBob, "POST", base + "/preview-token", "{}").status, 404);
  Answer legacy_purge = as(kBob, "POST", "/sandbox/" + mine + "/purge");
  EXPECT_EQ(legacy_purge.status, 200) << legacy_purge.body;
  EXPECT_EQ(legacy_purge.json.at("freed_bytes"), json::value(0));
  EXPECT_EQ(as(kBob, "DELETE", base).status, 204);
  Answer by_user = as(kBob, "POST", "/external-users/alice/purge");
  EXPECT_EQ(by_user.status, 403) << by_user.body;
  Answer by_project = as(kBob, "POST", "/external-projects/shop/purge");
  EXPECT_EQ(by_project.status, 200) << by_project.body;
  EXPECT_EQ(by_project.json.at("purged_count"), json::value(0));
  Answer listed = as(kBob, "GET", "/v1/sandboxes");
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body.find(mine), std::string::npos) << listed.body;
  EXPECT_EQ(as(kBob, "GET", "/v1/sandboxes?user_id=alice").status, 403);
  EXPECT_EQ(as(kBob, "GET", "/sandboxes?external_user_id=alice").status, 403);
  EXPECT_EQ(as(kBob, "GET", "/v1/events?user_id=alice").status, 403);
  EXPECT_EQ(as(kBob, "GET", "/metrics").status, 403);
  EXPECT_EQ(as(kBob, "GET", "/v1/certificates").status, 403);

  // Nothing Bob did reached it: still Alice's, running, no file written.
  Answer still = as(kAlice, "GET", base);
  ASSERT_EQ(still.status, 200) << still.body;
  EXPECT_EQ(still.str("status"), "running");
  EXPECT_EQ(still.json.at("project").at("user_id"), json::value("alice"));
  EXPECT_FALSE(std::filesystem::exists(sd().workspace(mine) + "/bob-was-here"));

  // Alice acts on her own sandbox; the operator sees everyone's.
  Answer ran = as(kAlice, "POST", base + "/exec", R"({"cmd":["echo","hi"]})");
  EXPECT_EQ(ran.status, 200) << ran.body;
  Answer alice_list = as(kAlice, "GET", "/v1/sandboxes");
  EXPECT_NE(alice_list.body.find(mine), std::string::npos);
  const std::string bobs = create_as(kBob, "bob", "shop");
  ASSERT_FALSE(bobs.empty());
  Answer all = sd().get("/v1/sandboxes");
  EXPECT_NE(all.body.find(mine), std::string::npos);
  EXPECT_NE(all.body.find(bobs), std::string::npos);

  // Bob's project purge took only his own part of project "shop".
  Answer bob_purge = as(kBob, "POST", "/external-projects/shop/purge");
  ASSERT_EQ(bob_purge.status, 200) << bob_purge.body;
  EXPECT_EQ(bob_purge.json.at("purged_count"), json::value(1));
  EXPECT_EQ(sd().get("/v1/sandboxes/" + bobs).status, 404);
  EXPECT_EQ(sd().get(base).str("status"), "running");
}

TEST_F(TenancyTest, ClaimReplacesTheOwnerAndMovesTheSandboxBetweenTenants) {
  Answer made = sd().post("/sandbox", R"({"external":{"user_id":"alice","project_id":"p1","workspace_id":"w1"}})");
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string id = made.str("id");

  // Alice may change her own project, but cannot hand the sandbox to Bob.
  Answer give = as(kAlice, "POST", "/sandbox/" + id + "/claim", R"({"external_user_id":"bob"})");
  EXPECT_EQ(give.status, 403) << give.body;
  Answer own = as(kAlice, "POST", "/sandbox/" + id + "/claim",
                  R"({"external_user_id":"alice","external_project_id":"p2"})");
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(own.json.at("claimed"), json::value(true));
  Answer row = sd().get("/sandbox/" + id);
  EXPECT_EQ(row.json.at("row").at("external_project_id"), json::value("p2"));
  EXPECT_EQ(row.json.at("row").at("external_workspace_id"), json::value("w1"))
      << "an omitted field keeps its value";

  // The operator moves it to Bob; null clears the workspace.
  Answer moved = sd().post("/sandbox/" + id + "/claim",
                           R"({"external_user_id":"bob","external_workspace_id":null})");
  ASSERT_EQ(moved.status, 200) << moved.body;
  EXPECT_EQ(moved.json.at("external_user_id"), json::value("bob"));
  row = sd().get("/sandbox/" + id);
  EXPECT_EQ(row.json.at("row").at("external_user_id"), json::value("bob"));
  EXPECT_EQ(row.json.at("row").at("external_project_id"), json::value("p2"));
  EXPECT_FALSE(row.json.at("row").as_object().contains("external_workspace_id")) << row.body;
  EXPECT_EQ(as(kAlice, "GET", "/v1/sandboxes/" + id).status, 404);
  EXPECT_EQ(as(kBob, "GET", "/v1/sandboxes/" + id).status, 200);

  // Bad bodies, and a destroyed sandbox can still be claimed; a purged one cannot.
  EXPECT_EQ(sd().post("/sandbox/" + id + "/claim", "{}").status, 400);
  EXPECT_EQ(sd().post("/sandbox/" + id + "/claim", R"({"external_user_id":"a,b"})").status, 400);
  ASSERT_EQ(sd().del("/sandbox/" + id).status, 204);
  EXPECT_EQ(sd().post("/sandbox/" + id + "/claim", R"({"external_user_id":"carol"})").status, 200);
  ASSERT_EQ(sd().post("/sandbox/" + id + "/purge").status, 200);
  EXPECT_EQ(sd().post("/sandbox/" + id + "/claim", R"({"external_user_id":"carol"})").status, 404);
}

TEST_F(TenancyTest, PurgeByExternalUserRemovesExactlyThatUsersSandboxesAndWorkspaces) {
  const std::string a1 = create_as(kAdmin, "u1", "p1");
  const std::string a2 = create_as(kAdmin, "u1", "p2");
  const std::string b1 = create_as(kAdmin, "u2", "p1");
  ASSERT_FALSE(a1.empty());
  ASSERT_FALSE(a2.empty());
  ASSERT_FALSE(b1.empty());
  ASSERT_TRUE(std::filesystem::exists(sd().workspace(a1)));

  Answer purged = sd().post("/external-users/u1/purge");
  ASSERT_EQ(purged.status, 200) << purged.body;
  EXPECT_EQ(purged.json.at("purged_count"), json::value(2));
  EXPECT_GT(purged.json.at("freed_bytes").to_number<double>(), 0);
  for (const auto& id : {a1, a2}) {
    EXPECT_EQ(sd().get("/v1/sandboxes/" + id).status, 404) << id;
    EXPECT_FALSE(std::filesystem::exists(sd().workspace(id))) << id;
  }
  std::vector<std::string> left = instance_container_ids(sd());
  EXPECT_EQ(left.size(), 1u);
  EXPECT_EQ(sd().get("/v1/sandboxes/" + b1).str("status"), "running");
  EXPECT_TRUE(std::filesystem::exists(sd().workspace(b1)));

  // Again: nothing left to purge. A percent-encoded id is decoded; a bad one is refused.
  Answer again = sd().post("/external-users/u1/purge");
  EXPECT_EQ(again.json.at("purged_count"), json::value(0));
  EXPECT_EQ(sd().post("/external-users/u%2C2/purge").status, 400);
  Answer project = sd().post("/external-projects/p%31/purge");
  ASSERT_EQ(project.status, 200) << project.body;
  EXPECT_EQ(project.json.at("purged_count"), json::value(1));
  EXPECT_EQ(sd().get("/v1/sandboxes/" + b1).status, 404);
}

class PatchTest : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = "auth:\n  preview:\n    secrets:\n"
              "      - kid: k1\n        secret: 0123456789abcdef0123456789abcdef\n";
    return c;
  }

  int preview_status(const std::string& id, int port) {
    RawConnection conn(sd().edge_port());
    conn.send("GET / HTTP/1.1\r\nHost: " + preview_host(id, port) + "\r\nConnection: close\r\n\r\n");
    auto r = conn.read_response(false, std::chrono::seconds(30));
    return r ? r->status : -1;
  }

  Answer patch(const std::string& id, const std::string& body,
               const std::string& type = "application/merge-patch+json") {
    return sd().call("PATCH", "/v1/sandboxes/" + id, body, {"Content-Type: " + type});
  }
};

TEST_F(PatchTest, VisibilityAndPortsChangeTheRoutesAtOnceWithoutTouchingTheContainer) {
  const std::string id = create_v1("u1", "patched");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_preview(id));
  const std::string since = engine_now();

  Answer priv = patch(id, R"({"visibility":"private"})");
  ASSERT_EQ(priv.status, 200) << priv.body;
  EXPECT_EQ(priv.str("visibility"), "private");
  EXPECT_EQ(preview_status(id, 3000), 401) << "a private preview needs a token from the next request";

  Answer reset = patch(id, R"({"visibility":null,"ports":[3000,4000]})", "application/json");
  ASSERT_EQ(reset.status, 200) << reset.body;
  EXPECT_EQ(reset.str("visibility"), "public");
  EXPECT_EQ(preview_status(id, 3000), 200);

  Answer only = patch(id, R"({"ports":[4000]})");
  ASSERT_EQ(only.status, 200) << only.body;
  EXPECT_EQ(preview_status(id, 3000), 404) << "port 3000 is no longer exposed";
  EXPECT_EQ(patch(id, R"({"ports":null})").status, 200);
  EXPECT_EQ(preview_status(id, 3000), 200);
  EXPECT_EQ(engine_container_starts("s-" + id, since), 0) << "PATCH restarted the container";
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "running");

  // keepalive_until: clamped to idle.keepalive_max, never in the past, null clears.
  Answer kept = patch(id, R"({"keepalive_until":"2999-01-01T00:00:00Z"})");
  ASSERT_EQ(kept.status, 200) << kept.body;
  EXPECT_LT(kept.str("keepalive_until"), std::string("2999")) << kept.body;
  EXPECT_EQ(patch(id, R"({"keepalive_until":"2001-01-01T00:00:00Z"})").status, 400);
  Answer cleared = patch(id, R"({"keepalive_until":null,"idle_policy":"always_on"})");
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_FALSE(cleared.json.as_object().contains("keepalive_until")) << cleared.body;
  EXPECT_EQ(cleared.str("idle_policy"), "always_on");

  // Unknown or immutable fields are named; wrong types and media types are refused.
  Answer owner = patch(id, R"({"project":{"user_id":"u2"}})");
  EXPECT_EQ(owner.status, 400);
  EXPECT_NE(owner.body.find("project"), std::string::npos) << owner.body;
  EXPECT_EQ(patch(id, R"({"visibility":"secret"})").status, 400);
  EXPECT_EQ(patch(id, R"({"ports":[22]})").status, 400);
  EXPECT_EQ(patch(id, R"({"visibility":"private"})", "text/plain").status, 415);
  EXPECT_EQ(patch(id, "{}").status, 200);

  ASSERT_EQ(sd().del("/v1/sandboxes/" + id + "?keep_workspace=true").status, 204);
  Answer gone = patch(id, R"({"visibility":"private"})");
  EXPECT_EQ(gone.status, 409) << gone.body;
  EXPECT_EQ(patch("01ARZ3NDEKTSV4RRFFQ69G5FAV", R"({"visibility":"private"})").status, 404);
}

}  // namespace
}  // namespace sandboxd::testing
