// Bad input to the control API (SPEC §13, §2.2): every refusal has the family's envelope and
// code, and leaves nothing behind — no row, no workspace or run directory, no container.
#include "sandboxd_fixture.h"

#include "raw_http.h"

#include <filesystem>

namespace sandboxd::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUnknownId = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

class BadInput : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.control_lines = "  max_json_body: 4KiB\n";
    return c;
  }

  // Nothing exists: no sandbox in either list, no workspace or run directory, no container.
  void expect_nothing_left(const std::string& after) {
    SCOPED_TRACE(after);
    EXPECT_EQ(sd().get("/v1/sandboxes").body, R"({"sandboxes":[]})");
    EXPECT_EQ(sd().get("/sandboxes").body, "[]");
    for (const char* sub : {"/workspaces", "/run"}) {
      std::string dir = sd().data_dir() + sub;
      if (!fs::exists(dir)) continue;
      std::vector<std::string> left;
      for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().string());
      EXPECT_TRUE(left.empty()) << left.front();
    }
    EXPECT_TRUE(instance_container_ids(sd()).empty());
    EXPECT_TRUE(engine_containers_on_network(sd().network()).empty());
  }

  // A refused create: `status`, the family's envelope with `code`, and `mentions` in the
  // message.
  void expect_refused(const std::string& path, const std::string& body, int status,
                      const std::string& code, const std::string& mentions = "",
                      const std::vector<std::string>& headers = {}) {
    SCOPED_TRACE(path + " " + body.substr(0, 200));
    Answer a = sd().call("POST", path, body, headers);
    EXPECT_EQ(a.status, status) << a.body;
    expect_envelope(a, path, code);
    EXPECT_NE(a.body.find(mentions), std::string::npos) << a.body;
  }

  static void expect_envelope(const Answer& a, const std::string& path, const std::string& code) {
    ASSERT_TRUE(a.json.is_object()) << a.body;
    if (path.starts_with("/v1/")) {
      const json::value* e = a.json.get_object().if_contains("error");
      ASSERT_TRUE(e && e->is_object()) << a.body;
      EXPECT_EQ(str_of(*e, "code"), code) << a.body;
      EXPECT_FALSE(str_of(*e, "message").empty()) << a.body;
      bool retryable = a.status == 429 || a.status == 502 || a.status == 503 || a.status == 504;
      EXPECT_EQ(e->at("retryable"), json::value(retryable)) << a.body;
    } else {
      EXPECT_EQ(a.str("code"), code) << a.body;
      EXPECT_FALSE(a.str("error").empty()) << a.body;
    }
  }
};

TEST_F(BadInput, MalformedIdsAreRefusedBeforeAnyLookup) {
  const std::vector<std::string> bad = {
      "..%2F..%2F..%2Fetc",          // traversal, decoded once
      "%2E%2E",                      // ".."
      "..",                          // ".." itself
      "0123456789ABCDEFGHJKMNPQR",   // 25 characters
      "0123456789ABCDEFGHJKMNPQRST", // 27
      "0123456789ABCDEFGHJKMNPQRI",  // I (a Crockford alias is refused, not mapped)
      "0123456789ABCDEFGHJKMNPQRU",  // U
      "0123456789ABCDEFGHJKMNPQR.",  // a dot
      "0123456789ABCDEFGHJKMNPQR-",  // a hyphen
      "0123456789ABCDEFGHJKMNPQR%20",
      "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",  // above 128 bits
      "%ZZ",                         // a broken escape
  };
  struct Route {
    std::string method;
    std::string pattern;  // {} is the id
  };
  const std::vector<Route> routes = {
      {"GET", "/v1/sandboxes/{}"},        {"DELETE", "/v1/sandboxes/{}"},
      {"POST", "/v1/sandboxes/{}/start"}, {"POST", "/v1/sandboxes/{}/stop"},
      {"POST", "/v1/sandboxes/{}/exec"},  {"GET", "/sandbox/{}"},
      {"DELETE", "/sandbox/{}"},          {"POST", "/sandbox/{}/exec"},
      {"POST", "/sandbox/{}/purge"},      {"POST", "/sandbox/{}/keepalive"},
      {"POST", "/wake/{}"},
  };
  for (const auto& id : bad) {
    for (const auto& r : routes) {
      std::string path = r.pattern;
      path.replace(path.find("{}"), 2, id);
      std::string body = path.ends_with("/exec") ? R"({"cmd":["true"]})" : "";
      Answer a = sd().call(r.method, path, body);
      SCOPED_TRACE(r.method + " " + path);
      EXPECT_EQ(a.status, 400) << a.body;
      expect_envelope(a, path, "invalid_id");
    }
  }
  // In a body too.
  expect_refused("/v1/sandboxes", R"({"id":"..%2F..","project":{"id":"p","user_id":"u"}})", 400,
                 "invalid_id");
  expect_refused("/sandbox", R"({"id":"../../etc"})", 400, "invalid_id");
  expect_refused("/sandbox", R"({"id":"0123456789abcdefghjkmnpqrs0"})", 400, "invalid_id");
  // A list filter is not an id, but an unknown status filters to nothing.
  EXPECT_EQ(sd().get("/v1/sandboxes?status=..%2F").body, R"({"sandboxes":[]})");
  expect_nothing_left("malformed ids");
  EXPECT_TRUE(fs::is_directory(sd().data_dir() + "/workspaces"));
}

