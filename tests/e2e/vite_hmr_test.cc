// Issue 6, end to end: a sandbox of the full base image (sandboxd-base:latest, built by
// image/build-base-image.sh) runs a Vite dev server; headless Chromium opens its preview URL
// through the edge; an edit made through the files API (SPEC §2.7.9) reaches the open page
// by Vite's hot module replacement, over a WebSocket that the edge tunnels (SPEC §3.9).
//
// The project is what an agent would write: a package.json whose `dev` script runs the
// image's global `vite`, which runtimed finds and starts on its own (SPEC §6.7, empty
// `sandbox.dev_command`). It has no node_modules, so its vite.config.mjs imports nothing.
//
// What proves HMR rather than a reload: a marker set on `window` survives both edits, the
// tab received exactly one document, and the update messages arrived as frames of the page's
// WebSocket, whose URL is the preview host on the edge's port.
//
// The image and Chromium are required: when either is missing the test fails.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "chromium.h"
#include "raw_http.h"
#include "sandboxd_fixture.h"

namespace sandboxd::testing {
namespace {

constexpr const char* kBaseImage = "sandboxd-base:latest";

// Written last: runtimed starts `npm run dev` once this file appears.
constexpr const char* kPackageJson = R"({
  "name": "hmr-e2e",
  "private": true,
  "type": "module",
  "scripts": { "dev": "vite web --host 0.0.0.0 --port 3000 --strictPort" }
}
)";

// Nothing comes from 'vite' (there is no node_modules). Vite >= 6.0.9 refuses Host headers
// it does not know; previews have the sandbox's own host name. The HMR client needs no
// setting: it connects to the host and port the page came from, which is the edge.
constexpr const char* kViteConfig = R"(export default {
  server: { allowedHosts: true },
};
)";

constexpr const char* kIndexHtml = R"(<!doctype html>
<html>
  <head><meta charset="utf-8"><title>vite hmr e2e</title></head>
  <body>
    <p id="message"></p>
    <script type="module" src="/main.js"></script>
  </body>
</html>
)";

constexpr const char* kMainJs = R"(import './style.css';
import { message } from './message.js';

function show(text) {
  document.getElementById('message').textContent = text;
}
show(message);

// Take new versions of message.js in place: the page is not reloaded.
if (import.meta.hot) {
  import.meta.hot.accept('./message.js', (next) => {
    if (next) show(next.message);
  });
}
)";

std::string message_js(const std::string& text) {
  return "export const message = '" + text + "';\n";
}
std::string style_css(const std::string& color) { return "#message { color: " + color + "; }\n"; }

// What the tab saw, read from the DevTools events.
struct TabTraffic {
  int documents = 0;  // main documents received; a reload would add one
  struct Socket {
    std::string url;
    std::int64_t status = 0;          // the handshake's answer, 0 before it
    std::vector<std::string> frames;  // text of the frames received
  };
  std::map<std::string, Socket> sockets;  // by requestId
  std::vector<std::string> console;       // console messages, for failure reports

  std::string describe() const {
    std::string out = "documents=" + std::to_string(documents) + "\n";
    for (const auto& [id, s] : sockets) {
      out += "websocket " + s.url + " status=" + std::to_string(s.status) + "\n";
      for (const auto& f : s.frames) out += "  frame " + f.substr(0, 300) + "\n";
    }
    for (const auto& c : console) out += "console: " + c + "\n";
    return out;
  }
};

TabTraffic read_traffic(const Chromium& browser, const std::string& tab) {
  TabTraffic t;
  for (const auto& e : browser.events()) {
    if (str_of(e, "sessionId") != tab) continue;
    const json::value* p = e.if_contains("params");
    if (!p || !p->is_object()) continue;
    const std::string method = str_of(e, "method");
    const std::string request = str_of(*p, "requestId");
    if (method == "Network.responseReceived" && str_of(*p, "type") == "Document") {
      ++t.documents;
    } else if (method == "Network.webSocketCreated") {
      t.sockets[request].url = str_of(*p, "url");
    } else if (method == "Network.webSocketHandshakeResponseReceived") {
      t.sockets[request].status = p->at("response").at("status").to_number<std::int64_t>();
    } else if (method == "Network.webSocketFrameReceived") {
      t.sockets[request].frames.push_back(str_of(p->at("response"), "payloadData"));
    } else if (method == "Runtime.consoleAPICalled") {
      std::string line = str_of(*p, "type") + ":";
      if (const json::value* args = p->as_object().if_contains("args"); args && args->is_array()) {
        for (const auto& a : args->as_array()) {
          const json::value* v = a.as_object().if_contains("value");
          line += " " + (v ? (v->is_string() ? std::string(v->as_string()) : json::serialize(*v))
                           : str_of(a, "description"));
        }
      }
      t.console.push_back(line);
    }
  }
  return t;
}

