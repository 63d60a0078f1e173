// The files API against the real sandboxd and Docker Engine (SPEC §2.7.6-2.7.10, §7, §13):
// write/read/append round trips seen from inside the sandbox too, listings, the export
// parsed here (plain and gzip), size caps, and every path that must not leave the
// workspace: symlinks made by the tenant (through exec) and on the host, `..`, absolute
// paths, NUL. Nothing outside the workspace may be read, created or changed.
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "raw_http.h"
#include "sandboxd_fixture.h"

namespace sandboxd::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUnknownId = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
constexpr std::size_t kCap = 64 * 1024;  // files.read_max and files.write_max below

bool exists_no_follow(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// ---------------------------------------------------------------------------- tar parsing

struct TarItem {
  char type = '0';
  std::string data;
  std::string link;
  unsigned mode = 0;
  unsigned long uid = 0;
};

struct ParsedTar {
  std::map<std::string, TarItem> items;
  bool complete = false;  // ended with the two zero blocks
  std::string problem;
};

unsigned long octal_field(const std::string& block, std::size_t offset, std::size_t width) {
  unsigned long v = 0;
  for (std::size_t i = offset; i < offset + width && block[i] >= '0' && block[i] <= '7'; ++i) {
    v = v * 8 + static_cast<unsigned long>(block[i] - '0');
  }
  return v;
}

std::string text_field(const std::string& block, std::size_t offset, std::size_t width) {
  std::string s = block.substr(offset, width);
  return s.substr(0, s.find('\0'));
}

// A small independent reader: ustar headers (with prefix), pax `x` records for path,
// linkpath and size, checksums verified.
ParsedTar parse_tar(const std::string& archive) {
  ParsedTar out;
  std::map<std::string, std::string> pax;
  std::size_t pos = 0;
  while (pos + 512 <= archive.size()) {
    const std::string block = archive.substr(pos, 512);
    if (block.find_first_not_of('\0') == std::string::npos) {
      out.complete = pos + 1024 <= archive.size() &&
                     archive.substr(pos + 512, 512).find_first_not_of('\0') == std::string::npos;
      return out;
    }
    unsigned long sum = 0;
    for (std::size_t i = 0; i < 512; ++i) {
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(block[i]);
    }
    if (sum != octal_field(block, 148, 8)) {
      out.problem = "bad checksum at " + std::to_string(pos);
      return out;
    }
    if (block.substr(257, 6) != std::string("ustar\0", 6)) {
      out.problem = "not ustar at " + std::to_string(pos);
      return out;
    }
    unsigned long size = octal_field(block, 124, 12);
    const char type = block[156];
    if (type == 'x' && pos + 512 + size <= archive.size()) {
      std::string records = archive.substr(pos + 512, size);
      for (std::size_t at = 0; at < records.size();) {
        const std::size_t space = records.find(' ', at);
        const std::size_t length = std::stoul(records.substr(at, space - at));
        std::string record = records.substr(space + 1, length - (space + 1 - at) - 1);
        const std::size_t eq = record.find('=');
        pax[record.substr(0, eq)] = record.substr(eq + 1);
        at += length;
      }
      pos += 512 + (size + 511) / 512 * 512;
      continue;
    }
    if (pax.count("size")) size = std::stoul(pax["size"]);
    std::string name = text_field(block, 0, 100);
    const std::string prefix = text_field(block, 345, 155);
    if (!prefix.empty()) name = prefix + "/" + name;
    if (pax.count("path")) name = pax["path"];
    TarItem item;
    item.type = type;
    item.mode = static_cast<unsigned>(octal_field(block, 100, 8));
    item.uid = octal_field(block, 108, 8);
    item.link = pax.count("linkpath") ? pax["linkpath"] : text_field(block, 157, 100);
    if (pos + 512 + size > archive.size()) {
      out.problem = "truncated content of " + name;
      return out;
    }
    item.data = archive.substr(pos + 512, size);
    out.items[name] = item;
    pax.clear();
    pos += 512 + (size + 511) / 512 * 512;
  }
  out.problem = "no end-of-archive marker";
  return out;
}

std::string gunzip(const std::string& in) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return "";
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  std::array<unsigned char, 16384> buffer;
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = buffer.data();
    zs.avail_out = static_cast<uInt>(buffer.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(reinterpret_cast<const char*>(buffer.data()), buffer.size() - zs.avail_out);
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END ? out : "";
}

// ---------------------------------------------------------------------------- fixture

class Files : public SandboxdTest {
 protected:
  SandboxdConfig config() const override {
    SandboxdConfig c;
    c.extra = "files:\n  read_max: 64KiB\n  write_max: 64KiB\n";
    return c;
  }

  static std::string base(const std::string& id) { return "/v1/sandboxes/" + id; }

  Answer put(const std::string& id, const std::string& path, const std::string& body,
             const std::string& mode = "", const std::string& type = "application/octet-stream") {
    std::string target = base(id) + "/files?path=" + url_encode(path);
    if (!mode.empty()) target += "&mode=" + mode;
    return sd().call("PUT", target, body, {"Content-Type: " + type});
  }
  Answer read(const std::string& id, const std::string& path) {
    return sd().get(base(id) + "/files/content?path=" + url_encode(path));
  }
  Answer list(const std::string& id, const std::string& query) {
    return sd().get(base(id) + "/files?" + query);
  }
  Answer export_tar(const std::string& id, const std::string& query) {
    return sd().get(base(id) + "/export?" + query);
  }

  // A 4xx with the v1 envelope and `code`.
  static void expect_refused(const Answer& a, int status, const std::string& code,
                             const std::string& what) {
    EXPECT_EQ(a.status, status) << what << ": " << a.body;
    EXPECT_EQ(a.error_code(), code) << what << ": " << a.body;
  }

  // Every entry below the workspace whose name marks a temporary write.
  std::vector<std::string> temp_files(const std::string& id) {
    std::vector<std::string> found;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(sd().workspace(id), ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->path().filename().string().starts_with(".sandboxd-put-")) found.push_back(it->path());
    }
    return found;
  }
};

