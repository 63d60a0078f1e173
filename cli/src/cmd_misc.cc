// certs (SPEC §2.7.11, §10.5) and version.
#include <boost/json/serialize.hpp>

#include "cli/render.h"
#include "commands.h"

namespace sandboxd::cli {

namespace json = boost::json;

CliResult<int> cmd_certs(Context& c) {
  ApiRequest r;
  r.path = "/v1/certificates";
  auto reply = c.api.call(r);
  if (!reply) return reply.error();
  if (c.json()) {
    if (auto st = c.out_document(reply->body); !st) return st.error();
    return 0;
  }
  auto obj = c.object_of(*reply);
  if (!obj) return obj.error();
  auto it = obj->find("certificates");
  if (it == obj->end() || !it->value().is_array()) {
    return CliError::protocol("the server's answer has no certificates array");
  }
  if (auto st = c.out(render_certs_table(it->value().get_array(), c.now())); !st) return st.error();
  if (str_field(*obj, "mode") == "off") {
    if (auto st = c.err("sandboxctl: TLS is off on this server (tls.mode: off)\n"); !st)
      return st.error();
  }
  return 0;
}

CliResult<int> cmd_version(Context& c) {
  const std::string client = SANDBOXCTL_VERSION;
  if (!c.json()) {
    if (auto st = c.out("sandboxctl " + client + "\n"); !st) return st.error();
  }
  // The server's version is the `sandboxd_build_info` gauge of /metrics (SPEC §11); a
  // server with metrics turned off still proves it speaks v1 by answering a v1 list.
  std::optional<std::string> server;
  ApiRequest metrics;
  metrics.path = "/metrics";
  metrics.accept = "text/plain";
  auto reply = c.api.call(metrics);
  if (reply) {
    server = build_info_version(reply->body);
  } else if (!(reply.error().kind == ErrorKind::api && reply.error().http_status == 404)) {
    return reply.error();
  }
  if (!server) {
    ApiRequest probe;
    probe.path = "/v1/sandboxes?limit=1";
    auto answered = c.api.call(probe);
    if (!answered) return answered.error();
  }
  if (c.json()) {
    json::object o{
        {"client", json::object{{"version", client}}},
        {"server", json::object{{"version", server ? json::value(*server) : json::value(nullptr)},
                                {"api", "v1"}}}};
    if (auto st = c.out(json::serialize(o) + "\n"); !st) return st.error();
    return 0;
  }
  std::string line =
      server ? "sandboxd " + *server + " (api v1)\n" : "sandboxd (version not reported) (api v1)\n";
  if (auto st = c.out(line); !st) return st.error();
  return 0;
}

}  // namespace sandboxd::cli
