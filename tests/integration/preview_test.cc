// The preview edge in front of real sandboxes (SPEC §3): a request on
// `s-<id>-<port>.<suffix>` reaches the container's port; a request for a stopped sandbox is
// held while the sandbox wakes and then gets the app's real answer.
#include "raw_http.h"
#include "sandboxd_fixture.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <thread>

namespace sandboxd::testing {
namespace {

class PreviewTest : public SandboxdTest {
 protected:
  std::uint16_t edge_port() { return sd().edge_port(); }

  std::optional<RawResponse> preview_get(const std::string& host, const std::string& accept = "*/*") {
    RawConnection conn(edge_port());
    conn.send("GET / HTTP/1.1\r\nHost: " + host + "\r\nAccept: " + accept +
              "\r\nConnection: close\r\n\r\n");
    return conn.read_response(false, std::chrono::seconds(60));
  }
};

TEST_F(PreviewTest, RunningSandboxAnswersThroughTheEdge) {
  std::string id = create_v1("u1", "preview-running");
  ASSERT_FALSE(id.empty());
  ASSERT_NE(edge_port(), 0) << sd().log();
  std::optional<RawResponse> res;
  // The test image writes its page right after start: wait for it, bounded.
  ASSERT_TRUE(wait_until([&] {
    res = preview_get(preview_host(id, 3000));
    return res && res->status == 200;
  }, 20s)) << (res ? res->body : "no answer");
  std::string lower = preview_host(id, 3000).substr(0, 28);  // "s-<id>" in lower case
  EXPECT_NE(res->body.find(lower), std::string::npos) << res->body;
}

TEST_F(PreviewTest, UnknownSandboxIs404JsonOrHtml) {
  ASSERT_NE(edge_port(), 0);
  std::string host = preview_host("01ARZ3NDEKTSV4RRFFQ69G5FAV", 3000);
  auto json_answer = preview_get(host);
  ASSERT_TRUE(json_answer);
  EXPECT_EQ(json_answer->status, 404);
  EXPECT_NE(json_answer->headers["content-type"].find("application/json"), std::string::npos);
  EXPECT_NE(json_answer->body.find("\"retryable\":false"), std::string::npos) << json_answer->body;
  auto html = preview_get(host, "text/html,application/xhtml+xml");
  ASSERT_TRUE(html);
  EXPECT_EQ(html->status, 404);
  EXPECT_NE(html->headers["content-type"].find("text/html"), std::string::npos);
}

TEST_F(PreviewTest, StoppedSandboxIsWokenOnceForConcurrentRequests) {
  std::string id = create_v1("u1", "preview-wake");
  ASSERT_FALSE(id.empty());
  std::string host = preview_host(id, 3000);
  ASSERT_TRUE(wait_until([&] {
    auto r = preview_get(host);
    return r && r->status == 200;
  }, 20s));
  auto stopped = sd().post("/v1/sandboxes/" + id + "/stop");
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  ASSERT_EQ(stopped.str("status"), "stopped");
  std::string since = engine_now();

  constexpr int kClients = 20;
  std::vector<int> statuses(kClients, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto r = preview_get(host);
      statuses[static_cast<std::size_t>(i)] = r ? r->status : 0;
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(statuses[static_cast<std::size_t>(i)], 200) << i;
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "running");
  EXPECT_EQ(engine_container_starts("s-" + id, since), 1) << "exactly one container start for the wake";
}

}  // namespace
}  // namespace sandboxd::testing