TEST_F(Files, WriteReadAppendRoundTripAlsoInsideTheSandbox) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());

  // A JSON body is written as a JSON file, byte for byte, whatever its Content-Type.
  const std::string json_text = R"({"not": "parsed",  "dup": 1, "dup": 2})";
  Answer w = put(id, "t/dir/config.json", json_text, "", "application/json");
  ASSERT_EQ(w.status, 200) << w.body;
  EXPECT_EQ(w.str("path"), "t/dir/config.json");
  EXPECT_EQ(w.json.at("size"), json::value(json_text.size()));
  EXPECT_EQ(w.json.at("file_size"), json::value(json_text.size()));
  EXPECT_EQ(w.json.at("created"), json::value(true));
  Answer r = read(id, "t/dir/config.json");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, json_text);
  EXPECT_EQ(r.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(r.header("content-length"), std::to_string(json_text.size()));

  // Binary content, normalized path, replaced in place.
  const std::string binary("\x00\xff\xfe binary\x01", 11);
  Answer b = put(id, "./t//bin.dat", binary);
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(b.str("path"), "t/bin.dat");
  Answer rb = read(id, "t/bin.dat");
  EXPECT_EQ(rb.body, binary);
  EXPECT_EQ(rb.header("content-type"), "application/octet-stream");
  Answer again = put(id, "t/bin.dat", "v2");
  EXPECT_EQ(again.json.at("created"), json::value(false));
  EXPECT_EQ(read(id, "t/bin.dat").body, "v2");

  // Append: created, then added in order.
  Answer a1 = put(id, "t/log.txt", "one\n", "append");
  ASSERT_EQ(a1.status, 200) << a1.body;
  EXPECT_EQ(a1.json.at("created"), json::value(true));
  Answer a2 = put(id, "t/log.txt", "two\n", "append");
  ASSERT_EQ(a2.status, 200) << a2.body;
  EXPECT_EQ(a2.json.at("created"), json::value(false));
  EXPECT_EQ(a2.json.at("size"), json::value(4));
  EXPECT_EQ(a2.json.at("file_size"), json::value(8));
  EXPECT_EQ(read(id, "t/log.txt").body, "one\ntwo\n");

  // The sandbox sees the same files, owned by its user, with the SPEC's modes.
  Answer seen = exec(id, {"sh", "-c",
                          "cat /home/sandbox/t/log.txt; stat -c '%u:%g %a' /home/sandbox/t/log.txt "
                          "/home/sandbox/t/dir /home/sandbox/t/dir/config.json"});
  ASSERT_EQ(seen.status, 200) << seen.body;
  EXPECT_EQ(seen.str("stdout"), "one\ntwo\n1000:1000 644\n1000:1000 755\n1000:1000 644\n");
  // And what the sandbox writes, the API reads.
  ASSERT_EQ(exec(id, {"sh", "-c", "printf 'from inside' > /home/sandbox/t/inside.txt"}).status,
            200);
  EXPECT_EQ(read(id, "t/inside.txt").body, "from inside");
  EXPECT_TRUE(temp_files(id).empty());

  // Writes are audited as file.put {path, size, append}; reads are not.
  const std::string db = sd().data_dir() + "/state/sandboxd.db";
  FILE* q = ::popen(("sqlite3 -readonly " + db +
                     " \"select detail from audit where action='file.put' order by id\" 2>&1")
                        .c_str(),
                    "r");
  ASSERT_NE(q, nullptr);
  std::string rows;
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), q)) rows.append(buf.data(), n);
  ASSERT_EQ(::pclose(q), 0) << rows;
  EXPECT_NE(rows.find(R"({"path":"t/dir/config.json","size":)" + std::to_string(json_text.size()) +
                      R"(,"append":false})"),
            std::string::npos)
      << rows;
  EXPECT_NE(rows.find(R"({"path":"t/log.txt","size":4,"append":true})"), std::string::npos) << rows;

  // Bad modes and the reserved subtree.
  expect_refused(put(id, "t/x", "x", "truncate"), 400, "invalid_request", "mode=truncate");
  expect_refused(put(id, ".sandboxd/evil", "x"), 400, "invalid_path", ".sandboxd write");
  expect_refused(put(id, ".sandboxd/evil", "x", "append"), 400, "invalid_path", ".sandboxd append");
  EXPECT_FALSE(exists_no_follow(sd().workspace(id) + "/.sandboxd/evil"));
  expect_refused(put(id, "t/dir", "x"), 400, "invalid_path", "directory as file");
  expect_refused(put(id, "t/dir/config.json/under", "x"), 400, "invalid_path", "through a file");
  expect_refused(put(id, "t/", "x"), 400, "invalid_path", "trailing slash");
}

