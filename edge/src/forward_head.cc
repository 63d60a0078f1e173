#include "edge/forward_head.h"

#include "http_syntax.h"

#include <charconv>

namespace sandboxd::edge {

namespace {

using detail::append_field;
using detail::iequals;
using detail::named_in_connection;

enum class Kind : std::uint8_t {
  other,
  host,
  content_length,
  hop_by_hop,  // always removed
  upgrade,
  http2_settings,
  x_forwarded_for,
  x_forwarded_proto,
  x_forwarded_host,
  x_forwarded_port,
  x_forwarded_other,
  forwarded,
  x_request_id,
  cookie,
  authorization,
  expect,
};

Kind classify(std::string_view name) {
  switch (name.size()) {
    case 2:
      if (iequals(name, "te")) return Kind::hop_by_hop;
      break;
    case 4:
      if (iequals(name, "host")) return Kind::host;
      break;
    case 6:
      if (iequals(name, "cookie")) return Kind::cookie;
      if (iequals(name, "expect")) return Kind::expect;
      break;
    case 7:
      if (iequals(name, "upgrade")) return Kind::upgrade;
      if (iequals(name, "trailer")) return Kind::hop_by_hop;
      break;
    case 9:
      if (iequals(name, "forwarded")) return Kind::forwarded;
      break;
    case 10:
      if (iequals(name, "connection") || iequals(name, "keep-alive")) return Kind::hop_by_hop;
      break;
    case 12:
      if (iequals(name, "x-request-id")) return Kind::x_request_id;
      break;
    case 13:
      if (iequals(name, "authorization")) return Kind::authorization;
      break;
    case 14:
      if (iequals(name, "content-length")) return Kind::content_length;
      if (iequals(name, "http2-settings")) return Kind::http2_settings;
      break;
    case 15:
      if (iequals(name, "x-forwarded-for")) return Kind::x_forwarded_for;
      break;
    case 16:
      if (iequals(name, "proxy-connection")) return Kind::hop_by_hop;
      if (iequals(name, "x-forwarded-host")) return Kind::x_forwarded_host;
      if (iequals(name, "x-forwarded-port")) return Kind::x_forwarded_port;
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) return Kind::hop_by_hop;
      if (iequals(name, "x-forwarded-proto")) return Kind::x_forwarded_proto;
      break;
    case 18:
      if (iequals(name, "proxy-authenticate")) return Kind::hop_by_hop;
      break;
    case 19:
      if (iequals(name, "proxy-authorization")) return Kind::hop_by_hop;
      break;
    default:
      break;
  }
  if (detail::istarts_with(name, "x-forwarded-")) return Kind::x_forwarded_other;
  return Kind::other;
}

// Connection options that name no field the loop would keep anyway.
bool is_plain_connection_option(std::string_view option) {
  return iequals(option, "close") || iequals(option, "keep-alive") || iequals(option, "upgrade");
}


void append_port(std::string& out, std::uint16_t port) {
  char buf[8];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, port);
  (void)ec;
  out.append(buf, static_cast<std::size_t>(end - buf));
}

// A Forwarded parameter value (RFC 7239 §4): a token as is, anything else quoted; an IPv6
// node is bracketed, and so quoted.
void append_forwarded_value(std::string& out, std::string_view value, bool node) {
  const bool v6 = node && value.find(':') != std::string_view::npos;
  bool token = !v6 && !value.empty();
  for (char c : value) token = token && detail::is_tchar(static_cast<unsigned char>(c));
  if (token) {
    out.append(value);
    return;
  }
  out.push_back('"');
  if (v6) out.push_back('[');
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  if (v6) out.push_back(']');
  out.push_back('"');
}

// Cookie without the edge's own cookie; false when nothing is left.
bool append_cookie_without(std::string& out, std::string_view name, std::string_view value,
                           std::string_view cookie) {
  bool found = false;
  for (std::string_view rest = value; !rest.empty();) {
    std::size_t semi = rest.find(';');
    std::string_view pair = detail::trim_ows(rest.substr(0, semi));
    if (pair.substr(0, pair.find('=')) == cookie) found = true;
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
  }
  if (!found) {
    append_field(out, name, value);
    return true;
  }
  const std::size_t mark = out.size();
  out.append(name);
  out.append(": ");
  const std::size_t start = out.size();
  for (std::string_view rest = value; !rest.empty();) {
    std::size_t semi = rest.find(';');
    std::string_view pair = detail::trim_ows(rest.substr(0, semi));
    if (!pair.empty() && pair.substr(0, pair.find('=')) != cookie) {
      if (out.size() > start) out.append("; ");
      out.append(pair);
    }
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
  }
  if (out.size() == start) {
    out.resize(mark);
    return false;
  }
  out.append("\r\n");
  return true;
}

}  // namespace

