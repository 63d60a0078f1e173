#include "files_api.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <optional>

#include "base/clock.h"
#include "base/log.h"
#include "blocking_pool.h"
#include "config/config.h"
#include "files.h"
#include "gzip.h"
#include "requests.h"
#include "router.h"
#include "sandbox_service.h"
#include "text_util.h"

namespace sandboxd::control {

namespace json = boost::json;

namespace {

constexpr log::Logger kLog{"files"};
constexpr std::size_t kPoolThreads = 4;
constexpr std::size_t kExportChunk = 256 * 1024;
constexpr std::size_t kMaxListLimit = 100000;
constexpr std::size_t kMaxExcludes = 256;

ApiResult<bool> query_bool(const Request& r, std::string_view name, bool fallback) {
  auto v = query_string(r, name);
  if (!v) return v.error();
  if (!*v) return {boost::system::in_place_value, fallback};
  auto b = parse_query_bool(**v);
  if (!b) return ApiError::invalid(std::string(name) + ": expected true, false, 1 or 0");
  return {boost::system::in_place_value, *b};
}

ApiResult<std::size_t> query_limit(const Request& r, std::size_t fallback) {
  auto v = query_string(r, "limit");
  if (!v) return v.error();
  if (!*v) return {boost::system::in_place_value, fallback};
  const std::string& t = **v;
  const bool digits = !t.empty() && t.size() <= 6 &&
                      std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  const std::size_t n = digits ? std::stoul(t) : 0;
  if (n < 1 || n > kMaxListLimit) {
    return ApiError::invalid("limit: must be an integer from 1 to " +
                             std::to_string(kMaxListLimit));
  }
  return {boost::system::in_place_value, n};
}

// The sandbox of the path: a valid id whose row exists and is not purged (SPEC §2.7.6).
ApiResult<store::SandboxRow> sandbox_of(const SandboxService& service, const Request& r) {
  auto id = parse_sandbox_id(r.params[0]);
  if (!id) return id.error();
  auto row = service.get(*id);
  if (!row) return row.error();  // 404, or the store's 503/500
  if (row->status == "purged") return ApiError::not_found("no such sandbox " + *id);
  return row;
}

// What every files route acts on: the sandbox of the path and its `path` query, checked for
// `use` (SPEC §2.7.6, §7), in that order.
struct FileTarget {
  store::SandboxRow row;
  files::FilePath path;
};

ApiResult<FileTarget> file_target(const SandboxService& service, const Request& r,
                                  files::PathUse use) {
  auto row = sandbox_of(service, r);
  if (!row) return row.error();
  auto raw = query_string(r, "path");
  if (!raw) return raw.error();
  auto path = files::parse_path(*raw, use);
  if (!path) return path.error();
  return FileTarget{std::move(*row), std::move(*path)};
}

// The workspace root; one still being made (create before its step 7) is a conflict.
ApiResult<files::Workspace> open_workspace(const std::string& dir, const std::string& id,
                                           const std::string& status) {
  auto ws = files::Workspace::open(dir, id);
  if (!ws && ws.error().status == 404 && status == "creating") {
    return ApiError::conflict("the workspace of " + id + " is not ready yet");
  }
  return ws;
}

std::string mode_text(std::uint32_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", mode & 07777);
  return text;
}

json::object list_json(const std::string& path, bool recursive, const files::ListResult& listed) {
  json::array entries;
  entries.reserve(listed.entries.size());
  for (const auto& e : listed.entries) {
    json::object o;
    o["path"] = sanitize_utf8(e.path);
    o["type"] = files::entry_type_name(e.type);
    if (e.type == files::EntryType::file) o["size"] = e.size;
    o["mode"] = mode_text(e.mode);
    o["mtime"] =
        format_rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(e.mtime)));
    if (e.type == files::EntryType::symlink) o["target"] = sanitize_utf8(e.target);
    if (e.skipped) o["skipped"] = true;
    if (!e.error.empty()) o["error"] = e.error;
    entries.push_back(std::move(o));
  }
  json::object out;
  out["path"] = sanitize_utf8(path);
  out["recursive"] = recursive;
  out["entries"] = std::move(entries);
  out["truncated"] = listed.truncated;
  return out;
}

json::object write_json(const std::string& path, const files::WriteResult& w) {
  json::object out;
  out["path"] = sanitize_utf8(path);
  out["size"] = w.size;
  out["file_size"] = w.file_size;
  out["created"] = w.created;
  return out;
}

std::string audit_detail(const std::string& path, std::uint64_t size, bool append) {
  json::object o;
  o["path"] = sanitize_utf8(path);
  o["size"] = size;
  o["append"] = append;
  return json::serialize(o);
}

