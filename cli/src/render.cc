#include "cli/render.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdio>

namespace sandboxd::cli {

namespace json = boost::json;

namespace {

const json::value* find(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->value();
}

const json::object* obj_field(const json::object& o, std::string_view key) {
  const json::value* v = find(o, key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}

std::optional<std::int64_t> int_field(const json::object& o, std::string_view key) {
  const json::value* v = find(o, key);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->get_uint64());
  }
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return std::nullopt;
}

std::string or_dash(std::string s) { return s.empty() ? "-" : s; }

std::vector<int> ports_of(const json::object& sandbox) {
  std::vector<int> out;
  const json::value* v = find(sandbox, "ports");
  if (!v || !v->is_array()) return out;
  for (const auto& p : v->get_array()) {
    if (p.is_int64()) out.push_back(static_cast<int>(p.get_int64()));
  }
  return out;
}

std::string join_ports(const std::vector<int>& ports, std::string_view sep) {
  std::string out;
  for (int p : ports) {
    if (!out.empty()) out += sep;
    out += std::to_string(p);
  }
  return out;
}

// A time field as "3m ago"; RFC 3339 text or unix seconds.
std::string relative_field(const json::object& o, std::string_view key, WallTime now,
                           std::string none = "-") {
  const json::value* v = find(o, key);
  if (!v) return none;
  std::optional<WallTime> t;
  if (v->is_string()) t = parse_rfc3339(v->get_string());
  if (v->is_int64() && v->get_int64() > 0) t = WallTime(std::chrono::seconds(v->get_int64()));
  if (!t) return none;
  return format_relative(*t, now);
}

std::string url_for_port(const json::object& sandbox, int port) {
  const json::object* preview = obj_field(sandbox, "preview");
  if (!preview) return "";
  const json::object* urls = obj_field(*preview, "urls");
  if (!urls) return "";
  return str_field(*urls, std::to_string(port));
}

}  // namespace