TEST_F(BadInput, UnknownIdsAre404ExceptWhereDeletingIsSafeToRetry) {
  std::string id = kUnknownId;
  struct Case {
    std::string method, path;
    int status;
  };
  const std::vector<Case> cases = {
      {"GET", "/v1/sandboxes/" + id, 404},          {"POST", "/v1/sandboxes/" + id + "/start", 404},
      {"POST", "/v1/sandboxes/" + id + "/stop", 404}, {"DELETE", "/v1/sandboxes/" + id, 204},
      {"GET", "/sandbox/" + id, 404},               {"DELETE", "/sandbox/" + id, 404},
      {"POST", "/sandbox/" + id + "/keepalive", 404},
  };
  for (const auto& c : cases) {
    Answer a = sd().call(c.method, c.path);
    EXPECT_EQ(a.status, c.status) << c.method << " " << c.path << ": " << a.body;
    if (c.status == 404) expect_envelope(a, c.path, "not_found");
    if (c.status == 204) {
      EXPECT_EQ(a.body, "");
    }
  }
  Answer v1_exec = exec(id, {"true"});
  EXPECT_EQ(v1_exec.status, 404);
  expect_envelope(v1_exec, "/v1/", "not_found");
  Answer legacy_exec = sd().post("/sandbox/" + id + "/exec", R"({"cmd":["true"]})");
  EXPECT_EQ(legacy_exec.status, 404);
  expect_envelope(legacy_exec, "/sandbox", "not_found");
  Answer wake = sd().post("/wake/" + id);
  EXPECT_EQ(wake.status, 404);
  EXPECT_EQ(wake.body, R"({"error":"not_found"})");
  Answer purge = sd().post("/sandbox/" + id + "/purge");
  EXPECT_EQ(purge.status, 200);
  EXPECT_EQ(purge.body, R"({"purged":true,"freed_bytes":0})");
  // Unknown routes and methods.
  Answer route = sd().get("/v1/nothing-here");
  EXPECT_EQ(route.status, 404);
  expect_envelope(route, "/v1/", "not_found");
  Answer method = sd().call("PUT", "/v1/sandboxes/" + id, "{}");
  EXPECT_EQ(method.status, 405);
  expect_envelope(method, "/v1/", "method_not_allowed");
  EXPECT_NE(method.header("allow").find("DELETE"), std::string::npos) << method.header("allow");
  // GET routes answer HEAD; OPTIONS is not served (no CORS).
  Answer head = sd().call("HEAD", "/v1/sandboxes");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  Answer options = sd().call("OPTIONS", "/v1/sandboxes");
  EXPECT_EQ(options.status, 405);
  EXPECT_NE(options.header("allow").find("GET"), std::string::npos) << options.header("allow");
  expect_nothing_left("unknown ids");
}

