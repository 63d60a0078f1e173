// GET /v1/audit and the bounds of the audit table (SPEC §8) against the real binary: API
// calls made with a named token are listed newest first with actor `token:<name>`, pages
// follow the cursor, filters narrow the list, a read-only token may read it, bad queries
// are 400; the idle reaper's stop is audited as `system` with reason `idle`; the boot sweep
// enforces store.audit_max_rows and counts what it deleted.
#include "sandboxd_fixture.h"

#include <gtest/gtest.h>

#include <set>

namespace sandboxd::testing {
namespace {

constexpr const char* kAdmin = "admin-secret-0123456789";
constexpr const char* kReader = "reader-secret-0123456789";

std::string auth_yaml() {
  return std::string("auth:\n"
                     "  required: true\n"
                     "  tokens:\n"
                     "    - name: admin\n"
                     "      secret: ") +
         kAdmin +
         "\n"
         "    - name: reader\n"
         "      secret: " +
         kReader + "\n      read_only: true\n";
}

// The actions of an audit page, in order.
std::vector<std::string> actions_of(const Answer& a) {
  std::vector<std::string> out;
  if (!a.json.is_object() || !a.json.as_object().if_contains("entries")) return out;
  for (const auto& e : a.json.at("entries").as_array()) out.push_back(str_of(e, "action"));
  return out;
}

std::vector<std::int64_t> ids_of(const Answer& a) {
  std::vector<std::int64_t> out;
  if (!a.json.is_object() || !a.json.as_object().if_contains("entries")) return out;
  for (const auto& e : a.json.at("entries").as_array()) out.push_back(e.at("id").as_int64());
  return out;
}

class AuditTest : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = auth_yaml();
    return c;
  }
  void SetUp() override {
    SandboxdTest::SetUp();
    sd().set_token(kAdmin);
  }
};

TEST_F(AuditTest, ApiCallsAreListedNewestFirstWithTheirToken) {
  const std::string id = create_v1("u1", "audit-list");
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(sd().post("/v1/sandboxes/" + id + "/stop").status, 200);
  ASSERT_EQ(sd().post("/sandbox/" + id + "/keepalive", "{}").status, 200);
  ASSERT_EQ(sd().del("/v1/sandboxes/" + id).status, 204);

  Answer a = sd().get("/v1/audit?sandbox_id=" + id);
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(actions_of(a), (std::vector<std::string>{"sandbox.purge", "sandbox.keepalive",
                                                      "sandbox.stop", "sandbox.create"}))
      << a.body;
  EXPECT_FALSE(a.json.as_object().contains("next_cursor")) << a.body;
  std::int64_t previous_id = 0;
  std::string previous_ts;
  for (const auto& v : a.json.at("entries").as_array()) {
    const json::object& e = v.as_object();
    EXPECT_EQ(str_of(e, "actor"), "token:admin") << json::serialize(e);
    EXPECT_EQ(str_of(e, "sandbox_id"), id);
    EXPECT_EQ(str_of(e, "actor_ip"), "127.0.0.1") << json::serialize(e);
    EXPECT_FALSE(str_of(e, "request_id").empty()) << json::serialize(e);
    EXPECT_TRUE(e.at("detail").is_object()) << json::serialize(e);
    // RFC 3339 UTC seconds, never increasing down the list; ids strictly decreasing.
    const std::string ts = str_of(e, "ts");
    EXPECT_EQ(ts.size(), 20u) << ts;
    EXPECT_EQ(ts.back(), 'Z') << ts;
    if (previous_id != 0) {
      EXPECT_LT(e.at("id").as_int64(), previous_id);
      EXPECT_LE(ts, previous_ts);
    }
    previous_id = e.at("id").as_int64();
    previous_ts = ts;
  }
  const json::object& purge = a.json.at("entries").as_array()[0].as_object();
  EXPECT_TRUE(purge.at("detail").as_object().contains("freed_bytes")) << json::serialize(purge);

  // Pages of one follow the cursor to the same list, and the last page has no cursor.
  std::vector<std::int64_t> paged;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    std::string target = "/v1/audit?limit=1&sandbox_id=" + id;
    if (!cursor.empty()) target += "&cursor=" + url_encode(cursor);
    Answer p = sd().get(target);
    ASSERT_EQ(p.status, 200) << p.body;
    auto got = ids_of(p);
    ASSERT_LE(got.size(), 1u);
    paged.insert(paged.end(), got.begin(), got.end());
    cursor = p.str("next_cursor");
    if (cursor.empty()) break;
  }
  EXPECT_EQ(paged, ids_of(a));

  // Filters.
  EXPECT_EQ(actions_of(sd().get("/v1/audit?sandbox_id=" + id + "&action=sandbox.stop")),
            (std::vector<std::string>{"sandbox.stop"}));
  EXPECT_EQ(actions_of(sd().get("/v1/audit?actor=token:admin&sandbox_id=" + id)).size(), 4u);
  EXPECT_TRUE(actions_of(sd().get("/v1/audit?actor=system&sandbox_id=" + id)).empty());
  EXPECT_TRUE(actions_of(sd().get("/v1/audit?since=2999-01-01T00:00:00Z")).empty());
  EXPECT_EQ(actions_of(sd().get("/v1/audit?since=2000-01-01T00:00:00Z&sandbox_id=" + id)).size(),
            4u);
  // Unfiltered, this sandbox's rows are among the newest (nothing else ran since).
  Answer all = sd().get("/v1/audit?limit=2");
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(actions_of(all), (std::vector<std::string>{"sandbox.purge", "sandbox.keepalive"}));
  EXPECT_FALSE(all.str("next_cursor").empty());
}