std::string str_field(const json::object& o, std::string_view key) {
  const json::value* v = find(o, key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::string render_sandbox_table(const json::array& sandboxes, WallTime now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : sandboxes) {
    if (!item.is_object()) continue;
    const json::object& s = item.get_object();
    std::string age = "-";
    if (auto created = parse_rfc3339(str_field(s, "created_at"))) {
      age = format_span(std::chrono::duration_cast<std::chrono::seconds>(now - *created));
    }
    rows.push_back({or_dash(str_field(s, "id")), or_dash(str_field(s, "status")),
                    or_dash(join_ports(ports_of(s), ",")), or_dash(str_field(s, "visibility")),
                    or_dash(str_field(s, "idle_policy")),
                    relative_field(s, "last_active_at", now, "never"), age});
  }
  return render_table({"ID", "STATUS", "PORTS", "VISIBILITY", "IDLE-POLICY", "LAST-ACTIVE", "AGE"},
                      rows);
}

std::string render_sandbox_fields(const json::object& s) {
  std::vector<std::pair<std::string, std::string>> f;
  auto add = [&](std::string key, std::string value) {
    if (!value.empty()) f.emplace_back(std::move(key), std::move(value));
  };
  add("id", or_dash(str_field(s, "id")));
  add("status", or_dash(str_field(s, "status")));
  if (const json::object* err = obj_field(s, "error")) {
    std::string reason = str_field(*err, "reason");
    std::string message = str_field(*err, "message");
    add("error", reason.empty() ? message : message.empty() ? reason : reason + ": " + message);
  }
  if (const json::object* p = obj_field(s, "project")) {
    add("user", str_field(*p, "user_id"));
    add("project", str_field(*p, "id"));
    add("workspace", str_field(*p, "workspace_id"));
  }
  add("visibility", str_field(s, "visibility"));
  add("idle-policy", str_field(s, "idle_policy"));
  std::vector<int> ports = ports_of(s);
  add("ports", or_dash(join_ports(ports, ", ")));
  for (int p : ports) {
    std::string url = url_for_port(s, p);
    if (!url.empty()) add("url " + std::to_string(p), url);
  }
  if (const json::object* preview = obj_field(s, "preview")) {
    std::string state = str_field(*preview, "status");
    if (auto code = int_field(*preview, "last_http_status"))
      state += " (last HTTP " + std::to_string(*code);
    if (auto at = str_field(*preview, "last_checked_at");
        !at.empty() && state.find('(') != std::string::npos) {
      state += " at " + at;
    }
    if (state.find('(') != std::string::npos) state += ")";
    add("dev-server", state);
  }
  add("runtime", or_dash(str_field(s, "runtime")));
  if (const json::object* dev = obj_field(s, "dev")) {
    add("dev-command", str_field(*dev, "command"));
    if (auto port = int_field(*dev, "port")) add("dev-port", std::to_string(*port));
  }
  add("image", str_field(s, "image"));
  add("template", str_field(s, "template"));
  if (const json::object* r = obj_field(s, "resources")) {
    if (auto m = int_field(*r, "memory_bytes"); m && *m >= 0)
      add("memory", format_iec(static_cast<std::uint64_t>(*m)));
    if (const json::value* c = find(*r, "cpus"); c && c->is_number()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", c->to_number<double>());
      add("cpus", buf);
    }
    if (auto p = int_field(*r, "pids")) add("pids", std::to_string(*p));
    if (auto n = int_field(*r, "nofile")) add("nofile", std::to_string(*n));
  }
  if (const json::value* keys = find(s, "env_keys");
      keys && keys->is_array() && !keys->get_array().empty()) {
    std::string list;
    for (const auto& k : keys->get_array()) {
      if (!k.is_string()) continue;
      if (!list.empty()) list += ", ";
      list += k.get_string();
    }
    add("env", list);
  }
  add("git-remote", str_field(s, "git_remote_url"));
  add("active-task", str_field(s, "active_task_id"));
  add("keepalive-until", str_field(s, "keepalive_until"));
  add("last-active", or_dash(str_field(s, "last_active_at")));
  add("stopped-at", str_field(s, "stopped_at"));
  add("created", str_field(s, "created_at"));
  add("updated", str_field(s, "updated_at"));
  return render_fields(f);
}

std::string render_created(const json::object& sandbox) {
  std::string out = str_field(sandbox, "id") + "\n";
  for (int p : ports_of(sandbox)) {
    std::string url = url_for_port(sandbox, p);
    if (!url.empty()) out += url + "\n";
  }
  return out;
}

std::optional<int> dev_or_first_port(const json::object& sandbox) {
  std::vector<int> ports = ports_of(sandbox);
  if (ports.empty()) return std::nullopt;
  if (const json::object* dev = obj_field(sandbox, "dev")) {
    if (auto p = int_field(*dev, "port")) {
      for (int declared : ports) {
        if (declared == *p) return declared;
      }
    }
  }
  return ports.front();
}

CliResult<std::string> pick_preview_url(const json::object& sandbox, std::optional<int> port) {
  std::vector<int> ports = ports_of(sandbox);
  std::string id = str_field(sandbox, "id");
  if (ports.empty()) return CliError::local("sandbox " + id + " declares no ports");
  int chosen = 0;
  if (port) {
    bool declared = false;
    for (int p : ports) declared = declared || p == *port;
    if (!declared) {
      return CliError::local("port " + std::to_string(*port) + " is not declared by sandbox " + id +
                             " (ports: " + join_ports(ports, ", ") + ")");
    }
    chosen = *port;
  } else {
    chosen = *dev_or_first_port(sandbox);
  }
  std::string url = url_for_port(sandbox, chosen);
  if (url.empty())
    return CliError::protocol("the server gave no preview URL for port " + std::to_string(chosen));
  return url;
}

std::string render_task_table(const json::array& tasks, WallTime now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : tasks) {
    if (!item.is_object()) continue;
    const json::object& t = item.get_object();
    std::string duration = "-";
    if (auto ms = int_field(t, "duration_ms")) {
      duration = format_duration_ms(*ms);
    } else if (auto started = parse_rfc3339(str_field(t, "started_at"))) {
      std::optional<WallTime> finished = parse_rfc3339(str_field(t, "finished_at"));
      auto end = finished ? *finished : now;
      duration = format_duration_ms(
          std::chrono::duration_cast<std::chrono::milliseconds>(end - *started).count());
    }
    std::string exit = "-";
    if (auto code = int_field(t, "exit_code")) exit = std::to_string(*code);
    rows.push_back({or_dash(str_field(t, "id")), or_dash(str_field(t, "agent")),
                    or_dash(str_field(t, "status")), relative_field(t, "created_at", now), duration,
                    exit});
  }
  return render_table({"TASK", "AGENT", "STATUS", "CREATED", "DURATION", "EXIT"}, rows);
}

std::string render_files_table(const json::array& entries, WallTime now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : entries) {
    if (!item.is_object()) continue;
    const json::object& e = item.get_object();
    std::string type = or_dash(str_field(e, "type"));
    std::string size = "-";
    if (auto n = int_field(e, "size"); n && *n >= 0 && type != "dir")
      size = format_iec(static_cast<std::uint64_t>(*n));
    std::string path = str_field(e, "path");
    if (std::string target = str_field(e, "target"); !target.empty()) path += " -> " + target;
    rows.push_back({type, size, relative_field(e, "mtime", now), or_dash(path)});
  }
  return render_table({"TYPE", "SIZE", "MTIME", "PATH"}, rows);
}

