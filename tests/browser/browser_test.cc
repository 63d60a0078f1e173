// A real browser in front of the preview edge (SPEC §3.6, §3.9, §3.12): headless Chromium
// opens a sandbox's preview URL, the test app's page opens a WebSocket back through the edge
// and shows the echo. Then the sandbox is stopped and the same URL opened again: the edge
// holds the navigation while the sandbox wakes, so the browser gets the app's page itself,
// with its WebSocket working, and never an error or "still starting" page.
//
// Chromium is a required peer (scripts/install-deps.sh): when it is missing the test fails.
#include "chromium.h"
#include "sandboxd_fixture.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <cstdint>

namespace sandboxd::testing {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// What one visit of a URL showed.
struct Visit {
  std::string navigate_error;  // Page.navigate's errorText ("" when the page loaded)
  struct Document {
    std::int64_t status = 0;
    std::string url;
    std::string wake;  // its X-Sandbox-Wake header ("" when the edge did not hold it)
  };
  std::vector<Document> documents;               // main-frame documents received
  std::vector<std::int64_t> websocket_statuses;  // handshake answers seen by the page
  std::string href, title, host, ws;             // from the page's DOM
};

std::string describe(const Visit& v) {
  std::string out = "navigate_error=\"" + v.navigate_error + "\" documents=[";
  for (const auto& d : v.documents) {
    out += std::to_string(d.status) + " " + d.url + " wake=" + d.wake + "; ";
  }
  out +=
      "] href=" + v.href + " title=\"" + v.title + "\" host=\"" + v.host + "\" ws=\"" + v.ws + "\"";
  return out;
}

class BrowserTest : public SandboxdTest {
 protected:
  // Navigates the tab to `url` (Page.navigate answers once the document's answer came, so
  // it waits as long as the edge holds the request), then polls the page's DOM until its
  // WebSocket result is in, for at most 30 s, and collects what the browser received.
  ::testing::AssertionResult visit(Chromium& browser, const std::string& tab,
                                   const std::string& url, Visit* out) {
    browser.clear_events();
    auto nav = browser.call("Page.navigate", {{"url", url}}, tab, 90s);
    if (!nav) return ::testing::AssertionFailure() << browser.problem();
    if (const auto* error = nav->if_contains("errorText"); error && error->is_string()) {
      out->navigate_error = std::string(error->as_string());
    }
    // The page's script writes the echo (or "error") into #ws; poll the DOM, bounded.
    const std::string probe =
        "JSON.stringify({href: location.href, title: document.title,"
        " host: document.getElementById('host')?.textContent ?? '',"
        " ws: document.getElementById('ws')?.textContent ?? ''})";
    wait_until(
        [&] {
          auto r = browser.call("Runtime.evaluate",
                                {{"expression", probe}, {"returnByValue", true}}, tab, 10s);
          if (!r) return false;
          const json::value* value =
              r->contains("result") ? r->at("result").as_object().if_contains("value") : nullptr;
          if (!value || !value->is_string()) return false;
          boost::system::error_code ec;
          json::value page = json::parse(value->as_string(), ec);
          out->href = str_of(page, "href");
          out->title = str_of(page, "title");
          out->host = str_of(page, "host");
          out->ws = str_of(page, "ws");
          return out->ws == "ping" || out->ws == "error";
        },
        30s);
    for (const auto& e : browser.events()) {
      std::string method = str_of(e, "method");
      const json::value* params = e.if_contains("params");
      if (!params || !params->is_object()) continue;
      if (method == "Network.responseReceived" && str_of(*params, "type") == "Document") {
        const json::value& response = params->at("response");
        Visit::Document d;
        d.status = response.at("status").to_number<std::int64_t>();
        d.url = str_of(response, "url");
        if (const json::value* headers = response.as_object().if_contains("headers")) {
          for (const auto& [name, value] : headers->as_object()) {
            if (lower(name) == "x-sandbox-wake" && value.is_string()) d.wake = value.as_string();
          }
        }
        out->documents.push_back(d);
      } else if (method == "Network.webSocketHandshakeResponseReceived") {
        out->websocket_statuses.push_back(
            params->at("response").at("status").to_number<std::int64_t>());
      }
    }
    return ::testing::AssertionSuccess();
  }

  // The app's page, whole: one 200 document (no error page, no refresh), its WebSocket
  // upgraded (101) and echoed, and the sandbox's hostname. `woken`: the edge held the
  // navigation through a wake (X-Sandbox-Wake: woke;held_ms=N).
  static void expect_app_page(const Visit& v, const std::string& url, const std::string& hostname,
                              bool woken) {
    EXPECT_EQ(v.navigate_error, "") << describe(v);
    ASSERT_EQ(v.documents.size(), 1u) << describe(v);
    EXPECT_EQ(v.documents[0].status, 200) << describe(v);
    EXPECT_EQ(v.documents[0].url, url) << describe(v);
    if (woken) {
      EXPECT_TRUE(v.documents[0].wake.starts_with("woke;held_ms=")) << describe(v);
    } else {
      EXPECT_EQ(v.documents[0].wake, "") << describe(v);
    }
    EXPECT_EQ(v.href, url) << describe(v);
    EXPECT_EQ(v.title, "sandboxd testapp") << describe(v);
    EXPECT_EQ(v.host, hostname) << describe(v);
    EXPECT_EQ(v.ws, "ping") << "the page's WebSocket echo did not arrive: " << describe(v);
    EXPECT_EQ(v.websocket_statuses, std::vector<std::int64_t>{101}) << describe(v);
  }
};

TEST_F(BrowserTest, PageEchoesOverWebSocketAndReopensWhileTheSandboxWakes) {
  std::string problem;
  std::unique_ptr<Chromium> browser = Chromium::launch(&problem);
  ASSERT_TRUE(browser) << problem;

  std::string id = create_v1("u1", "browser");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));  // the app listens
  ASSERT_NE(sd().edge_port(), 0) << sd().log();
  std::string url =
      "http://" + preview_host(id, 3000) + ":" + std::to_string(sd().edge_port()) + "/";
  std::string hostname = preview_host(id, 3000).substr(0, 28);  // "s-<id>" in lower case

  std::string tab = browser->open_tab();
  ASSERT_FALSE(tab.empty()) << browser->problem() << "\n" << browser->log_tail();

  Visit running;
  ASSERT_TRUE(visit(*browser, tab, url, &running)) << browser->log_tail();
  {
    SCOPED_TRACE("sandbox running");
    expect_app_page(running, url, hostname, /*woken=*/false);
  }

  // Leave the page (its WebSocket closes), then stop the sandbox through the API.
  ASSERT_TRUE(browser->call("Page.navigate", {{"url", "about:blank"}}, tab)) << browser->problem();
  auto stopped = sd().post("/v1/sandboxes/" + id + "/stop");
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  ASSERT_EQ(stopped.str("status"), "stopped");

  Visit woken;
  ASSERT_TRUE(visit(*browser, tab, url, &woken)) << browser->log_tail();
  {
    SCOPED_TRACE("sandbox woken by the navigation");
    expect_app_page(woken, url, hostname, /*woken=*/true);
  }
  EXPECT_EQ(sd().get("/v1/sandboxes/" + id).str("status"), "running");
}

}  // namespace
}  // namespace sandboxd::testing