TEST_F(Files, ListAndExportShowWhatWasWritten) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  const std::string long_name = "t/" + std::string(60, 'd') + "/" + std::string(130, 'f') + ".txt";
  ASSERT_EQ(put(id, "t/a.txt", "alpha").status, 200);
  ASSERT_EQ(put(id, "t/src/main.c", "int main(void) { return 0; }\n").status, 200);
  ASSERT_EQ(put(id, "t/node_modules/pkg/index.js", "module.exports = 1;\n").status, 200);
  ASSERT_EQ(put(id, "t/.git/HEAD", "ref: refs/heads/main\n").status, 200);
  ASSERT_EQ(put(id, "t/debug.log", "noise").status, 200);
  ASSERT_EQ(put(id, long_name, "long").status, 200);
  // The tenant makes a symlink out of the workspace; it is listed and archived as a link.
  ASSERT_EQ(exec(id, {"ln", "-s", "/etc/passwd", "/home/sandbox/t/pw"}).status, 200);

  Answer top = list(id, "path=t");
  ASSERT_EQ(top.status, 200) << top.body;
  EXPECT_EQ(top.str("path"), "t");
  EXPECT_EQ(top.json.at("recursive"), json::value(false));
  EXPECT_EQ(top.json.at("truncated"), json::value(false));
  std::vector<std::string> paths;
  for (const auto& e : top.json.at("entries").as_array()) paths.push_back(str_of(e, "path"));
  EXPECT_EQ(paths, (std::vector<std::string>{"t/.git", "t/a.txt", "t/" + std::string(60, 'd'),
                                             "t/debug.log", "t/node_modules", "t/pw", "t/src"}));
  for (const auto& e : top.json.at("entries").as_array()) {
    const std::string p = str_of(e, "path");
    if (p == "t/a.txt") {
      EXPECT_EQ(str_of(e, "type"), "file");
      EXPECT_EQ(e.at("size"), json::value(5));
      EXPECT_EQ(str_of(e, "mode"), "0644");
      EXPECT_EQ(str_of(e, "mtime").size(), 20u) << json::serialize(e);
    }
    if (p == "t/pw") {
      EXPECT_EQ(str_of(e, "type"), "symlink");
      EXPECT_EQ(str_of(e, "target"), "/etc/passwd");
    }
    if (p == "t/src") {
      EXPECT_EQ(str_of(e, "mode"), "0755");
    }
  }

  Answer walk = list(id, "path=t&recursive=true");
  ASSERT_EQ(walk.status, 200) << walk.body;
  std::map<std::string, json::object> by_path;
  for (const auto& e : walk.json.at("entries").as_array())
    by_path[str_of(e, "path")] = e.as_object();
  EXPECT_EQ(by_path.count("t/src/main.c"), 1u);
  EXPECT_EQ(by_path.count(long_name), 1u);
  EXPECT_EQ(by_path["t/node_modules"]["skipped"], json::value(true));
  EXPECT_EQ(by_path["t/.git"]["skipped"], json::value(true));
  EXPECT_EQ(by_path.count("t/node_modules/pkg"), 0u);
  Answer walk_all = list(id, "path=t&recursive=1&all=1");
  EXPECT_NE(walk_all.body.find("t/node_modules/pkg/index.js"), std::string::npos);
  Answer cut = list(id, "path=t&recursive=true&all=true&limit=3");
  EXPECT_EQ(cut.json.at("entries").as_array().size(), 3u);
  EXPECT_EQ(cut.json.at("truncated"), json::value(true));

  // Export: a streamed tar of `t`, entries relative to it, node_modules excluded by default.
  Answer tar = export_tar(id, "path=t");
  ASSERT_EQ(tar.status, 200) << tar.body;
  EXPECT_EQ(tar.header("content-type"), "application/x-tar");
  EXPECT_EQ(tar.header("content-disposition"), "attachment; filename=\"" + id + ".tar\"");
  EXPECT_EQ(tar.header("transfer-encoding"), "chunked");
  ParsedTar parsed = parse_tar(tar.body);
  ASSERT_TRUE(parsed.complete) << parsed.problem;
  const std::string long_rel = long_name.substr(2);
  EXPECT_EQ(parsed.items["a.txt"].data, "alpha");
  EXPECT_EQ(parsed.items["a.txt"].mode, 0644u);
  EXPECT_EQ(parsed.items["a.txt"].uid, 1000u);
  EXPECT_EQ(parsed.items["src/main.c"].data, "int main(void) { return 0; }\n");
  EXPECT_EQ(parsed.items["src/"].type, '5');
  EXPECT_EQ(parsed.items[".git/HEAD"].data, "ref: refs/heads/main\n");
  EXPECT_EQ(parsed.items[long_rel].data, "long");
  EXPECT_EQ(parsed.items["pw"].type, '2');
  EXPECT_EQ(parsed.items["pw"].link, "/etc/passwd");
  EXPECT_TRUE(parsed.items["pw"].data.empty());
  for (const auto& [name, item] : parsed.items) {
    EXPECT_FALSE(name.starts_with("node_modules")) << name;
    EXPECT_EQ(item.data.find("root:x:0:0"), std::string::npos) << name;  // /etc/passwd never read
  }

  // exclude= adds patterns; all=true drops the configured ones.
  ParsedTar fewer = parse_tar(export_tar(id, "path=t&exclude=*.log&exclude=src").body);
  ASSERT_TRUE(fewer.complete) << fewer.problem;
  EXPECT_EQ(fewer.items.count("debug.log"), 0u);
  EXPECT_EQ(fewer.items.count("src/main.c"), 0u);
  EXPECT_EQ(fewer.items.count("a.txt"), 1u);
  ParsedTar everything = parse_tar(export_tar(id, "path=t/&all=true").body);
  ASSERT_TRUE(everything.complete) << everything.problem;
  EXPECT_EQ(everything.items["node_modules/pkg/index.js"].data, "module.exports = 1;\n");

  // gzip=true: the same archive, compressed.
  Answer gz = export_tar(id, "path=t&gzip=true");
  ASSERT_EQ(gz.status, 200) << gz.body;
  EXPECT_EQ(gz.header("content-type"), "application/gzip");
  EXPECT_EQ(gz.header("content-disposition"), "attachment; filename=\"" + id + ".tar.gz\"");
  ParsedTar unzipped = parse_tar(gunzip(gz.body));
  ASSERT_TRUE(unzipped.complete) << unzipped.problem;
  EXPECT_EQ(unzipped.items.size(), parsed.items.size());
  EXPECT_EQ(unzipped.items["a.txt"].data, "alpha");

  // The whole workspace by default.
  ParsedTar whole = parse_tar(export_tar(id, "").body);
  ASSERT_TRUE(whole.complete) << whole.problem;
  EXPECT_EQ(whole.items["t/a.txt"].data, "alpha");

  // Export errors come as JSON before any archive byte.
  expect_refused(export_tar(id, "path=t/a.txt"), 400, "invalid_path", "export of a file");
  expect_refused(export_tar(id, "path=nothing"), 404, "not_found", "export of nothing");
  expect_refused(export_tar(id, "path=t&gzip=maybe"), 400, "invalid_request", "gzip=maybe");
}