// One export in flight: the walker and, for gzip, the encoder; used by one pool job at a time.
struct ExportState {
  std::unique_ptr<files::ExportWalker> walker;
  uid_t owner_uid = 0;
  gid_t owner_gid = 0;
  std::optional<GzipEncoder> gzip;
  std::string id;
};

struct ExportChunk {
  std::string bytes;
  bool done = false;
};

Result<ExportChunk> export_step(ExportState& state) {
  files::FsIdentity as(state.owner_uid, state.owner_gid);
  ExportChunk chunk;
  std::string raw;
  auto done = state.walker->next(raw, kExportChunk);
  if (!done) return done.error();
  chunk.done = *done;
  if (!state.gzip) {
    chunk.bytes = std::move(raw);
    return chunk;
  }
  if (auto st = state.gzip->add(raw, chunk.bytes); !st) return st.error();
  if (chunk.done) {
    if (auto st = state.gzip->finish(chunk.bytes); !st) return st.error();
  }
  return chunk;
}

void log_export_end(const ExportState& state, const Result<ExportChunk>& last) {
  if (!last) {
    kLog.warn("export cut short; the archive ends truncated",
              {{"id", state.id}, {"error", last.error().detail}});
    return;
  }
  if (state.walker->skipped() != 0) {
    kLog.info("export skipped entries", {{"id", state.id}, {"skipped", state.walker->skipped()}});
  }
}

}  // namespace

FilesApi::FilesApi(SandboxService& service, const config::Config& config)
    : service_(service),
      config_(config),
      workspaces_dir_(config.data_dir + "/workspaces"),
      pool_(std::make_unique<BlockingPool>(kPoolThreads)) {}

FilesApi::~FilesApi() = default;

boost::asio::awaitable<Response> FilesApi::list(Request& r) {
  auto target = file_target(service_, r, files::PathUse::tree);
  if (!target) co_return error_answer(r, target.error());
  const store::SandboxRow* row = &target->row;
  const files::FilePath* path = &target->path;
  auto recursive = query_bool(r, "recursive", false);
  if (!recursive) co_return error_answer(r, recursive.error());
  auto all = query_bool(r, "all", false);
  if (!all) co_return error_answer(r, all.error());
  auto limit = query_limit(r, config_.files.list_max_entries);
  if (!limit) co_return error_answer(r, limit.error());

  files::ListOptions options;
  options.recursive = *recursive;
  options.all = *all;
  options.limit = *limit;
  options.max_depth = config_.files.list_max_depth;
  options.skip = config_.files.list_skip;
  auto job = [dir = workspaces_dir_, id = row->id, status = row->status, where = *path,
              options]() -> ApiResult<files::ListResult> {
    auto ws = open_workspace(dir, id, status);
    if (!ws) return ws.error();
    files::FsIdentity as(ws->owner_uid(), ws->owner_gid());
    return files::list(*ws, where, options);
  };
  auto listed = co_await pool_->run(std::move(job));
  if (!listed) co_return error_answer(r, listed.error());
  co_return json_answer(200, list_json(path->text(), *recursive, *listed));
}

boost::asio::awaitable<Response> FilesApi::read(Request& r) {
  auto target = file_target(service_, r, files::PathUse::read);
  if (!target) co_return error_answer(r, target.error());
  const store::SandboxRow* row = &target->row;
  const files::FilePath* path = &target->path;

  const std::uint64_t read_max = config_.files.read_max;
  auto job = [dir = workspaces_dir_, id = row->id, status = row->status, where = *path,
              read_max]() -> ApiResult<std::string> {
    auto ws = open_workspace(dir, id, status);
    if (!ws) return ws.error();
    files::FsIdentity as(ws->owner_uid(), ws->owner_gid());
    return files::read_file(*ws, where, read_max);
  };
  auto content = co_await pool_->run(std::move(job));
  if (!content) co_return error_answer(r, content.error());
  Response res;
  res.content_type =
      is_valid_utf8(*content) ? "text/plain; charset=utf-8" : "application/octet-stream";
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.body = std::move(*content);
  co_return res;
}

