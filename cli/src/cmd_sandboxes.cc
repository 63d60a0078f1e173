// create, ls, get, start, stop, rm, purge, url (SPEC §12 over §2.6).
#include <unistd.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cctype>

#include "base/ulid.h"
#include "cli/render.h"
#include "cli/requests.h"
#include "cli/url.h"
#include "commands.h"

namespace sandboxd::cli {

namespace json = boost::json;

namespace {

std::string sandbox_path(const std::string& id) { return "/v1/sandboxes/" + id; }

CliResult<ApiReply> get_sandbox(Context& c, const std::string& id) {
  ApiRequest r;
  r.path = sandbox_path(id);
  return c.api.call(r);
}

// POST …/start?wait=true[&port=P]: running, and the port accepts connections.
CliResult<ApiReply> start_and_wait(Context& c, const std::string& id, std::optional<int> port) {
  ApiRequest r;
  r.method = "POST";
  std::vector<std::pair<std::string, std::string>> q{{"wait", "true"}};
  if (port) q.emplace_back("port", std::to_string(*port));
  r.path = sandbox_path(id) + "/start" + query_string(q);
  return c.api.call(r);
}

CliResult<int> print_status(Context& c, const ApiReply& reply) {
  if (c.json()) {
    if (auto st = c.out_document(reply.body); !st) return st.error();
    return 0;
  }
  auto o = c.object_of(reply);
  if (!o) return o.error();
  if (auto st = c.out(str_field(*o, "status") + "\n"); !st) return st.error();
  return 0;
}

}  // namespace

CliResult<int> cmd_create(Context& c) {
  auto body = create_body(c.inv, new_ulid().str());
  if (!body) return body.error();
  bool wait = c.inv.has("wait");
  // Both calls of --wait share one deadline: --timeout bounds the whole wait.
  c.api.set_deadline(Clock::now() + c.inv.global.timeout);
  ApiRequest r;
  r.method = "POST";
  r.path = std::string("/v1/sandboxes?wait=") + (wait ? "true" : "false");
  r.json = json::serialize(*body);
  auto reply = c.api.call(r);
  if (!reply) return reply.error();
  auto obj = c.object_of(*reply);
  if (!obj) return obj.error();
  if (wait) {
    std::string id = str_field(*obj, "id");
    if (id.empty()) return CliError::protocol("the server's answer has no sandbox id");
    auto started = start_and_wait(c, id, dev_or_first_port(*obj));
    if (!started) return started.error();
    reply = std::move(started);
    obj = c.object_of(*reply);
    if (!obj) return obj.error();
  }
  if (c.json()) {
    if (auto st = c.out_document(reply->body); !st) return st.error();
    return 0;
  }
  if (auto st = c.out(render_created(*obj)); !st) return st.error();
  return 0;
}

CliResult<int> cmd_ls(Context& c) {
  auto params = list_params(c.inv);
  if (!params) return params.error();
  json::array all;
  std::string single_body;
  int pages = 0;
  std::string cursor;
  for (;;) {
    auto q = *params;
    q.emplace_back("limit", "1000");
    if (!cursor.empty()) q.emplace_back("cursor", cursor);
    ApiRequest r;
    r.path = "/v1/sandboxes" + query_string(q);
    auto reply = c.api.call(r);
    if (!reply) return reply.error();
    auto obj = c.object_of(*reply);
    if (!obj) return obj.error();
    ++pages;
    single_body = reply->body;
    if (auto it = obj->find("sandboxes"); it != obj->end() && it->value().is_array()) {
      for (auto& s : it->value().get_array()) all.push_back(s);
    } else {
      return CliError::protocol("the server's answer has no sandboxes array");
    }
    cursor = str_field(*obj, "next_cursor");
    if (cursor.empty()) break;
  }
  if (c.json()) {
    // One page is the API's object unchanged; several are merged into one document.
    std::string doc = pages == 1 ? single_body : json::serialize(json::object{{"sandboxes", all}});
    if (auto st = c.out_document(doc); !st) return st.error();
    return 0;
  }
  std::string text;
  if (c.inv.has("quiet")) {
    for (const auto& s : all) {
      if (s.is_object()) text += str_field(s.get_object(), "id") + "\n";
    }
  } else {
    text = render_sandbox_table(all, c.now());
  }
  if (auto st = c.out(text); !st) return st.error();
  return 0;
}

CliResult<int> cmd_get(Context& c) {
  auto id = c.id(0);
  if (!id) return id.error();
  auto reply = get_sandbox(c, *id);
  if (!reply) return reply.error();
  if (c.json()) {
    if (auto st = c.out_document(reply->body); !st) return st.error();
    return 0;
  }
  auto obj = c.object_of(*reply);
  if (!obj) return obj.error();
  if (auto st = c.out(render_sandbox_fields(*obj)); !st) return st.error();
  return 0;
}

CliResult<int> cmd_start(Context& c) {
  auto id = c.id(0);
  if (!id) return id.error();
  if (c.inv.has("wait")) {
    c.api.set_deadline(Clock::now() + c.inv.global.timeout);
    auto current = get_sandbox(c, *id);
    if (!current) return current.error();
    auto obj = c.object_of(*current);
    if (!obj) return obj.error();
    auto reply = start_and_wait(c, *id, dev_or_first_port(*obj));
    if (!reply) return reply.error();
    return print_status(c, *reply);
  }
  ApiRequest r;
  r.method = "POST";
  r.path = sandbox_path(*id) + "/start?wait=false";
  auto reply = c.api.call(r);
  if (!reply) return reply.error();
  return print_status(c, *reply);
}

CliResult<int> cmd_stop(Context& c) {
  auto id = c.id(0);
  if (!id) return id.error();
  ApiRequest r;
  r.method = "POST";
  r.path = sandbox_path(*id) + "/stop";
  if (c.inv.has("force")) r.json = R"({"force":true})";
  auto reply = c.api.call(r);
  if (!reply) return reply.error();
  return print_status(c, *reply);
}

CliResult<int> cmd_rm(Context& c) {
  auto id = c.id(0);
  if (!id) return id.error();
  // DELETE answers 204 for unknown ids too (safe to retry); ask first so a typo is a 404.
  auto current = get_sandbox(c, *id);
  if (!current) return current.error();
  ApiRequest r;
  r.method = "DELETE";
  r.path = sandbox_path(*id) + "?keep_workspace=true";
  auto reply = c.api.call(r);
  if (!reply) return reply.error();
  return 0;
}

namespace {

// The user types the id on the terminal; true when it matches.
CliResult<bool> confirm_purge(Context& c, const std::string& id) {
  std::string prompt = "This deletes sandbox " + id +
                       " and its workspace; it cannot be undone.\n"
                       "Type the sandbox id to confirm: ";
  if (auto st = c.err(prompt); !st) return st.error();
  std::string line;
  char ch;
  for (;;) {
    ssize_t n = ::read(0, &ch, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || ch == '\n') break;
    if (line.size() < 256) line += ch;
  }
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  std::size_t start = 0;
  while (start < line.size() && std::isspace(static_cast<unsigned char>(line[start]))) ++start;
  std::string typed = line.substr(start);
  std::transform(typed.begin(), typed.end(), typed.begin(),
                 [](unsigned char ch2) { return static_cast<char>(std::toupper(ch2)); });
  return typed == id;
}

}  // namespace

CliResult<int> cmd_purge(Context& c) {
  auto id = c.id(0);
  if (!id) return id.error();
  bool yes = c.inv.has("yes");
  if (!yes && !::isatty(0)) {
    return CliError::usage("purge asks for the id on a terminal; without one, pass --yes");
  }
  auto current = get_sandbox(c, *id);
  if (!current) return current.error();
  if (!yes) {
    auto ok = confirm_purge(c, *id);
    if (!ok) return ok.error();
    if (!*ok) return CliError::local("purge cancelled: the id did not match");
  }
  ApiRequest r;
  r.method = "DELETE";
  r.path = sandbox_path(*id);
  auto reply = c.api.call(r);
  if (!reply) return reply.error();
  return 0;
}

CliResult<int> cmd_url(Context& c) {
  auto id = c.id(0);
  if (!id) return id.error();
  auto port = port_flag(c.inv, "port");
  if (!port) return port.error();
  auto reply = get_sandbox(c, *id);
  if (!reply) return reply.error();
  auto obj = c.object_of(*reply);
  if (!obj) return obj.error();
  auto url = pick_preview_url(*obj, *port);
  if (!url) return url.error();
  std::string text = c.json() ? json::serialize(json::object{{"url", *url}}) + "\n" : *url + "\n";
  if (auto st = c.out(text); !st) return st.error();
  return 0;
}

}  // namespace sandboxd::cli