TEST_F(BadInput, LowerAndMixedCaseIdsAreTheCanonicalId) {
  std::string canonical = "01KZ3NDEKTSV4RRFFQ69G5FAVA";
  std::string lower = "01kz3ndektsv4rrffq69g5fava";
  std::string mixed = "01kZ3NDektsv4RRFFQ69g5favA";
  Answer made = sd().post("/v1/sandboxes",
                          R"({"id":")" + lower + R"(","project":{"id":"p","user_id":"u"}})");
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(made.str("id"), canonical);
  EXPECT_EQ(sd().get("/v1/sandboxes/" + mixed).str("id"), canonical);
  EXPECT_EQ(str_of(sd().get("/sandbox/" + lower).json.at("row"), "id"), canonical);
  EXPECT_TRUE(fs::is_directory(sd().workspace(canonical)));
  EXPECT_FALSE(fs::exists(sd().data_dir() + "/workspaces/" + lower));
  EXPECT_TRUE(engine_inspect("s-" + canonical));
  // The same id in another case is the same sandbox, not a second one.
  Answer again = sd().post("/sandbox", R"({"id":")" + mixed + R"("})");
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_EQ(sd().del("/v1/sandboxes/" + mixed).status, 204);
  expect_nothing_left("purge by mixed case");
}

TEST_F(BadInput, MalformedJsonIs400WithTheByteOffset) {
  const std::string p = R"("project":{"id":"p","user_id":"u"})";
  for (const std::string path : {"/v1/sandboxes", "/sandbox"}) {
    expect_refused(path, R"({"ports":[3000)", 400, "invalid_request", "byte");
    expect_refused(path, "{\"a\":1} trailing", 400, "invalid_request", "byte");
    expect_refused(path, "[1,2]", 400, "invalid_request", "object");
    expect_refused(path, "\"text\"", 400, "invalid_request");
    expect_refused(path, "{\"id\":\"\xff\xfe\"}", 400, "invalid_request", "byte");
    expect_refused(path, R"({"ports":[3000],"ports":[3001],)" + p + "}", 400,
                   "invalid_request", "ports");
    expect_refused(path, std::string(40, '[') + std::string(40, ']'), 400, "invalid_request",
                   "nesting deeper than 32");
    expect_refused(path, R"({"ports":["3000"],)" + p + "}", 400, "invalid_request", "ports[0]");
    expect_refused(path, R"({"ports":[3000.5],)" + p + "}", 400, "invalid_request", "ports[0]");
    expect_refused(path, R"({"ports":null,)" + p + "}", 400, "invalid_request", "ports");
    expect_refused(path, R"({"visibility":null,)" + p + "}", 400, "invalid_request",
                   "visibility");
    expect_refused(path, R"({"visibility":"secret",)" + p + "}", 400, "invalid_request",
                   "visibility");
    expect_refused(path, R"({"idle_policy":3,)" + p + "}", 400, "invalid_request",
                   "idle_policy");
  }
  // v1 requires the project and refuses unknown fields; legacy ignores them.
  expect_refused("/v1/sandboxes", "{}", 400, "invalid_request", "project");
  expect_refused("/v1/sandboxes", "", 400, "invalid_request");
  expect_refused("/v1/sandboxes", R"({"project":{"id":"p"}})", 400, "invalid_request",
                 "project.user_id");
  expect_refused("/v1/sandboxes", "{" + p + R"(,"colour":"red"})", 400, "invalid_request",
                 "colour");
  expect_refused("/v1/sandboxes", R"({"project":{"id":"p","user_id":"u","team":"x"}})", 400,
                 "invalid_request", "project.team");
  expect_refused("/v1/sandboxes", R"({"project":{"id":"p","user_id":"a,b"}})", 400,
                 "invalid_request", "project.user_id");
  expect_refused("/v1/sandboxes", R"({"project":{"id":"","user_id":"u"}})", 400,
                 "invalid_request", "project.id");
  expect_refused("/sandbox", R"({"template_path":"/etc"})", 400, "invalid_request",
                 "template_path");
  expect_refused("/sandbox", R"({"template":"../etc"})", 400, "invalid_request", "template");
  expect_refused("/sandbox", R"({"template":"nope"})", 400, "invalid_request", "template");
  expect_refused("/sandbox", R"({"git_remote_url":"http://example.com/x.git"})", 400,
                 "invalid_request", "git_remote_url");
  expect_refused("/sandbox", R"({"git_remote_url":"https://user:pw@example.com/x.git"})", 400,
                 "invalid_request", "git_remote_url");
  expect_refused("/sandbox", R"({"external":{"user_id":""}})", 400, "invalid_request",
                 "external.user_id");
  // Exec bodies.
  expect_refused("/v1/sandboxes/" + std::string(kUnknownId) + "/exec", "{}", 400,
                 "invalid_request", "cmd");
  expect_refused("/v1/sandboxes/" + std::string(kUnknownId) + "/exec", R"({"cmd":[]})", 400,
                 "invalid_request", "cmd");
  expect_refused("/v1/sandboxes/" + std::string(kUnknownId) + "/exec",
                 R"({"cmd":["true"],"timeout_s":-1})", 400, "invalid_request", "timeout_s");
  expect_refused("/sandbox/" + std::string(kUnknownId) + "/exec",
                 R"({"cmd":["true"],"timeout_s":0})", 400, "invalid_request", "timeout_s");
  expect_refused("/v1/sandboxes/" + std::string(kUnknownId) + "/exec",
                 R"({"cmd":["true"],"cwd":"relative"})", 400, "invalid_request", "cwd");
  expect_nothing_left("malformed JSON");
}

