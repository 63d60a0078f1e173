#include "requests.h"

#include "base/json.h"

#include <gtest/gtest.h>

namespace sandboxd::control {
namespace {

boost::json::object obj(std::string_view text) {
  auto o = parse_json_object(text);
  EXPECT_TRUE(o) << text;
  return o ? *o : boost::json::object{};
}

TEST(Requests, LegacyCreateDefaults) {
  auto r = parse_legacy_create(obj("{}"), {});
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->id);
  EXPECT_TRUE(r->ports.empty());
  EXPECT_EQ(r->user_id, "local");
  EXPECT_EQ(r->visibility, Visibility::public_);
}

TEST(Requests, LegacyCreateReadsEverything) {
  auto r = parse_legacy_create(
      obj(R"({"id":"01arz3ndektsv4rrffq69g5fav","ports":[3000,8080],"visibility":"private",)"
          R"("idle_policy":"always_on","external":{"user_id":"u1","project_id":"p1"},)"
          R"("git_remote_url":"https://example.com/r.git","env":{"A":"1"},"memory_high":"2G",)"
          R"("unknown_field":true})"),
      {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r->id, "01ARZ3NDEKTSV4RRFFQ69G5FAV");
  EXPECT_EQ(r->ports, (std::vector<std::uint16_t>{3000, 8080}));
  EXPECT_EQ(r->user_id, "u1");
  EXPECT_EQ(*r->project_id, "p1");
  EXPECT_EQ(r->env.at("A"), "1");
  EXPECT_EQ(r->idle_policy, IdlePolicy::always_on);
}

TEST(Requests, V1CreateDefaultsToPort3000) {
  auto r = parse_v1_create(obj(R"({"project":{"id":"p","user_id":"u"}})"), {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->ports, (std::vector<std::uint16_t>{3000}));
}

struct Bad {
  const char* name;
  bool v1;
  std::string body;
  int status;
  std::string code;
  std::string message;
};

void PrintTo(const Bad& b, std::ostream* os) { *os << b.name; }

class CreateRejects : public ::testing::TestWithParam<Bad> {};

TEST_P(CreateRejects, NamingTheField) {
  const Bad& b = GetParam();
  RequestLimits limits;
  auto r = b.v1 ? parse_v1_create(obj(b.body), limits) : parse_legacy_create(obj(b.body), limits);
  ASSERT_FALSE(r) << b.body;
  EXPECT_EQ(r.error().status, b.status);
  EXPECT_EQ(r.error().code, b.code);
  EXPECT_EQ(r.error().message, b.message);
}

const std::string kProject = R"("project":{"id":"p","user_id":"u"})";

INSTANTIATE_TEST_SUITE_P(
    Table, CreateRejects,
    ::testing::Values(
        Bad{"id_traversal", false, R"({"id":"../../etc/passwd"})", 400, "invalid_id",
            "invalid sandbox id: an id is 26 characters, got 16"},
        Bad{"id_bad_char", false, R"({"id":"01ARZ3NDEKTSV4RRFFQ69G5FAU"})", 400, "invalid_id",
            "invalid sandbox id: an id has only the characters 0-9 and A-Z without I, L, O, U; "
            "position 26 is not one of them"},
        Bad{"id_not_string", false, R"({"id":5})", 400, "invalid_request", "id: must be a string"},
        Bad{"port_string", false, R"({"ports":["3000"]})", 400, "invalid_request",
            "ports[0]: must be an integer"},
        Bad{"port_fraction", false, R"({"ports":[3000.5]})", 400, "invalid_request",
            "ports[0]: must be an integer"},
        Bad{"port_zero", false, R"({"ports":[0]})", 400, "invalid_request",
            "ports[0]: must be between 1 and 65535"},
        Bad{"port_huge", false, R"({"ports":[70000]})", 400, "invalid_request",
            "ports[0]: must be between 1 and 65535"},
        Bad{"port_not_allowed", false, R"({"ports":[80]})", 400, "invalid_request",
            "ports[0]: port 80 is not in preview.allowed_ports"},
        Bad{"port_duplicate", false, R"({"ports":[3000,3000]})", 400, "invalid_request",
            "ports[1]: duplicate port 3000"},
        Bad{"ports_null", false, R"({"ports":null})", 400, "invalid_request",
            "ports: must be an array"},
        Bad{"too_many_ports", false,
            R"({"ports":[2001,2002,2003,2004,2005,2006,2007,2008,2009,2010,2011,2012,2013,2014,2015,2016,2017]})",
            400, "invalid_request", "ports: at most 16 ports"},
        Bad{"visibility", false, R"({"visibility":"secret"})", 400, "invalid_request",
            "visibility: must be \"public\" or \"private\""},
        Bad{"env_bad_name", false, R"({"env":{"1X":"v"}})", 400, "invalid_request",
            "env: invalid variable name \"1X\""},
        Bad{"env_reserved_home", false, R"({"env":{"HOME":"/"}})", 400, "invalid_request",
            "env: variable name HOME is reserved"},
        Bad{"env_reserved_prefix", false, R"({"env":{"SANDBOX_ID":"x"}})", 400, "invalid_request",
            "env: variable name SANDBOX_ID is reserved"},
        Bad{"env_not_string", false, R"({"env":{"A":1}})", 400, "invalid_request",
            "env.A: must be a string"},
        Bad{"env_nul", false, R"({"env":{"A":"a\u0000b"}})", 400, "invalid_request",
            "env: value of A contains NUL"},
        Bad{"git_http", false, R"({"git_remote_url":"http://x/r.git"})", 400, "invalid_request",
            "git_remote_url: must be an https:// URL"},
        Bad{"git_userinfo", false, R"({"git_remote_url":"https://u:p@x/r.git"})", 400,
            "invalid_request", "git_remote_url: must not contain credentials"},
        Bad{"template_name", false, R"({"template":"../x"})", 400, "invalid_request",
            "template: must match [a-z0-9-]{1,64}"},
        Bad{"template_path", false, R"({"template_path":"/etc"})", 400, "invalid_request",
            "template_path: is not supported; use template"},
        Bad{"external_comma", false, R"({"external":{"user_id":"a,b"}})", 400, "invalid_request",
            "external.user_id: must not contain a comma"},
        Bad{"external_empty", false, R"({"external":{"user_id":""}})", 400, "invalid_request",
            "external.user_id: must be 1 to 256 bytes"},
        Bad{"v1_missing_project", true, R"({})", 400, "invalid_request", "project: is required"},
        Bad{"v1_missing_user", true, R"({"project":{"id":"p"}})", 400, "invalid_request",
            "project.user_id: is required"},
        Bad{"v1_unknown_field", true, "{" + kProject + R"(,"prots":[3000]})", 400,
            "invalid_request", "prots: unknown field"},
        Bad{"v1_unknown_nested", true, R"({"project":{"id":"p","user_id":"u","x":1}})", 400,
            "invalid_request", "project.x: unknown field"},
        Bad{"v1_bad_memory", true, "{" + kProject + R"(,"resources":{"memory":"lots"}})", 400,
            "invalid_request", "resources.memory: expected a size like 1GiB"},
        Bad{"v1_bad_dev_port", true, "{" + kProject + R"(,"dev":{"port":0}})", 400,
            "invalid_request", "dev.port: must be between 1 and 65535"},
        Bad{"v1_snapshot", true, "{" + kProject + R"(,"from_snapshot":"s"})", 501,
            "not_implemented", "snapshots are not available in this version"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(Requests, ExecRules) {
  RequestLimits limits;
  EXPECT_EQ(parse_exec(obj("{}"), limits, true).error().message, "cmd: is required");
  EXPECT_EQ(parse_exec(obj(R"({"cmd":[]})"), limits, true).error().message,
            "cmd: must have 1 to 256 items");
  EXPECT_EQ(parse_exec(obj(R"({"cmd":["a",1]})"), limits, true).error().message,
            "cmd[1]: must be a string");
  EXPECT_EQ(parse_exec(obj(R"({"cmd":["a"],"timeout_s":-1})"), limits, true).error().message,
            "timeout_s: must be between 1 and 86400");
  EXPECT_EQ(parse_exec(obj(R"({"cmd":["a"],"cwd":"rel"})"), limits, true).error().message,
            "cwd: must be an absolute path");
  EXPECT_EQ(parse_exec(obj(R"({"cmd":["a"],"detach":true})"), limits, false).has_value(), true)
      << "legacy ignores unknown fields";
  auto ok = parse_exec(obj(R"({"cmd":["sh","-c","echo"],"timeout_s":5,"stream":true})"), limits, true);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->timeout, std::chrono::seconds(5));
  EXPECT_TRUE(ok->stream);
  auto dflt = parse_exec(obj(R"({"cmd":["true"]})"), limits, true);
  ASSERT_TRUE(dflt);
  EXPECT_EQ(dflt->timeout, limits.exec_timeout);
}

TEST(Requests, StopAndKeepalive) {
  EXPECT_EQ(parse_stop(obj(R"({"timeout_s":121})")).error().message,
            "timeout_s: must be between 1 and 120");
  EXPECT_EQ(parse_stop(obj(R"({"force":"yes"})")).error().message, "force: must be true or false");
  auto k = parse_keepalive(obj(R"({"until":0})"));
  ASSERT_TRUE(k);
  EXPECT_EQ(*k->until_unix_s, 0);
  EXPECT_FALSE(parse_keepalive(obj("{}"))->until_unix_s);
}

TEST(Requests, ClaimKeepsOmittedFieldsAndClearsNulls) {
  auto c = parse_claim(obj(R"({"external_user_id":"u2","external_workspace_id":null,"x":1})"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->user_id, "u2");
  EXPECT_FALSE(c->project_id) << "omitted: kept";
  ASSERT_TRUE(c->workspace_id);
  EXPECT_FALSE(*c->workspace_id) << "null: cleared";
  auto p = parse_claim(obj(R"({"external_user_id":"u2","external_project_id":"p9"})"));
  ASSERT_TRUE(p);
  EXPECT_EQ(**p->project_id, "p9");
  EXPECT_EQ(parse_claim(obj("{}")).error().message, "external_user_id: is required");
  EXPECT_FALSE(parse_claim(obj(R"({"external_user_id":""})")));
  EXPECT_FALSE(parse_claim(obj(R"({"external_user_id":"a,b"})")));
  EXPECT_FALSE(parse_claim(obj(R"({"external_user_id":"u","external_project_id":7})")));
}

TEST(Requests, PatchIsAMergePatchOfTheMutableFields) {
  RequestLimits limits;
  auto p = parse_patch(obj(R"({"visibility":"private","ports":[3000,4000],)"
                           R"("keepalive_until":"2026-01-01T00:00:00Z"})"),
                       limits);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(*p->visibility, Visibility::private_);
  EXPECT_EQ(*p->ports, (std::vector<std::uint16_t>{3000, 4000}));
  EXPECT_EQ(**p->keepalive_until_ms, 1767225600000);
  EXPECT_FALSE(p->idle_policy);
  EXPECT_FALSE(p->git_remote_url);

  // null resets to the default.
  auto n = parse_patch(obj(R"({"visibility":null,"idle_policy":null,"ports":null,)"
                           R"("git_remote_url":null,"keepalive_until":null})"),
                       limits);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n->visibility, Visibility::public_);
  EXPECT_EQ(*n->idle_policy, IdlePolicy::sleep);
  EXPECT_EQ(*n->ports, (std::vector<std::uint16_t>{3000}));
  EXPECT_FALSE(*n->git_remote_url);
  EXPECT_FALSE(*n->keepalive_until_ms);
  ASSERT_TRUE(parse_patch(obj("{}"), limits));
  EXPECT_TRUE(parse_patch(obj("{}"), limits)->empty());

  // Everything else is named.
  EXPECT_EQ(parse_patch(obj(R"({"env":{}})"), limits).error().message, "env: unknown field");
  EXPECT_EQ(parse_patch(obj(R"({"keepalive_until":"tomorrow"})"), limits).error().message,
            "keepalive_until: must be an RFC 3339 UTC time like 2026-11-22T15:02:07Z");
  EXPECT_FALSE(parse_patch(obj(R"({"ports":[80]})"), limits));
  EXPECT_FALSE(parse_patch(obj(R"({"git_remote_url":"http://x"})"), limits));
  EXPECT_FALSE(parse_patch(obj(R"({"idle_policy":"never"})"), limits));
}

}  // namespace
}  // namespace sandboxd::control