TEST_F(Files, SymlinksDotDotAndAbsolutePathsNeverLeaveTheWorkspace) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  const std::string ws = sd().workspace(id);
  // Outside the workspace: a directory with a secret, next to the workspaces.
  char tmpl[] = "/tmp/sandboxd-outside-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string outside = tmpl;
  { std::ofstream(outside + "/secret") << "top secret\n"; }
  const std::string sibling = sd().data_dir() + "/workspaces/" + kUnknownId;
  // Host-side links (as a tenant's tar or a bind mount might leave them) ...
  fs::create_symlink(outside + "/secret", ws + "/escape");
  fs::create_symlink(outside, ws + "/linkdir");
  fs::create_symlink(outside + "/made-through-link", ws + "/dangling");
  // ... and links the tenant makes from inside.
  Answer ln =
      exec(id, {"sh", "-c",
                "ln -s /etc/shadow /home/sandbox/shadow && ln -s /etc /home/sandbox/etcdir && "
                "mkdir -p /home/sandbox/t && ln -s ../etcdir /home/sandbox/t/up"});
  ASSERT_EQ(ln.status, 200) << ln.body;
  ASSERT_EQ(ln.json.at("exit_code"), json::value(0)) << ln.body;

  auto symlink_refused = [&](const Answer& a, const std::string& what) {
    expect_refused(a, 400, "invalid_path", what);
    EXPECT_NE(a.body.find("symlink"), std::string::npos) << what << ": " << a.body;
    EXPECT_EQ(a.body.find("top secret"), std::string::npos) << what;
    EXPECT_EQ(a.body.find("root:"), std::string::npos) << what;
    EXPECT_EQ(a.body.find(outside), std::string::npos) << what;  // no host path in messages
  };
  for (const std::string p :
       {"escape", "linkdir/secret", "shadow", "etcdir/passwd", "t/up/passwd", "dangling"}) {
    symlink_refused(read(id, p), "read " + p);
  }
  for (const std::string p : {"escape", "dangling", "linkdir/new.txt", "linkdir/a/b/c.txt",
                              "etcdir/sandboxd-evil", "t/up/sandboxd-evil", "shadow"}) {
    symlink_refused(put(id, p, "pwned\n"), "write " + p);
    symlink_refused(put(id, p, "pwned\n", "append"), "append " + p);
  }
  for (const std::string p : {"linkdir", "etcdir", "t/up", "escape"}) {
    symlink_refused(list(id, "path=" + url_encode(p)), "list " + p);
    symlink_refused(export_tar(id, "path=" + url_encode(p)), "export " + p);
  }

  // `..`, absolute paths and NUL: refused by syntax, whatever is on disk.
  const std::vector<std::string> bad = {"../" + std::string(kUnknownId) + "/x",
                                        "t/../../x",
                                        "..",
                                        "/etc/passwd",
                                        "/tmp/sandboxd-evil",
                                        std::string("t/a\0b", 5)};
  for (const std::string& p : bad) {
    expect_refused(read(id, p), 400, "invalid_path", "read " + p);
    expect_refused(put(id, p, "pwned\n"), 400, "invalid_path", "write " + p);
    expect_refused(put(id, p, "pwned\n", "append"), 400, "invalid_path", "append " + p);
    expect_refused(list(id, "path=" + url_encode(p)), 400, "invalid_path", "list " + p);
    expect_refused(export_tar(id, "path=" + url_encode(p)), 400, "invalid_path", "export " + p);
  }
  // Percent-encoded dots are decoded once, then refused.
  expect_refused(
      sd().call("PUT", base(id) + "/files?path=%2E%2E%2Fx", "pwned", {"Content-Type: text/plain"}),
      400, "invalid_path", "encoded ..");
  expect_refused(sd().get(base(id) + "/files/content?path=t%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd"), 400,
                 "invalid_path", "encoded t/../../etc/passwd");
  // A path that is missing or given twice.
  expect_refused(sd().get(base(id) + "/files/content"), 400, "invalid_path", "no path");
  expect_refused(sd().get(base(id) + "/files/content?path=a&path=b"), 400, "invalid_request",
                 "two paths");

  // Nothing outside the workspace changed or appeared.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(outside)) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"secret"});
  EXPECT_EQ(read_whole(outside + "/secret"), "top secret\n");
  EXPECT_FALSE(exists_no_follow("/etc/sandboxd-evil"));
  EXPECT_FALSE(exists_no_follow("/tmp/sandboxd-evil"));
  EXPECT_FALSE(exists_no_follow(sibling));
  EXPECT_FALSE(exists_no_follow(sd().data_dir() + "/workspaces/x"));
  EXPECT_FALSE(exists_no_follow(sd().data_dir() + "/x"));
  // The links are still links, pointing where they did.
  EXPECT_EQ(fs::read_symlink(ws + "/escape"), outside + "/secret");
  EXPECT_EQ(fs::read_symlink(ws + "/shadow"), "/etc/shadow");
  EXPECT_TRUE(temp_files(id).empty());
  std::error_code ec;
  fs::remove_all(outside, ec);
}

