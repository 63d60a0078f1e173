// files ls / get / put / export (SPEC §12 over §2.7.6–2.7.10).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>

#include "base/json.h"
#include "cli/render.h"
#include "cli/requests.h"
#include "cli/url.h"
#include "commands.h"
#include "local_files.h"

namespace sandboxd::cli {

namespace json = boost::json;

namespace {

std::string files_path(const std::string& sid) { return "/v1/sandboxes/" + sid; }

// Copies a download's body to stdout, or to `output` through a temporary file.
CliStatus download(Context& c, HttpResponse& res, const std::optional<std::string>& output) {
  AtomicOutput file;
  if (output) {
    if (auto st = file.open(*output); !st) return st;
  }
  std::string chunk;
  for (;;) {
    chunk.clear();
    auto more = res.read(chunk, Deadline());
    if (!more) return more.error();
    CliStatus st = output ? file.write(chunk) : c.out(chunk);
    if (!st) return st;
    if (!*more) break;
  }
  if (output) return file.commit();
  return {};
}

}  // namespace

CliResult<int> cmd_files_ls(Context& c) {
  auto sid = c.id(0);
  if (!sid) return sid.error();
  std::vector<std::pair<std::string, std::string>> q;
  if (c.inv.args.size() > 1) q.emplace_back("path", c.inv.args[1]);
  if (c.inv.has("recursive")) q.emplace_back("recursive", "true");
  if (c.inv.has("all")) q.emplace_back("all", "true");
  ApiRequest r;
  r.path = files_path(*sid) + "/files" + query_string(q);
  auto reply = c.api.call(r);
  if (!reply) return reply.error();
  if (c.json()) {
    if (auto st = c.out_document(reply->body); !st) return st.error();
    return 0;
  }
  auto obj = c.object_of(*reply);
  if (!obj) return obj.error();
  auto it = obj->find("entries");
  if (it == obj->end() || !it->value().is_array())
    return CliError::protocol("the server's answer has no entries array");
  if (auto st = c.out(render_files_table(it->value().get_array(), c.now())); !st) return st.error();
  if (auto t = obj->find("truncated");
      t != obj->end() && t->value().is_bool() && t->value().get_bool()) {
    if (auto st = c.err("sandboxctl: the listing was cut at the server's entry limit\n"); !st)
      return st.error();
  }
  return 0;
}

CliResult<int> cmd_files_get(Context& c) {
  auto sid = c.id(0);
  if (!sid) return sid.error();
  ApiRequest r;
  r.accept = "*/*";
  r.path = files_path(*sid) + "/files/content" + query_string({{"path", c.inv.args[1]}});
  auto res = c.api.open(r);
  if (!res) return res.error();
  if (auto st = download(c, *res, c.inv.value("output")); !st) return st.error();
  return 0;
}

CliResult<int> cmd_files_put(Context& c) {
  auto sid = c.id(0);
  if (!sid) return sid.error();
  std::string source = c.inv.args.size() > 2 ? c.inv.args[2] : "-";
  int fd = 0;
  if (source != "-") {
    fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CliError::local("cannot open " + source + ": " + errno_text(errno));
  }
  struct Closer {
    int fd;
    ~Closer() {
      if (fd > 0) ::close(fd);
    }
  } closer{fd};
  ApiRequest r;
  r.method = "PUT";
  std::vector<std::pair<std::string, std::string>> q{{"path", c.inv.args[1]}};
  if (c.inv.has("append")) q.emplace_back("mode", "append");
  r.path = files_path(*sid) + "/files" + query_string(q);
  r.headers.emplace_back("Content-Type", "application/octet-stream");
  r.body_fd = fd;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    // A regular file (also stdin redirected from one) goes with its length; a pipe chunked.
    off_t at = ::lseek(fd, 0, SEEK_CUR);
    r.body_length = static_cast<std::uint64_t>(st.st_size - (at > 0 ? at : 0));
  } else if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    return CliError::local(source + " is a directory");
  }
  r.unbounded_upload = true;
  auto res = c.api.open(r);
  if (!res) return res.error();
  auto body = res->read_all(1024 * 1024, c.api.deadline());
  if (!body) return body.error();
  if (c.json()) {
    if (auto w = c.out_document(*body); !w) return w.error();
    return 0;
  }
  ApiReply reply;
  reply.body = *body;
  auto v = parse_json(*body);
  if (v) reply.json = *v;
  auto obj = c.object_of(reply);
  if (!obj) return obj.error();
  std::string size = "?";
  if (auto it = obj->find("size"); it != obj->end()) {
    if (it->value().is_uint64()) size = std::to_string(it->value().get_uint64());
    if (it->value().is_int64()) size = std::to_string(it->value().get_int64());
  }
  std::string path = str_field(*obj, "path");
  if (auto w = c.out("wrote " + size + " bytes to " + (path.empty() ? c.inv.args[1] : path) + "\n");
      !w) {
    return w.error();
  }
  return 0;
}

CliResult<int> cmd_files_export(Context& c) {
  auto sid = c.id(0);
  if (!sid) return sid.error();
  auto params = export_params(c.inv);
  if (!params) return params.error();
  std::optional<std::string> output = c.inv.value("output");
  if (!output && ::isatty(1)) {
    return CliError::usage(
        "refusing to write a tar archive to a terminal; use -o FILE or redirect stdout");
  }
  ApiRequest r;
  r.accept = "application/x-tar, application/gzip";
  r.path = files_path(*sid) + "/export" + query_string(*params);
  auto res = c.api.open(r);
  if (!res) return res.error();
  if (auto st = download(c, *res, output); !st) return st.error();
  return 0;
}

}  // namespace sandboxd::cli