boost::asio::awaitable<Response> FilesApi::write(Request& r) {
  auto target = file_target(service_, r, files::PathUse::write);
  if (!target) co_return error_answer(r, target.error());
  const store::SandboxRow* row = &target->row;
  const files::FilePath* path = &target->path;
  auto mode = query_string(r, "mode");
  if (!mode) co_return error_answer(r, mode.error());
  const std::string mode_name = mode->value_or("write");
  if (mode_name != "write" && mode_name != "append") {
    co_return error_answer(r, ApiError::invalid("mode: expected write or append"));
  }
  const bool append = mode_name == "append";
  // The server stops reading at files.write_max; this covers a limit lowered meanwhile.
  if (r.body.size() > config_.files.write_max) {
    Response res = error_response(r.path, 413, "payload_too_large",
                                  "the body is larger than files.write_max (" +
                                      files::human_size(config_.files.write_max) + ")");
    res.close = true;
    co_return res;
  }

  auto body = std::make_shared<const std::string>(std::move(r.body));
  auto job = [dir = workspaces_dir_, id = row->id, status = row->status, where = *path, body,
              append]() -> ApiResult<files::WriteResult> {
    auto ws = open_workspace(dir, id, status);
    if (!ws) return ws.error();
    files::FsIdentity as(ws->owner_uid(), ws->owner_gid());
    return files::write_file(*ws, where, *body, append);
  };
  auto written = co_await pool_->run(std::move(job));
  if (!written) co_return error_answer(r, written.error());

  const std::string rel = path->text();
  Actor actor{r.actor, r.peer_ip, r.request_id};
  std::string detail = audit_detail(rel, written->size, append);
  std::string action = "file.put";
  Status audited =
      co_await service_.record_audit(actor, std::move(action), row->id, std::move(detail));
  if (!audited) {
    // The file is written; saying otherwise would be wrong. The operator hears of it.
    kLog.warn("cannot record the file.put audit row",
              {{"id", row->id}, {"error", audited.error().message()}});
  }
  const std::string sandbox_id = row->id;
  co_await service_.touch(sandbox_id);  // SPEC §4.1: a file write is activity
  co_return json_answer(200, write_json(rel, *written));
}

boost::asio::awaitable<Response> FilesApi::export_tar(Request& r) {
  auto target = file_target(service_, r, files::PathUse::tree);
  if (!target) co_return error_answer(r, target.error());
  const store::SandboxRow* row = &target->row;
  const files::FilePath* path = &target->path;
  auto all = query_bool(r, "all", false);
  if (!all) co_return error_answer(r, all.error());
  auto gzip = query_bool(r, "gzip", false);
  if (!gzip) co_return error_answer(r, gzip.error());
  std::vector<std::string> patterns;
  if (!*all) patterns = config_.files.export_exclude;
  std::size_t given = 0;
  for (const auto& [key, value] : r.query) {
    if (key != "exclude") continue;
    if (++given > kMaxExcludes) {
      co_return error_answer(
          r, ApiError::invalid("exclude: at most " + std::to_string(kMaxExcludes) + " patterns"));
    }
    if (value.empty() || value.size() > files::kMaxPathBytes ||
        value.find('\0') != std::string::npos) {
      co_return error_answer(
          r, ApiError::invalid("exclude: a pattern must be 1-4096 bytes without NUL"));
    }
    patterns.push_back(value);
  }

  files::ExportOptions options;
  options.excludes = files::ExcludeSet(patterns);
  options.uid = config_.sandbox.user.uid;
  options.gid = config_.sandbox.user.gid;
  auto open_job = [dir = workspaces_dir_, id = row->id, status = row->status, where = *path,
                   options]() -> ApiResult<std::shared_ptr<ExportState>> {
    auto ws = open_workspace(dir, id, status);
    if (!ws) return ws.error();
    auto state = std::make_shared<ExportState>();
    state->owner_uid = ws->owner_uid();
    state->owner_gid = ws->owner_gid();
    state->id = id;
    files::FsIdentity as(state->owner_uid, state->owner_gid);
    auto walker = files::ExportWalker::open(std::move(*ws), where, options);
    if (!walker) return walker.error();
    state->walker = std::move(*walker);
    return state;
  };
  auto opened = co_await pool_->run(std::move(open_job));
  if (!opened) co_return error_answer(r, opened.error());
  std::shared_ptr<ExportState> state = std::move(*opened);
  if (*gzip) {
    auto encoder = GzipEncoder::make();
    if (!encoder) co_return error_answer(r, ApiError::from(encoder.error()));
    state->gzip.emplace(std::move(*encoder));
  }

  Response res;
  res.content_type = *gzip ? "application/gzip" : "application/x-tar";
  res.headers.emplace_back("Content-Disposition",
                           "attachment; filename=\"" + row->id + (*gzip ? ".tar.gz\"" : ".tar\""));
  BlockingPool* pool = pool_.get();
  res.stream = [pool, state](BodySink& sink) -> boost::asio::awaitable<void> {
    for (;;) {
      auto step = [state]() { return export_step(*state); };
      Result<ExportChunk> chunk = co_await pool->run(std::move(step));
      if (!chunk) {
        log_export_end(*state, chunk);
        sink.abort();  // no last chunk: the client sees a truncated archive
        co_return;
      }
      if (!co_await sink.write(chunk->bytes)) co_return;  // the client left: stop reading
      if (chunk->done) {
        log_export_end(*state, chunk);
        co_return;
      }
    }
  };
  co_return res;
}

}  // namespace sandboxd::control