TEST_F(Files, OversizeWritesAre413AndChangeNothing) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(put(id, "t/keep.txt", "original").status, 200);

  // Declared: refused before the body is read.
  Answer declared = put(id, "t/keep.txt", std::string(kCap + 1, 'x'));
  expect_refused(declared, 413, "payload_too_large", "declared");
  Answer appended = put(id, "t/keep.txt", std::string(kCap + 1, 'x'), "append");
  expect_refused(appended, 413, "payload_too_large", "declared append");
  // With Expect: 100-continue the final answer comes without a 100.
  {
    RawConnection conn(sd().port());
    conn.send("PUT " + base(id) +
              "/files?path=t/keep.txt HTTP/1.1\r\nHost: x\r\n"
              "Content-Type: text/plain\r\nExpect: 100-continue\r\nContent-Length: " +
              std::to_string(kCap + 1) + "\r\n\r\n");
    auto r = conn.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413) << r->body;
  }
  // Chunked: counted while read; 413 and the connection closes.
  for (const std::string mode : {"write", "append"}) {
    RawConnection conn(sd().port());
    std::string request = "PUT " + base(id) + "/files?path=t/keep.txt&mode=" + mode +
                          " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n";
    const std::string piece(4096, 'c');
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    for (std::size_t sent = 0; sent <= kCap; sent += piece.size()) request += size + piece + "\r\n";
    conn.send(request + "0\r\n\r\n");
    auto r = conn.read_response();
    ASSERT_TRUE(r) << mode;
    EXPECT_EQ(r->status, 413) << mode << ": " << r->body;
    EXPECT_TRUE(conn.wait_closed()) << mode;
  }
  EXPECT_EQ(read(id, "t/keep.txt").body, "original");
  EXPECT_TRUE(temp_files(id).empty());

  // Exactly the cap fits.
  Answer full = put(id, "t/keep.txt", std::string(kCap, 'y'));
  ASSERT_EQ(full.status, 200) << full.body;
  EXPECT_EQ(full.json.at("file_size"), json::value(kCap));
  EXPECT_EQ(read(id, "t/keep.txt").body, std::string(kCap, 'y'));
}

