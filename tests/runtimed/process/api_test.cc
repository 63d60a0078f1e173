// Authentication and bad input on runtimed's socket (SPEC §6.2 "Use", §6.3, §13).
#include "harness.h"

#include <gtest/gtest.h>

namespace sandboxd::runtimed::testing {
namespace {

namespace json = boost::json;

std::string code_of(const Response& r) {
  auto body = r.json();
  const json::value* err = body.if_contains("error");
  if (!err || !err->is_object()) return "<no error>";
  return std::string(err->as_object().at("code").as_string());
}

std::string message_of(const Response& r) {
  return std::string(r.json()["error"].as_object()["message"].as_string());
}

TEST(RuntimedApi, EveryRouteNeedsTheSecret) {
  Runtimed rt;
  ASSERT_TRUE(rt.start());
  std::string wrong = "Authorization: Bearer " + std::string(64, '0');
  std::string lower = "Authorization: bearer " + rt.secret();
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/status"},
           {"GET", "/devserver"},
           {"POST", "/devserver/restart"},
           {"GET", "/devserver/log"},
           {"GET", "/tasks"},
           {"POST", "/tasks"},
           {"GET", "/tasks/01J00000000000000000000001"},
           {"GET", "/tasks/01J00000000000000000000001/events"},
           {"POST", "/tasks/01J00000000000000000000001/cancel"},
           {"GET", "/no/such/path"}}) {
    for (const std::vector<std::string>& headers :
         {std::vector<std::string>{}, std::vector<std::string>{wrong},
          std::vector<std::string>{"Authorization: Basic " + rt.secret()},
          std::vector<std::string>{"Authorization: Bearer " + rt.secret() + "x"},
          std::vector<std::string>{"Authorization: Bearer"}}) {
      auto r = http(rt.socket(), method, target, "", headers);
      ASSERT_TRUE(r) << method << " " << target;
      EXPECT_EQ(r->status, 401) << method << " " << target;
      EXPECT_EQ(code_of(*r), "unauthorized");
      EXPECT_EQ(r->body.find(rt.secret()), std::string::npos);
    }
  }
  auto ok = http(rt.socket(), "GET", "/status", "", {lower});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);  // the scheme is case-insensitive
}