TEST_F(BadInput, BadPortsAndEnvAreRefusedWithNothingLeftBehind) {
  const std::string p = R"("project":{"id":"p","user_id":"u"})";
  for (const std::string path : {"/v1/sandboxes", "/sandbox"}) {
    expect_refused(path, R"({"ports":[3000,3000],)" + p + "}", 400, "invalid_request",
                   "duplicate");
    expect_refused(path, R"({"ports":[0],)" + p + "}", 400, "invalid_request", "ports[0]");
    expect_refused(path, R"({"ports":[70000],)" + p + "}", 400, "invalid_request", "ports[0]");
    expect_refused(path, R"({"ports":[-1],)" + p + "}", 400, "invalid_request", "ports[0]");
    expect_refused(path, R"({"ports":[80],)" + p + "}", 400, "invalid_request", "ports[0]");
    expect_refused(path, R"({"ports":[3000,99999999999999999999],)" + p + "}", 400,
                   "invalid_request");
    std::string many = "[";
    for (int i = 0; i < 17; ++i) many += (i ? "," : "") + std::to_string(3000 + i);
    expect_refused(path, R"({"ports":)" + many + "]," + p + "}", 400, "invalid_request", "ports");
    for (const std::string& name : std::vector<std::string>{"1ABC", "A-B", "", "A B", "HOME",
                                                           "SANDBOX_ID", "SANDBOX_X",
                                                           "SANDBOXD_TOKEN", std::string(129, 'A')}) {
      json::object env{{name, "v"}};
      expect_refused(path, R"({"env":)" + json::serialize(env) + "," + p + "}", 400,
                     "invalid_request", "env");
    }
    expect_refused(path, R"({"env":{"OK":"a\u0000b"},)" + p + "}", 400, "invalid_request", "env");
    expect_refused(path, R"({"env":{"OK":1},)" + p + "}", 400, "invalid_request", "env.OK");
    expect_refused(path, R"({"env":["A=b"],)" + p + "}", 400, "invalid_request", "env");
    // Over the entry count (and no secret value ever echoed back).
    json::object env;
    for (int i = 0; i < 129; ++i) env["V" + std::to_string(i)] = "s3cret-value";
    std::string big = R"({"env":)" + json::serialize(env) + "," + p + "}";
    Answer a = sd().post(path, big);
    EXPECT_EQ(a.status, 400) << a.body;
    EXPECT_EQ(a.body.find("s3cret-value"), std::string::npos) << a.body;
  }
  expect_nothing_left("bad ports and env");
}