class ViteHmrTest : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.image = kBaseImage;
    c.dev_command = "''";  // none: runtimed runs package.json's `dev` script
    return c;
  }

  Answer put_file(const std::string& id, const std::string& path, const std::string& content) {
    return sd().call("PUT", "/v1/sandboxes/" + id + "/files?path=" + url_encode(path), content,
                     {"Content-Type: application/octet-stream"});
  }

  std::string dev_log(const std::string& id) {
    return sd().get("/v1/sandboxes/" + id + "/logs?source=dev_server&tail=200").body;
  }

  // The string value of `expression` in the tab; nullopt when it did not evaluate to one.
  static std::optional<std::string> evaluate(Chromium& browser, const std::string& tab,
                                             const std::string& expression) {
    auto r = browser.call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}},
                          tab, 10s);
    if (!r || !r->contains("result")) return std::nullopt;
    const json::value* value = r->at("result").as_object().if_contains("value");
    if (!value || !value->is_string()) return std::nullopt;
    return std::string(value->as_string());
  }

  // Polls `expression` until it reads `want`, for at most `deadline`; each poll also takes
  // in the tab's events.
  ::testing::AssertionResult wait_page(Chromium& browser, const std::string& tab,
                                       const std::string& expression, const std::string& want,
                                       std::chrono::milliseconds deadline) {
    std::optional<std::string> last;
    if (wait_until([&] { return (last = evaluate(browser, tab, expression)) == want; }, deadline)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << expression << " never read \"" << want << "\"; last \""
                                         << last.value_or("(none)") << "\" " << browser.problem();
  }
};

