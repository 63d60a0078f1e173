// Network isolation (SPEC §5.4, §2.3): sandboxes cannot reach each other, while the host can
// reach each of them; a sandbox cannot use the control API.
#include "sandboxd_fixture.h"

#include "raw_http.h"

namespace sandboxd::testing {
namespace {

using Isolation = SandboxdTest;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The address of the host on a Docker network (its bridge's gateway).
std::string gateway_of(const std::string& network) {
  json::value n = engine_call("GET", "/networks/" + network).json();
  if (!n.is_object()) return "";
  const json::value* config = n.at("IPAM").get_object().if_contains("Config");
  if (!config || !config->is_array() || config->get_array().empty()) return "";
  return str_of(config->get_array()[0], "Gateway");
}

std::string ip_of(Sandboxd& s, const std::string& id) {
  Answer a = s.get("/sandbox/" + id);
  return a.json.is_object() ? str_of(a.json.at("row"), "container_ip") : "";
}

// busybox wget -T crashes in this image, so the whole fetch is bounded by `timeout`.
std::vector<std::string> fetch(const std::string& url, const std::string& header = "") {
  std::string cmd = "timeout 3 wget -q -O - ";
  if (!header.empty()) cmd += "--header '" + header + "' ";
  return {"sh", "-c", cmd + url};
}

TEST_F(Isolation, SandboxesCannotReachEachOtherButTheHostReachesBoth) {
  std::string a = create_v1("u", "a");
  std::string b = create_v1("u", "b");
  ASSERT_FALSE(a.empty() || b.empty());
  ASSERT_TRUE(wait_init_ready(a));
  ASSERT_TRUE(wait_init_ready(b));
  std::string ip_b = ip_of(sd(), b);
  ASSERT_FALSE(ip_b.empty());

  // The host reaches B's page on its container address.
  try {
    RawConnection conn(ip_b, 3000);
    conn.send("GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(conn.read_until("s-" + lower(b), 10s)) << conn.received();
  } catch (const std::exception& e) {
    FAIL() << "host cannot reach " << ip_b << ":3000: " << e.what();
  }
  // A reaches its own server (so wget works) but not B's, by TCP or by HTTP.
  Answer own = exec(a, fetch("http://127.0.0.1:3000/"));
  EXPECT_EQ(own.json.at("exit_code"), json::value(0)) << own.body;
  EXPECT_NE(own.str("stdout").find("s-" + lower(a)), std::string::npos) << own.body;
  Answer cross = exec(a, fetch("http://" + ip_b + ":3000/"));
  ASSERT_EQ(cross.status, 200) << cross.body;
  EXPECT_NE(cross.json.at("exit_code"), json::value(0)) << cross.body;
  EXPECT_EQ(cross.str("stdout").find("s-" + lower(b)), std::string::npos) << cross.body;
  Answer tcp = exec(a, {"sh", "-c", "echo | timeout 3 nc " + ip_b + " 3000 && echo connected"});
  EXPECT_EQ(tcp.str("stdout").find("connected"), std::string::npos) << tcp.body;
}

TEST_F(Isolation, SandboxCannotReachTheControlApiOnLoopback) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  std::string gateway = gateway_of(sd().network());
  ASSERT_FALSE(gateway.empty());
  std::string port = std::to_string(sd().port());
  for (const std::string& host : {gateway, std::string("127.0.0.1")}) {
    Answer a = exec(id, fetch("http://" + host + ":" + port + "/healthz"));
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_NE(a.json.at("exit_code"), json::value(0)) << host << ": " << a.body;
    EXPECT_EQ(a.str("stdout"), "") << host;
  }
}

TEST_F(Isolation, ControlApiOnAllAddressesRefusesTheSandboxNetwork) {
  // A second sandboxd listening on every address, with a token: the sandbox can open a
  // connection to it, and every route (open ones too, with or without the token) is 403.
  SandboxdConfig config;
  config.listen = "0.0.0.0:0";
  config.extra = "auth:\n"
                 "  tokens:\n"
                 "    - name: ci\n"
                 "      secret: isolation-test-secret-0123\n";
  Sandboxd& open = add_sandboxd(config);
  ASSERT_TRUE(open.start());
  open.set_token("isolation-test-secret-0123");
  Answer made = open.post("/v1/sandboxes", R"({"project":{"id":"p","user_id":"u"}})");
  ASSERT_EQ(made.status, 201) << made.body;
  std::string id = made.str("id");
  // The host itself is let in.
  EXPECT_EQ(open.get("/v1/sandboxes/" + id).status, 200);

  std::string base = "http://" + gateway_of(open.network()) + ":" + std::to_string(open.port());
  struct Probe {
    std::string what;
    std::string script;
  };
  std::vector<Probe> probes = {
      {"open route", "timeout 3 wget -S -O - " + base + "/healthz"},
      {"no token", "timeout 3 wget -S -O - " + base + "/v1/sandboxes"},
      {"with token", "timeout 3 wget -S -O - --header 'Authorization: Bearer "
                     "isolation-test-secret-0123' " + base + "/v1/sandboxes"},
      {"create", "timeout 3 wget -S -O - --header 'Authorization: Bearer "
                 "isolation-test-secret-0123' --header 'Content-Type: application/json' "
                 "--post-data '{\"project\":{\"id\":\"x\",\"user_id\":\"y\"}}' " + base +
                     "/v1/sandboxes"},
  };
  for (const auto& p : probes) {
    std::string body = R"({"cmd":)" + json_argv({"sh", "-c", p.script + " 2>&1"}) + "}";
    Answer a = open.post("/v1/sandboxes/" + id + "/exec", body);
    ASSERT_EQ(a.status, 200) << a.body;
    std::string out = a.str("stdout");
    EXPECT_NE(out.find("HTTP/1.1 403"), std::string::npos) << p.what << ": " << out;
    EXPECT_EQ(out.find("HTTP/1.1 2"), std::string::npos) << p.what << ": " << out;
  }
  // Nothing was created from inside.
  Answer listed = open.get("/v1/sandboxes");
  ASSERT_TRUE(listed.json.is_object()) << listed.body;
  EXPECT_EQ(listed.json.at("sandboxes").get_array().size(), 1u) << listed.body;
}

}  // namespace
}  // namespace sandboxd::testing