std::string render_certs_table(const json::array& certificates, WallTime now) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : certificates) {
    if (!item.is_object()) continue;
    const json::object& c = item.get_object();
    std::string names;
    if (const json::value* d = find(c, "domains"); d && d->is_array()) {
      for (const auto& n : d->get_array()) {
        if (!n.is_string()) continue;
        if (!names.empty()) names += ",";
        names += n.get_string();
      }
    }
    std::string last_error = "-";
    if (const json::object* e = obj_field(c, "last_error")) {
      std::string step = str_field(*e, "step");
      std::string message = str_field(*e, "message");
      last_error = or_dash(step.empty() ? message : step + ": " + message);
    }
    rows.push_back({or_dash(names.empty() ? str_field(c, "name") : names),
                    relative_field(c, "not_after", now), relative_field(c, "next_renewal_at", now),
                    or_dash(str_field(c, "status")), last_error});
  }
  return render_table({"NAMES", "NOT-AFTER", "NEXT-RENEWAL", "STATUS", "LAST-ERROR"}, rows);
}

std::optional<std::string> build_info_version(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t nl = text.find('\n', i);
    std::string_view line =
        text.substr(i, nl == std::string_view::npos ? std::string_view::npos : nl - i);
    i = nl == std::string_view::npos ? text.size() : nl + 1;
    if (!line.starts_with("sandboxd_build_info{")) continue;
    std::size_t close = line.find('}');
    std::string_view labels = line.substr(0, close);
    std::size_t at = labels.find("version=\"");
    // "version=" must start a label, not end another one's name ("api_version=").
    while (at != std::string_view::npos && labels[at - 1] != '{' && labels[at - 1] != ',') {
      at = labels.find("version=\"", at + 1);
    }
    if (at == std::string_view::npos) return std::nullopt;
    std::size_t start = at + 9;
    std::size_t end = labels.find('"', start);
    if (end == std::string_view::npos) return std::nullopt;
    return std::string(labels.substr(start, end - start));
  }
  return std::nullopt;
}

EventOutput render_task_event(const json::object& envelope) {
  EventOutput out;
  std::string type = str_field(envelope, "type");
  static const json::object kEmpty;
  const json::object* data = obj_field(envelope, "data");
  if (!data) data = &kEmpty;
  if (type == "stdout" || type == "stderr") {
    const json::value* partial = find(*data, "partial");
    bool more = partial && partial->is_bool() && partial->get_bool();
    std::string& dst = type == "stdout" ? out.out : out.err;
    dst = str_field(*data, "text");
    if (!more) dst += '\n';
    return out;
  }
  std::string clock = "--:--:--";
  if (auto ts = parse_rfc3339(str_field(envelope, "ts"))) clock = format_clock(*ts);
  std::string detail;
  auto part = [&](const std::string& s) {
    if (s.empty()) return;
    if (!detail.empty()) detail += "  ";
    detail += s;
  };
  if (type == "started") {
    part(str_field(*data, "agent"));
    if (auto pid = int_field(*data, "pid")) part("pid " + std::to_string(*pid));
  } else if (type == "message") {
    part(str_field(*data, "role"));
    part(str_field(*data, "text"));
  } else if (type == "tool") {
    part(str_field(*data, "status"));
    std::string name = str_field(*data, "name");
    std::string summary = str_field(*data, "summary");
    part(summary.starts_with(name) ? summary : summary.empty() ? name : name + " " + summary);
  } else if (type == "file") {
    part(str_field(*data, "op"));
    part(str_field(*data, "path"));
  } else if (type == "exit") {
    if (auto code = int_field(*data, "code")) part("code " + std::to_string(*code));
    out.signal = str_field(*data, "signal");
    if (!out.signal.empty()) part("signal " + out.signal);
  } else if (type == "error") {
    part(str_field(*data, "code"));
    part(str_field(*data, "message"));
  } else if (type == "done") {
    out.done = true;
    out.status = str_field(*data, "status");
    out.exit_code = int_field(*data, "exit_code");
    part(out.status);
    if (out.exit_code) part("exit " + std::to_string(*out.exit_code));
    if (auto ms = int_field(*data, "duration_ms")) part(format_duration_ms(*ms));
    if (const json::value* e = find(*data, "error"); e && e->is_string()) {
      part(std::string(e->get_string()));
    } else if (e && e->is_object()) {
      part(str_field(e->get_object(), "code"));
    }
  } else if (!data->empty()) {
    part(json::serialize(*data));
  }
  out.out = "[" + clock + "] " + (type.empty() ? "event" : type) +
            (detail.empty() ? "" : "  " + detail) + "\n";
  return out;
}

}  // namespace sandboxd::cli