TEST_F(AuditTest, ReadOnlyTokensMayReadIt) {
  const std::string id = create_v1("u1", "audit-reader");
  ASSERT_FALSE(id.empty());
  sd().set_token(kReader);
  Answer a = sd().get("/v1/audit?sandbox_id=" + id);
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(actions_of(a), (std::vector<std::string>{"sandbox.create"}));
  // Still a read: writing stays forbidden to the reader, and nobody anonymous reads it.
  EXPECT_EQ(sd().post("/v1/sandboxes/" + id + "/stop").status, 403);
  sd().set_token("");
  EXPECT_EQ(sd().get("/v1/audit").status, 401);
}

TEST_F(AuditTest, BadQueriesAre400) {
  for (std::string query :
       {"limit=0", "limit=1001", "limit=abc", "limit=", "since=yesterday",
        "since=2026-13-01T00:00:00Z", "cursor=nope", "cursor=1.x", "sandbox_id=not-an-id",
        "limit=1&limit=2", "action="}) {
    Answer a = sd().get("/v1/audit?" + query);
    EXPECT_EQ(a.status, 400) << query << ": " << a.body;
    EXPECT_EQ(a.error_code(), "invalid_request") << query << ": " << a.body;
    EXPECT_TRUE(a.json.is_object() && a.json.as_object().contains("error") &&
                a.json.at("error").is_object())
        << "v1 envelope: " << a.body;
  }
  EXPECT_EQ(sd().call("POST", "/v1/audit").status, 405);
}

TEST_F(AuditTest, BootSweepKeepsAtMostAuditMaxRows) {
  for (const char* project : {"audit-cap-a", "audit-cap-b"}) {
    const std::string id = create_v1("u1", project);
    ASSERT_FALSE(id.empty());
    ASSERT_EQ(sd().post("/v1/sandboxes/" + id + "/stop").status, 200);
  }
  Answer before = sd().get("/v1/audit?limit=1000");
  ASSERT_EQ(before.status, 200);
  const std::vector<std::int64_t> all = ids_of(before);
  ASSERT_GE(all.size(), 4u) << before.body;

  // Restarted with a cap of 3: the boot sweep leaves the 3 newest rows.
  SandboxdConfig capped = config();
  capped.extra += "store:\n  audit_max_rows: 3\n";
  sd().rewrite_config(capped);
  ASSERT_TRUE(sd().terminate());
  ASSERT_TRUE(sd().start());
  Answer after;
  ASSERT_TRUE(wait_until([&] {
    after = sd().get("/v1/audit?limit=1000");
    return after.status == 200 && ids_of(after).size() <= 3;
  }, 30s)) << after.body;
  EXPECT_EQ(ids_of(after), (std::vector<std::int64_t>(all.begin(), all.begin() + 3)));
  Answer m = sd().get("/metrics");
  const std::string deleted = "sandboxd_audit_rows_deleted_total{reason=\"cap\"} " +
                              std::to_string(all.size() - 3);
  EXPECT_NE(m.body.find(deleted), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("sandboxd_audit_rows_deleted_total{reason=\"age\"} 0"), std::string::npos);
}

// The idle reaper's stop, written by sandboxd itself.
class AuditIdleTest : public AuditTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c = AuditTest::config();
    c.extra += "idle:\n  threshold: 3s\n  check_interval: 1s\n  stop_timeout: 2s\n";
    return c;
  }
};

TEST_F(AuditIdleTest, IdleStopIsAuditedAsSystemWithReasonIdle) {
  const std::string id = create_v1("u1", "audit-idle");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_status(id, "stopped", 30s));
  Answer a = sd().get("/v1/audit?action=sandbox.stop&sandbox_id=" + id);
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(a.json.at("entries").as_array().size(), 1u) << a.body;
  const json::object& e = a.json.at("entries").as_array()[0].as_object();
  EXPECT_EQ(str_of(e, "actor"), "system");
  EXPECT_FALSE(e.contains("actor_ip"));
  EXPECT_EQ(json::serialize(e.at("detail")), R"({"reason":"idle"})");
}

}  // namespace
}  // namespace sandboxd::testing