TEST(RuntimedApi, BadInputGetsAClearAnswerAndNothingBreaks) {
  Runtimed rt;
  ASSERT_TRUE(rt.start());
  std::string id = new_task_id();

  struct Case {
    std::string method, target, body;
    int status;
    std::string code;
    std::string words;  // in the message
  };
  std::vector<Case> cases{
      {"POST", "/tasks", "{\"id\":", 400, "invalid_request", "byte"},
      {"POST", "/tasks", "[1,2]", 400, "invalid_request", "object"},
      {"POST", "/tasks", "", 400, "invalid_request", ""},
      {"POST", "/tasks", R"({"id":"x","id":"y"})", 400, "invalid_request", "duplicate"},
      {"POST", "/tasks", R"({"agent":"command","argv":["true"]})", 400, "invalid_request", "id"},
      {"POST", "/tasks", R"({"id":")" + id + R"(","agent":"command"})", 400, "invalid_request", "argv"},
      {"POST", "/tasks", R"({"id":")" + id + R"(","agent":"command","argv":["true"],"prompt":"x"})", 400,
       "invalid_request", "prompt"},
      {"POST", "/tasks", R"({"id":")" + id + R"(","agent":"command","argv":["true"],"env":{"HOME":"/"}})", 400,
       "invalid_request", "HOME"},
      {"POST", "/tasks", R"({"id":")" + id + R"(","agent":"command","argv":["true"],"timeout_s":0})", 400,
       "invalid_request", "timeout_s"},
      {"POST", "/tasks", R"({"id":")" + id + R"(","agent":"command","argv":["true"],"cwd":"/etc"})", 400,
       "invalid_request", "cwd"},
      {"POST", "/tasks", R"({"id":")" + id + R"(","agent":"command","argv":["true"],"cwd":"missing/dir"})", 400,
       "invalid_request", "no such directory"},
      {"POST", "/tasks", R"({"id":")" + id + R"(","agent":"gpt","prompt":"x"})", 400, "invalid_request", "agent"},
      {"GET", "/tasks/" + new_task_id(), "", 404, "no_such_task", ""},
      {"GET", "/tasks/not-a-task-id", "", 404, "no_such_task", "not a valid"},
      {"GET", "/tasks/" + new_task_id() + "/events", "", 404, "no_such_task", ""},
      {"POST", "/tasks/" + new_task_id() + "/cancel", "", 404, "no_such_task", ""},
      {"GET", "/tasks?limit=0", "", 400, "invalid_request", "limit"},
      {"GET", "/tasks?limit=201", "", 400, "invalid_request", "limit"},
      {"GET", "/tasks?limit=abc", "", 400, "invalid_request", "limit"},
      {"GET", "/tasks?limit=1&limit=2", "", 400, "invalid_request", "repeated"},
      {"GET", "/devserver/log?tail=10001", "", 400, "invalid_request", "tail"},
      {"GET", "/devserver/log?tail=-1", "", 400, "invalid_request", "tail"},
      {"POST", "/devserver/restart", R"({"port":0})", 400, "invalid_request", "port"},
      {"POST", "/devserver/restart", R"({"command":5})", 400, "invalid_request", "command"},
      {"POST", "/devserver/restart", "{oops", 400, "invalid_request", "byte"},
      {"GET", "/nope", "", 404, "not_found", ""},
      {"GET", "/tasks/" + id + "/extra", "", 404, "not_found", ""},
      {"DELETE", "/tasks", "", 405, "method_not_allowed", ""},
      {"POST", "/status", "", 405, "method_not_allowed", ""},
      {"GET", "/tasks/" + id + "/cancel", "", 405, "method_not_allowed", ""},
  };
  for (const Case& c : cases) {
    Response r = rt.request(c.method, c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << " " << c.body << " -> " << r.body;
    EXPECT_EQ(code_of(r), c.code) << c.target << " " << r.body;
    if (!c.words.empty()) {
      EXPECT_NE(message_of(r).find(c.words), std::string::npos) << r.body;
    }
  }
  EXPECT_EQ(rt.request("DELETE", "/tasks").headers["allow"], "GET, POST");
  EXPECT_EQ(rt.request("GET", "/devserver/restart").headers["allow"], "POST");

  // A finished task's bad `since`.
  std::string done = rt.submit_command({"true"});
  rt.wait_final(done);
  for (const char* q : {"?since=-1", "?since=x", "?since=1&since=2"}) {
    Response r = rt.get("/tasks/" + done + "/events" + q);
    EXPECT_EQ(r.status, 400) << q;
    EXPECT_EQ(code_of(r), "invalid_request");
  }
  Response bad_header = rt.request("GET", "/tasks/" + done + "/events", "", {"Last-Event-ID: abc"});
  EXPECT_EQ(bad_header.status, 400);

  // Bodies over 1 MiB: refused from Content-Length, and when chunked.
  std::string big(1024 * 1024 + 1, ' ');
  Response too_big = rt.request("POST", "/tasks", big);
  EXPECT_EQ(too_big.status, 413);
  EXPECT_EQ(code_of(too_big), "payload_too_large");
  std::string chunked = "POST /tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + rt.secret() +
                        "\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) chunked += "10000\r\n" + std::string(0x10000, ' ') + "\r\n";
  chunked += "0\r\n\r\n";
  auto chunked_answer = http(rt.socket(), "", "", "", {}, 10s, chunked);
  ASSERT_TRUE(chunked_answer);
  EXPECT_EQ(chunked_answer->status, 413);
  // Without the secret the size is never judged.
  auto anonymous = http(rt.socket(), "POST", "/tasks", big, {});
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);

  // Not HTTP at all.
  auto garbage = http(rt.socket(), "", "", "", {}, 10s, "hello there\r\n\r\n");
  ASSERT_TRUE(garbage);
  EXPECT_EQ(garbage->status, 400);

  // Nothing broke: the API still answers and a task still runs.
  EXPECT_EQ(rt.get("/status").status, 200);
  std::string after = rt.submit_command({"echo", "still fine"});
  EXPECT_EQ(rt.wait_final(after)["status"].as_string(), "succeeded");
}

TEST(RuntimedApi, KeepAliveServesSeveralRequestsOnOneConnection) {
  Runtimed rt;
  ASSERT_TRUE(rt.start());
  std::string auth = "Authorization: Bearer " + rt.secret() + "\r\n";
  std::string two = "GET /status HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n" +
                    "GET /devserver HTTP/1.1\r\nHost: x\r\n" + auth + "Connection: close\r\n\r\n";
  auto r = http(rt.socket(), "", "", "", {}, 10s, two);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("\"state\""), std::string::npos);  // both answers arrived
  EXPECT_NE(r->body.find("HTTP/1.1 200"), std::string::npos);
}

}  // namespace
}  // namespace sandboxd::runtimed::testing