void build_forward_head(const RequestHead& head, const ForwardContext& ctx, std::string& out) {
  out.clear();
  out.append(head.method);
  out.push_back(' ');
  out.append(ctx.target.empty() ? head.origin_target : ctx.target);
  out.append(" HTTP/1.1\r\n");

  // Options in Connection beyond close/keep-alive/upgrade name fields to remove; they are
  // rare, so the per-field lookup runs only when there is one.
  bool extra_options = false;
  for (const HeaderField& f : head.headers) {
    if (!iequals(f.name, "connection")) continue;
    detail::for_each_list_element(f.value, [&](std::string_view option) {
      extra_options = !is_plain_connection_option(option);
      return !extra_options;
    });
    if (extra_options) break;
  }

  const bool trusted = ctx.trusted;
  bool wrote_host = false;
  bool have_proto = false;
  bool have_forwarded_host = false;
  bool have_port = false;
  bool have_request_id = false;
  std::size_t forwarded_for = 0;  // trusted X-Forwarded-For fields, joined below

  for (const HeaderField& f : head.headers) {
    const Kind kind = classify(f.name);
    if (kind != Kind::host && kind != Kind::content_length && extra_options &&
        !(kind == Kind::upgrade && ctx.tunnel) && named_in_connection(head, f.name)) {
      continue;
    }
    switch (kind) {
      case Kind::host:
        append_field(out, f.name, head.absolute_form ? head.authority : f.value);
        wrote_host = true;
        break;
      case Kind::hop_by_hop:
        break;
      case Kind::upgrade:
      case Kind::http2_settings:
        if (ctx.tunnel) append_field(out, f.name, f.value);
        break;
      case Kind::x_forwarded_for:
        if (trusted) ++forwarded_for;
        break;
      case Kind::x_forwarded_proto:
      case Kind::x_forwarded_host:
      case Kind::x_forwarded_port:
      case Kind::x_forwarded_other:
      case Kind::forwarded:
      case Kind::x_request_id:
        if (!trusted) break;
        have_proto = have_proto || kind == Kind::x_forwarded_proto;
        have_forwarded_host = have_forwarded_host || kind == Kind::x_forwarded_host;
        have_port = have_port || kind == Kind::x_forwarded_port;
        have_request_id = have_request_id || kind == Kind::x_request_id;
        append_field(out, f.name, f.value);
        break;
      case Kind::cookie:
        if (ctx.preview_cookie.empty()) {
          append_field(out, f.name, f.value);
        } else {
          append_cookie_without(out, f.name, f.value, ctx.preview_cookie);
        }
        break;
      case Kind::authorization:
        if (!ctx.drop_authorization) append_field(out, f.name, f.value);
        break;
      case Kind::expect:
        // An HTTP/1.0 client's expectation is ignored (RFC 9110 §10.1.1); sent upstream as
        // HTTP/1.1 it would draw a 100 that a 1.0 client must never see.
        if (head.version == HttpVersion::http11) append_field(out, f.name, f.value);
        break;
      case Kind::content_length:
      case Kind::other:
        append_field(out, f.name, f.value);
        break;
    }
  }
  if (!wrote_host && !head.host.empty()) append_field(out, "Host", head.host);

  out.append("X-Forwarded-For: ");
  if (forwarded_for > 0) {
    for (const HeaderField& f : head.headers) {
      if (classify(f.name) != Kind::x_forwarded_for || f.value.empty()) continue;
      out.append(f.value);
      out.append(", ");
    }
  }
  out.append(ctx.client_ip);
  out.append("\r\n");
  const std::string_view proto = ctx.https ? "https" : "http";
  if (!have_proto) append_field(out, "X-Forwarded-Proto", proto);
  if (!have_forwarded_host && !head.host.empty()) {
    append_field(out, "X-Forwarded-Host", head.host);
  }
  if (!have_port) {
    out.append("X-Forwarded-Port: ");
    append_port(out, ctx.listener_port);
    out.append("\r\n");
  }
  if (ctx.forwarded_header) {
    out.append("Forwarded: for=");
    append_forwarded_value(out, ctx.client_ip, true);
    if (!head.host.empty()) {
      out.append(";host=");
      append_forwarded_value(out, head.host, false);
    }
    out.append(";proto=");
    out.append(proto);
    out.append("\r\n");
  }
  if (!have_request_id && !ctx.request_id.empty()) {
    append_field(out, "X-Request-Id", ctx.request_id);
  }
  if (head.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (ctx.tunnel) out.append("Connection: Upgrade\r\n");
  out.append("\r\n");
}

}  // namespace sandboxd::edge