TEST_F(ViteHmrTest, EditReachesTheOpenPageThroughHmrOverTheEdge) {
  EngineAnswer image = engine_call("GET", std::string("/images/") + kBaseImage + "/json");
  ASSERT_EQ(image.status, 200) << kBaseImage << " is missing: build it with "
                               << "image/build-base-image.sh (scripts/test.sh does)";
  json::value labels = image.json().at("Config").at("Labels");
  ASSERT_NE(str_of(labels, "sandboxd.versions").find("vite "), std::string::npos)
      << kBaseImage << " has no vite (labels " << json::serialize(labels)
      << "): rebuild it with image/build-base-image.sh";

  std::string problem;
  std::unique_ptr<Chromium> browser = Chromium::launch(&problem);
  ASSERT_TRUE(browser) << problem;

  std::string id = create_v1("u1", "vite-hmr");
  ASSERT_FALSE(id.empty());
  for (const auto& [path, content] : std::vector<std::pair<std::string, std::string>>{
           {"web/vite.config.mjs", kViteConfig},
           {"web/index.html", kIndexHtml},
           {"web/main.js", kMainJs},
           {"web/message.js", message_js("first version")},
           {"web/style.css", style_css("rgb(0, 0, 255)")},
           {"package.json", kPackageJson}}) {
    Answer put = put_file(id, path, content);
    ASSERT_EQ(put.status, 200) << path << ": " << put.body;
  }

  // runtimed notices the dev script (it looks every 2 s), npm starts Vite, and the edge
  // forwards to it: the index page with Vite's client injected.
  ASSERT_NE(sd().edge_port(), 0) << sd().log();
  const std::string host = preview_host(id, 3000);
  const std::string origin = "http://" + host + ":" + std::to_string(sd().edge_port());
  std::optional<RawResponse> index;
  ASSERT_TRUE(wait_until(
      [&] {
        RawConnection c(sd().edge_port());
        c.send("GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
        index = c.read_response();
        return index && index->status == 200 &&
               index->body.find("/@vite/client") != std::string::npos;
      },
      120s))
      << "Vite never served the page through the edge; last answer "
      << (index ? std::to_string(index->status) + "\n" + index->body : std::string("none"))
      << "\ndev server log:\n"
      << dev_log(id);

  std::string tab = browser->open_tab();
  ASSERT_FALSE(tab.empty()) << browser->problem() << "\n" << browser->log_tail();
  ASSERT_TRUE(browser->call("Runtime.enable", {}, tab)) << browser->problem();
  auto nav = browser->call("Page.navigate", {{"url", origin + "/"}}, tab, 90s);
  ASSERT_TRUE(nav) << browser->problem() << "\n" << browser->log_tail();
  ASSERT_EQ(str_of(*nav, "errorText"), "");

  const std::string text = "document.getElementById('message')?.textContent ?? ''";
  const std::string color =
      "(() => { const m = document.getElementById('message');"
      " return m ? getComputedStyle(m).color : ''; })()";
  auto report = [&] {
    return read_traffic(*browser, tab).describe() + "dev server log:\n" + dev_log(id);
  };
  ASSERT_TRUE(wait_page(*browser, tab, text, "first version", 30s)) << report();
  ASSERT_TRUE(wait_page(*browser, tab, color, "rgb(0, 0, 255)", 10s)) << report();

  // Vite's client has its WebSocket through the edge (the preview host on the edge's port,
  // upgraded) and the server has greeted it: from now on an edit is pushed to this page.
  auto hmr_socket = [&]() -> std::optional<TabTraffic::Socket> {
    for (const auto& [request, s] : read_traffic(*browser, tab).sockets) {
      if (s.url.starts_with("ws://" + host + ":" + std::to_string(sd().edge_port()) + "/") &&
          s.status == 101) {
        for (const auto& f : s.frames) {
          if (f.find("\"type\":\"connected\"") != std::string::npos) return s;
        }
      }
    }
    return std::nullopt;
  };
  ASSERT_TRUE(wait_until(
      [&] {
        evaluate(*browser, tab, "'poll'");  // takes in the events that have arrived
        return hmr_socket().has_value();
      },
      30s))
      << "no HMR WebSocket through the edge\n"
      << report();

  // Lives as long as the document: a reload loses it.
  auto marker = [&] {
    return evaluate(*browser, tab, "window.sandboxdMarker ?? 'gone'").value_or("(no answer)");
  };
  ASSERT_EQ(evaluate(*browser, tab, "window.sandboxdMarker = 'kept'").value_or(""), "kept");

  // A module edit: main.js accepts the new message.js in place.
  Answer edit = put_file(id, "web/message.js", message_js("second version"));
  ASSERT_EQ(edit.status, 200) << edit.body;
  ASSERT_TRUE(wait_page(*browser, tab, text, "second version", 30s)) << report();
  EXPECT_EQ(marker(), "kept") << "the page was reloaded, not updated\n" << report();

  // A style edit: the CSS module replaces its own style.
  edit = put_file(id, "web/style.css", style_css("rgb(255, 0, 0)"));
  ASSERT_EQ(edit.status, 200) << edit.body;
  ASSERT_TRUE(wait_page(*browser, tab, color, "rgb(255, 0, 0)", 30s)) << report();
  EXPECT_EQ(marker(), "kept") << "the page was reloaded, not updated\n" << report();

  // The updates came as frames of that one WebSocket, and no second document was loaded.
  TabTraffic traffic = read_traffic(*browser, tab);
  EXPECT_EQ(traffic.documents, 1) << traffic.describe();
  std::optional<TabTraffic::Socket> socket = hmr_socket();
  ASSERT_TRUE(socket) << traffic.describe();
  bool message_update = false, style_update = false;
  for (const auto& f : socket->frames) {
    if (f.find("\"type\":\"update\"") == std::string::npos) continue;
    message_update = message_update || f.find("/message.js") != std::string::npos;
    style_update = style_update || f.find("/style.css") != std::string::npos;
  }
  EXPECT_TRUE(message_update) << traffic.describe();
  EXPECT_TRUE(style_update) << traffic.describe();
  for (const auto& frame : socket->frames) {
    EXPECT_EQ(frame.find("\"type\":\"full-reload\""), std::string::npos) << traffic.describe();
  }
}

}  // namespace
}  // namespace sandboxd::testing