TEST_F(BadInput, OversizedBodiesAre413AndWrongTypes415) {
  const std::string p = R"("project":{"id":"p","user_id":"u"})";
  // max_json_body is 4KiB here: declared by Content-Length.
  std::string big = R"({"git_remote_url":"https://example.com/)" + std::string(5000, 'a') +
                    R"(",)" + p + "}";
  for (const std::string path : {"/v1/sandboxes", "/sandbox"}) {
    RawConnection conn(sd().port());
    conn.send("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              "Content-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big);
    auto r = conn.read_response();
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 413) << r->body;
    Answer a;
    a.status = r->status;
    a.body = r->body;
    a.json = json::parse(r->body);
    expect_envelope(a, path, "payload_too_large");
    EXPECT_TRUE(conn.wait_closed()) << "the connection closes after a 413";
  }
  // Chunked, so the size shows only while reading.
  {
    RawConnection conn(sd().port());
    std::string head = "POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n";
    std::string body;
    for (std::size_t at = 0; at < big.size(); at += 1000) {
      std::string piece = big.substr(at, 1000);
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
      body += size + piece + "\r\n";
    }
    conn.send(head + body + "0\r\n\r\n");
    auto r = conn.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413) << r->body;
  }
  // Just under the limit is fine as far as size goes (then refused for its content).
  std::string fits = R"({"git_remote_url":"http://)" + std::string(3000, 'a') + R"(",)" + p + "}";
  expect_refused("/v1/sandboxes", fits, 400, "invalid_request", "git_remote_url");

  // Content-Type: JSON (with a charset) or none; anything else is 415.
  for (const std::string type : {"text/plain", "application/x-www-form-urlencoded",
                                 "multipart/form-data; boundary=x", "application/jsonx"}) {
    expect_refused("/v1/sandboxes", "{" + p + "}", 415, "unsupported_media_type", "",
                   {"Content-Type: " + type});
    expect_refused("/sandbox", "{}", 415, "unsupported_media_type", "", {"Content-Type: " + type});
  }
  expect_nothing_left("oversized and mistyped");
  Answer charset = sd().call("POST", "/v1/sandboxes", "{" + p + "}",
                             {"Content-Type: application/json; charset=utf-8"});
  EXPECT_EQ(charset.status, 201) << charset.body;
  RawConnection conn(sd().port());
  conn.send("POST /sandbox HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
  auto untyped = conn.read_response(false, 60s);
  ASSERT_TRUE(untyped);
  EXPECT_EQ(untyped->status, 201) << "a body without Content-Type is read as JSON: "
                                  << untyped->body;
}

TEST_F(BadInput, FailuresAfterValidationLeaveNothingBehind) {
  // A container named like the sandbox but not ours: 409, and the create is rolled back.
  std::string id = "01KZ3NDEKTSV4RRFFQ69G5FAVB";
  json::object spec{{"Image", "sandboxd-test:latest"},
                    {"HostConfig", json::object{{"NetworkMode", sd().network()}}}};
  EngineAnswer squatter = engine_call("POST", "/containers/create?name=s-" + id,
                                      json::serialize(spec));
  ASSERT_EQ(squatter.status, 201) << squatter.body;
  Answer taken = sd().post("/v1/sandboxes",
                           R"({"id":")" + id + R"(","project":{"id":"p","user_id":"u"}})");
  EXPECT_EQ(taken.status, 409) << taken.body;
  EXPECT_EQ(taken.error_code(), "conflict");
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).status, 404);
  EXPECT_FALSE(fs::exists(sd().workspace(id)));
  auto still = engine_inspect("s-" + id);
  ASSERT_TRUE(still) << "the squatter is never removed";
  EXPECT_EQ(str_of(*still, "Id"), str_of(squatter.json(), "Id"));
  engine_call("DELETE", "/containers/s-" + id + "?force=1");
  expect_nothing_left("name taken");
}

TEST(BadInputImage, MissingImageIs500NamingItAndNothingIsWritten) {
  std::string problem;
  ASSERT_TRUE(ensure_test_image(&problem)) << problem;
  SandboxdConfig config;
  config.image = "sandboxd-no-such-image:latest";
  Sandboxd s(unique_network_name(), config);
  ASSERT_TRUE(s.start());
  Answer a = s.post("/v1/sandboxes", R"({"project":{"id":"p","user_id":"u"}})");
  EXPECT_EQ(a.status, 500) << a.body;
  EXPECT_EQ(a.error_code(), "internal");
  EXPECT_NE(a.body.find("sandboxd-no-such-image:latest"), std::string::npos) << a.body;
  EXPECT_EQ(s.get("/v1/sandboxes").body, R"({"sandboxes":[]})");
  EXPECT_TRUE(fs::is_empty(s.data_dir() + "/workspaces"));
  s.kill9();
  engine_purge(s.network(), {s.instance()});
}

}  // namespace
}  // namespace sandboxd::testing