TEST_F(Files, ReadAndListErrors) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(put(id, "t/small.txt", "s").status, 200);
  ASSERT_EQ(exec(id, {"sh", "-c", "head -c 100000 /dev/zero > /home/sandbox/t/big.bin"}).status,
            200);

  Answer missing = read(id, "t/missing.txt");
  expect_refused(missing, 404, "not_found", "missing file");
  Answer missing_dir = read(id, "nope/missing.txt");
  expect_refused(missing_dir, 404, "not_found", "missing parent");
  expect_refused(read(id, "t"), 400, "invalid_path", "directory");
  expect_refused(read(id, "t/small.txt/x"), 400, "invalid_path", "through a file");
  Answer big = read(id, "t/big.bin");
  expect_refused(big, 400, "file_too_large", "over read_max");
  EXPECT_NE(
      big.body.find("file is 97.7 KiB; the read limit is 64 KiB (files.read_max); use export"),
      std::string::npos)
      << big.body;
  // HEAD gives the GET's headers.
  Answer head = sd().call("HEAD", base(id) + "/files/content?path=t/small.txt");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), "1");

  expect_refused(list(id, "path=t/small.txt"), 400, "invalid_path", "list a file");
  expect_refused(list(id, "path=nothing"), 404, "not_found", "list nothing");
  for (const std::string q : {"path=t&limit=0", "path=t&limit=100001", "path=t&limit=x",
                              "path=t&recursive=yes", "path=t&path=u"}) {
    expect_refused(list(id, q), 400, "invalid_request", q);
  }
  // Unknown and malformed sandboxes.
  expect_refused(read(kUnknownId, "t/small.txt"), 404, "not_found", "unknown sandbox");
  expect_refused(put(kUnknownId, "t/x", "x"), 404, "not_found", "unknown sandbox write");
  expect_refused(list(kUnknownId, ""), 404, "not_found", "unknown sandbox list");
  expect_refused(export_tar(kUnknownId, ""), 404, "not_found", "unknown sandbox export");
  expect_refused(sd().get("/v1/sandboxes/not-an-id/files"), 400, "invalid_id", "bad id");
  EXPECT_FALSE(exists_no_follow(sd().data_dir() + "/workspaces/" + kUnknownId));
  // Wrong method: 405 with Allow.
  Answer post = sd().post(base(id) + "/files/content?path=t/small.txt", "{}");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("allow"), "GET, HEAD");
}

TEST_F(Files, WorkWhileTheSandboxIsStopped) {
  std::string id = create_v1("u", "p");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_init_ready(id));
  ASSERT_EQ(put(id, "t/before.txt", "before").status, 200);
  Answer stop = sd().post(base(id) + "/stop");
  ASSERT_EQ(stop.status, 200) << stop.body;
  ASSERT_TRUE(wait_status(id, "stopped"));

  EXPECT_EQ(read(id, "t/before.txt").body, "before");
  Answer w = put(id, "t/after.txt", "after");
  ASSERT_EQ(w.status, 200) << w.body;
  Answer l = list(id, "path=t");
  ASSERT_EQ(l.status, 200) << l.body;
  EXPECT_EQ(l.json.at("entries").as_array().size(), 2u);
  ParsedTar tar = parse_tar(export_tar(id, "path=t").body);
  ASSERT_TRUE(tar.complete) << tar.problem;
  EXPECT_EQ(tar.items["after.txt"].data, "after");
  // Still stopped: the files API never wakes a sandbox.
  Answer row = sd().get(base(id));
  EXPECT_EQ(row.str("status"), "stopped");
}

}  // namespace
}  // namespace sandboxd::testing
