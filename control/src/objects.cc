#include "objects.h"

#include "base/clock.h"
#include "base/json.h"

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include <algorithm>

namespace sandboxd::control {

namespace json = boost::json;

namespace {

std::string rfc3339_ms(std::int64_t unix_ms) {
  return format_rfc3339(Clock::WallTime(std::chrono::milliseconds(unix_ms)));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

json::array ports_array(const store::SandboxRow& row) {
  json::array ports;
  for (int p : row.ports) ports.push_back(p);
  return ports;
}

std::uint64_t effective_memory(const store::SandboxRow& row, const config::Config& c) {
  return row.memory_bytes ? static_cast<std::uint64_t>(*row.memory_bytes) : c.sandbox.memory;
}

}  // namespace

std::string preview_host(const std::string& id, int port, const config::Config& config) {
  std::string suffix = config.preview.suffix.empty() ? "preview." + config.preview.domain
                                                     : config.preview.suffix;
  return "s-" + lower(id) + "-" + std::to_string(port) + "." + suffix;
}

std::string preview_url(const std::string& id, int port, const ObjectContext& ctx) {
  bool tls = ctx.config->tls.mode != config::TlsMode::off;
  std::string url = (tls ? "https://" : "http://") + preview_host(id, port, *ctx.config);
  bool default_port = tls ? ctx.edge_port == 443 : ctx.edge_port == 80;
  if (!default_port) url += ":" + std::to_string(ctx.edge_port);
  return url + "/";
}

std::string docker_memory_notation(std::uint64_t bytes) {
  constexpr std::uint64_t k = 1024;
  if (bytes != 0 && bytes % (k * k * k) == 0) return std::to_string(bytes / (k * k * k)) + "G";
  if (bytes != 0 && bytes % (k * k) == 0) return std::to_string(bytes / (k * k)) + "M";
  if (bytes != 0 && bytes % k == 0) return std::to_string(bytes / k) + "K";
  return std::to_string(bytes);
}

json::object legacy_object(const store::SandboxRow& row, const ObjectContext& ctx) {
  json::object o;
  std::string workspace = ctx.workspaces_dir + "/" + row.id;
  o["id"] = row.id;
  o["status"] = row.status;
  o["image"] = row.image;
  o["workspace_img"] = workspace;
  o["workspace_mnt"] = workspace;
  if (row.container_id) o["container_id"] = *row.container_id;
  o["memory_high"] = docker_memory_notation(effective_memory(row, *ctx.config));
  if (row.status == "error" && row.error_message) o["error_message"] = *row.error_message;
  o["ports"] = ports_array(row);
  o["created_at"] = rfc3339_ms(row.created_at);
  o["updated_at"] = rfc3339_ms(row.updated_at);
  o["last_active_at"] = row.last_active_at / 1000;
  if (row.stopped_at) o["stopped_at"] = *row.stopped_at / 1000;
  if (row.keepalive_until) o["keepalive_until"] = *row.keepalive_until / 1000;
  if (row.container_ip && row.status == "running") o["container_ip"] = *row.container_ip;
  if (row.external_user_id) o["external_user_id"] = *row.external_user_id;
  if (row.external_project_id) o["external_project_id"] = *row.external_project_id;
  if (row.external_workspace_id) o["external_workspace_id"] = *row.external_workspace_id;
  o["visibility"] = row.visibility;
  o["idle_policy"] = row.idle_policy;
  return o;
}

json::object v1_object(const store::SandboxRow& row, const ObjectContext& ctx) {
  const config::Config& c = *ctx.config;
  json::object o;
  o["id"] = row.id;
  o["status"] = row.status;
  if (row.status == "error") {
    json::object err;
    err["reason"] = row.error_reason.value_or("");
    err["message"] = row.error_message.value_or("");
    o["error"] = std::move(err);
  }
  json::object project;
  project["id"] = row.external_project_id.value_or("");
  project["user_id"] = row.external_user_id.value_or("");
  if (row.external_workspace_id) project["workspace_id"] = *row.external_workspace_id;
  o["project"] = std::move(project);
  o["visibility"] = row.visibility;
  o["idle_policy"] = row.idle_policy;
  o["ports"] = ports_array(row);
  json::object preview;
  json::object urls;
  for (int p : row.ports) urls[std::to_string(p)] = preview_url(row.id, p, ctx);
  if (!row.ports.empty()) preview["url"] = preview_url(row.id, row.ports.front(), ctx);
  preview["urls"] = std::move(urls);
  // Until runtimed reports the dev server (SPEC §6.8), a running sandbox reads "starting".
  preview["status"] = row.status == "running" ? "starting" : "down";
  o["preview"] = std::move(preview);
  o["image"] = row.image;
  if (row.template_name) o["template"] = *row.template_name;
  json::object resources;
  resources["memory_bytes"] = effective_memory(row, c);
  resources["pids"] = row.pids ? *row.pids : static_cast<std::int64_t>(c.sandbox.pids);
  resources["nofile"] = c.sandbox.nofile;
  double cpus = row.cpus_milli ? static_cast<double>(*row.cpus_milli) / 1000.0 : c.sandbox.cpus;
  // Whole numbers print as integers (Boost.JSON would write 0 as "0E0").
  if (cpus == static_cast<double>(static_cast<std::int64_t>(cpus))) {
    resources["cpus"] = static_cast<std::int64_t>(cpus);
  } else {
    resources["cpus"] = cpus;
  }
  o["resources"] = std::move(resources);
  if (row.dev_command || row.dev_port) {
    json::object dev;
    if (row.dev_command) dev["command"] = *row.dev_command;
    if (row.dev_port) dev["port"] = *row.dev_port;
    o["dev"] = std::move(dev);
  }
  json::array env_keys;
  if (auto env = parse_json_object(row.env)) {
    std::vector<std::string> keys;
    for (const auto& kv : *env) keys.emplace_back(kv.key());
    std::sort(keys.begin(), keys.end());
    for (auto& k : keys) env_keys.push_back(json::string(k));
  }
  o["env_keys"] = std::move(env_keys);
  if (row.git_remote_url) o["git_remote_url"] = *row.git_remote_url;
  if (row.keepalive_until) o["keepalive_until"] = rfc3339_ms(*row.keepalive_until);
  if (row.last_active_at > 0) o["last_active_at"] = rfc3339_ms(row.last_active_at);
  if (row.stopped_at) o["stopped_at"] = rfc3339_ms(*row.stopped_at);
  o["created_at"] = rfc3339_ms(row.created_at);
  o["updated_at"] = rfc3339_ms(row.updated_at);
  return o;
}

}  // namespace sandboxd::control
