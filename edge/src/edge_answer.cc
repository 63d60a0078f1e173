#include "edge_answer.h"

#include "base/json_escape.h"
#include "http_syntax.h"

#include <array>

namespace sandboxd::edge::detail {

namespace {

constexpr std::string_view kAppGone = "This preview link does not lead to an app.";
constexpr std::string_view kNoAnswer = "It may be restarting. This page will try again.";
constexpr std::string_view kStarting =
    "Your app is taking longer than usual to start. This page will try again by itself.";
constexpr std::string_view kBusy =
    "Your app will start as soon as there is room. This page will try again by itself.";

constexpr std::array<ErrorInfo, 17> kErrors{{
    {"unknown_host", 404, false, 0, "Nothing here", "This address does not belong to any app."},
    {"no_such_sandbox", 404, false, 0, "App not found", kAppGone},
    {"port_not_exposed", 404, false, 0, "App not found", kAppGone},
    {"preview_auth_required", 401, false, 0, "Private preview",
     "Open this app from the product that shared it with you."},
    {"sandbox_error", 502, false, 0, "This app could not start",
     "Its owner can find the reason in the dashboard."},
    {"wake_failed", 502, false, 0, "This app could not start",
     "Its owner can find the reason in the dashboard."},
    {"upstream_unreachable", 502, true, 1, "The app did not answer", kNoAnswer},
    {"upstream_reset", 502, true, 1, "The app did not answer", kNoAnswer},
    {"upstream_protocol_error", 502, true, 1, "The app did not answer", kNoAnswer},
    {"upstream_timeout", 504, true, 5, "The app did not answer", kNoAnswer},
    {"wake_timeout", 504, true, 5, "Still starting\u2026", kStarting},
    {"port_not_open", 504, true, 5, "Still starting\u2026", kStarting},
    {"wake_refused", 503, true, 30, "The server is busy", kBusy},
    {"too_many_held", 503, true, 2, "The server is busy", kBusy},
    {"sandbox_busy", 503, true, 1, "The server is busy", kBusy},
    {"shutting_down", 503, true, 5, "Back in a moment", "The server is restarting."},
    {"internal", 500, false, 0, "Something went wrong", "Please try again later."},
}};

void append_number(std::string& out, std::int64_t n) { out.append(std::to_string(n)); }

// The Connection field of an edge answer: close, or keep-alive for an HTTP/1.0 client.
void append_connection(std::string& out, bool close, bool http10_keep_alive) {
  if (close) {
    out.append("Connection: close\r\n");
  } else if (http10_keep_alive) {
    out.append("Connection: keep-alive\r\n");
  }
}

// The page's HTML: inline CSS, no script, light and dark, no animation to reduce.
void append_page(std::string& out, const ErrorInfo& e, int retry_after) {
  out.append(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
  if (e.retryable) {
    out.append("<meta http-equiv=\"refresh\" content=\"");
    append_number(out, retry_after > 0 ? retry_after : 1);
    out.append("\">");
  }
  out.append("<title>");
  out.append(e.heading);
  out.append(
      "</title><style>"
      ":root{color-scheme:light dark;--bg:#f7f7f8;--fg:#1c1c1f;--mute:#5c5c66;--card:#fff}"
      "@media (prefers-color-scheme:dark){:root{--bg:#141416;--fg:#ececf0;--mute:#a0a0aa;"
      "--card:#1e1e22}}"
      "body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;"
      "background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,sans-serif}"
      "main{background:var(--card);padding:2.5rem 3rem;border-radius:12px;max-width:32rem;"
      "box-shadow:0 1px 3px rgba(0,0,0,.12)}"
      "h1{font-size:1.4rem;margin:0 0 .5rem}p{margin:.25rem 0;color:var(--mute)}"
      ".s{font-size:.85rem;margin-top:1.5rem}a{color:inherit}"
      ".dot{display:inline-block;width:.6rem;height:.6rem;border-radius:50%;"
      "background:currentColor;margin-right:.5rem;animation:p 1.5s ease-in-out infinite}"
      "@keyframes p{50%{opacity:.3}}"
      "@media (prefers-reduced-motion:reduce){.dot{animation:none}}"
      "</style></head><body><main><h1>");
  if (e.retryable) out.append("<span class=\"dot\"></span>");
  out.append(e.heading);
  out.append("</h1><p>");
  out.append(e.sentence);
  out.append("</p><p class=\"s\">");
  append_number(out, e.status);
  out.push_back(' ');
  out.append(reason_phrase(e.status));
  if (!e.retryable) out.append(" \u00b7 <a href=\"\">Try again</a>");
  out.append("</p></main></body></html>\n");
}

}  // namespace

const ErrorInfo* find_error(std::string_view code) {
  for (const ErrorInfo& e : kErrors) {
    if (e.code == code) return &e;
  }
  return nullptr;
}

bool is_navigation(const RequestHead& head) {
  if (head.upgrade) return false;
  if (head.method != "GET" && head.method != "HEAD") return false;
  if (auto mode = head.field("sec-fetch-mode")) return iequals(*mode, "navigate");
  for (const HeaderField& f : head.headers) {
    if (!iequals(f.name, "accept")) continue;
    const std::string_view v = f.value;
    for (std::size_t i = 0; i + 9 <= v.size(); ++i) {
      if (iequals(v.substr(i, 9), "text/html")) return true;
    }
  }
  return false;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

std::string default_message(std::string_view code, std::uint16_t port, std::int64_t wake_s) {
  if (code == "wake_timeout") {
    return "the sandbox did not start within " + std::to_string(wake_s) + "s";
  }
  if (code == "port_not_open") {
    return "nothing answered on port " + std::to_string(port) + " within " +
           std::to_string(wake_s) + "s";
  }
  if (code == "port_not_exposed") return "port " + std::to_string(port) + " is not exposed";
  if (code == "wake_refused") return "not enough free memory to start the sandbox";
  if (code == "unknown_host") return "this host does not belong to any app";
  if (code == "no_such_sandbox") return "no such sandbox";
  if (code == "preview_auth_required") return "this preview is private";
  if (code == "sandbox_error") return "the sandbox is in error";
  if (code == "wake_failed") return "the sandbox could not start";
  if (code == "upstream_unreachable") return "the app could not be reached";
  if (code == "upstream_reset") return "the app closed the connection";
  if (code == "upstream_protocol_error") return "the app sent an invalid response";
  if (code == "upstream_timeout") return "the app did not answer in time";
  if (code == "too_many_held") return "too many requests are waiting for this sandbox";
  if (code == "sandbox_busy") return "too many connections to this sandbox";
  if (code == "shutting_down") return "the server is shutting down";
  return "internal error";
}

void build_error_answer(const ErrorAnswer& a, std::string_view message, std::string& out) {
  const ErrorInfo* e = find_error(a.code);
  if (e == nullptr) e = find_error("internal");
  const int retry_after = a.retry_after >= 0 ? a.retry_after : e->retry_after;

  std::string body;
  if (a.html) {
    append_page(body, *e, retry_after);
  } else {
    body.append("{\"error\":{\"code\":");
    append_json_string(body, e->code);
    body.append(",\"message\":");
    append_json_string(body, message);
    body.append(e->retryable ? ",\"retryable\":true" : ",\"retryable\":false");
    if (a.sandbox) {
      body.append(",\"sandbox_id\":");
      append_json_string(body, a.sandbox->str());
      body.append(",\"port\":");
      append_number(body, a.port);
    }
    body.append("}}\n");
  }

  out.clear();
  out.append("HTTP/1.1 ");
  append_number(out, e->status);
  out.push_back(' ');
  out.append(reason_phrase(e->status));
  out.append("\r\nContent-Type: ");
  out.append(a.html ? "text/html; charset=utf-8" : "application/json");
  out.append("\r\nContent-Length: ");
  append_number(out, static_cast<std::int64_t>(body.size()));
  out.append("\r\nCache-Control: no-store\r\nX-Sandbox-Error: ");
  out.append(e->code);
  out.append("\r\n");
  if (retry_after > 0) {
    out.append("Retry-After: ");
    append_number(out, retry_after);
    out.append("\r\n");
  }
  if (!a.wake.empty()) {
    out.append("X-Sandbox-Wake: ");
    out.append(a.wake);
    out.append("\r\n");
  }
  append_connection(out, a.close, a.http10_keep_alive);
  out.append("\r\n");
  if (!a.head_only) out.append(body);
}

void build_health_answer(bool head_only, bool close, bool http10_keep_alive, std::string& out) {
  out.assign(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
      "Cache-Control: no-store\r\n");
  append_connection(out, close, http10_keep_alive);
  out.append("\r\n");
  if (!head_only) out.append("ok\n");
}

void build_redirect(int status, std::string_view location, bool close, bool http10_keep_alive,
                    std::string& out, std::string_view set_cookie) {
  out.assign("HTTP/1.1 ");
  append_number(out, status);
  out.push_back(' ');
  out.append(reason_phrase(status));
  out.append("\r\nLocation: ");
  out.append(location);
  out.append("\r\nContent-Length: 0\r\n");
  if (!set_cookie.empty()) {
    out.append("Set-Cookie: ");
    out.append(set_cookie);
    out.append("\r\nCache-Control: no-store\r\n");
  }
  append_connection(out, close, http10_keep_alive);
  out.append("\r\n");
}

void build_misdirected(bool head_only, bool close, bool http10_keep_alive, std::string& out) {
  static constexpr std::string_view kBody = "421 Misdirected Request\n";
  out.assign("HTTP/1.1 421 Misdirected Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
             "Content-Length: ");
  append_number(out, static_cast<std::int64_t>(kBody.size()));
  out.append("\r\n");
  append_connection(out, close, http10_keep_alive);
  out.append("\r\n");
  if (!head_only) out.append(kBody);
}

void build_rejection(int status, std::string& out) {
  std::string body = std::to_string(status);
  body.push_back(' ');
  body.append(reason_phrase(status));
  body.push_back('\n');
  out.assign("HTTP/1.1 ");
  out.append(body, 0, body.size() - 1);
  out.append("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  append_number(out, static_cast<std::int64_t>(body.size()));
  out.append("\r\nConnection: close\r\n\r\n");
  out.append(body);
}

std::string_view too_many_connections_answer() {
  return "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n"
         "Content-Length: 22\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
         "429 Too Many Requests\n";
}

}  // namespace sandboxd::edge::detail
