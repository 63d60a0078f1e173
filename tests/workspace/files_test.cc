// The files API's host side (SPEC §7): path syntax, resolution beneath the workspace root
// with both resolvers (openat2 and the O_NOFOLLOW walk), and list, read, write, append and
// export on a real temporary directory, with symlinks that point outside it.
#include "files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tar_reader.h"

namespace sandboxd::control::files {
namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

bool present(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

std::string rule_of(const ApiError& e) { return e.message.substr(0, e.message.find(':')); }

FilePath path_of(const std::string& text, PathUse use = PathUse::read) {
  auto p = parse_path(text, use);
  EXPECT_TRUE(p.has_value()) << text << ": " << (p ? "" : p.error().message);
  return p ? *p : FilePath{};
}

// ---------------------------------------------------------------------------- path syntax

struct PathCase {
  std::string raw;
  PathUse use;
  std::string normalized;  // "" when refused
  std::string rule;        // the refusal's rule
};

TEST(ParsePath, FollowsTheSyntaxRules) {
  const std::string nul("a\0b", 3);
  const std::vector<PathCase> cases = {
      {"a/b.txt", PathUse::read, "a/b.txt", ""},
      {"./a//b/./c", PathUse::read, "a/b/c", ""},
      {".sandboxd/state.json", PathUse::read, ".sandboxd/state.json", ""},
      {"dir/", PathUse::tree, "dir", ""},
      {".", PathUse::tree, ".", ""},
      {"", PathUse::tree, ".", ""},
      {"ünïcode/名前", PathUse::write, "ünïcode/名前", ""},
      {"...", PathUse::read, "...", ""},
      {"", PathUse::read, "", "empty"},
      {"/etc/passwd", PathUse::read, "", "absolute"},
      {"/", PathUse::tree, "", "absolute"},
      {"..", PathUse::tree, "", "dot_dot"},
      {"a/../b", PathUse::read, "", "dot_dot"},
      {"a/..", PathUse::write, "", "dot_dot"},
      {nul, PathUse::read, "", "nul"},
      {"bad\xff", PathUse::read, "", "not_utf8"},
      {std::string(4097, 'a'), PathUse::tree, "", "too_long"},
      {std::string(256, 'a'), PathUse::read, "", "component_too_long"},
      {"dir/", PathUse::read, "", "trailing_slash"},
      {"dir/", PathUse::write, "", "trailing_slash"},
      {".", PathUse::read, "", "not_a_file"},
      {"a/.", PathUse::write, "", "not_a_file"},
      {".sandboxd/x", PathUse::write, "", "reserved_path"},
      {"./.sandboxd", PathUse::write, "", "reserved_path"},
  };
  for (const auto& c : cases) {
    auto p = parse_path(c.raw, c.use);
    if (c.rule.empty()) {
      ASSERT_TRUE(p.has_value()) << c.raw << ": " << p.error().message;
      EXPECT_EQ(p->text(), c.normalized) << c.raw;
    } else {
      ASSERT_FALSE(p.has_value()) << c.raw;
      EXPECT_EQ(p.error().status, 400) << c.raw;
      EXPECT_EQ(p.error().code, "invalid_path") << c.raw;
      EXPECT_EQ(rule_of(p.error()), c.rule) << c.raw << ": " << p.error().message;
    }
  }
  // Exactly at the limits is fine.
  EXPECT_TRUE(parse_path(std::string(255, 'a'), PathUse::read).has_value());
  std::string longest;
  while (longest.size() + 200 < 4096) longest += std::string(199, 'b') + "/";
  longest += std::string(4096 - longest.size(), 'c');
  EXPECT_TRUE(parse_path(longest, PathUse::tree).has_value());
  // Missing: the root for trees, an error for files.
  EXPECT_EQ(parse_path(std::nullopt, PathUse::tree)->text(), ".");
  EXPECT_EQ(rule_of(parse_path(std::nullopt, PathUse::read).error()), "missing");
}

TEST(HumanSize, ReadsLikeTheSpec) {
  EXPECT_EQ(human_size(0), "0 bytes");
  EXPECT_EQ(human_size(1), "1 byte");
  EXPECT_EQ(human_size(1023), "1023 bytes");
  EXPECT_EQ(human_size(1024), "1 KiB");
  EXPECT_EQ(human_size(8 * 1024 * 1024), "8 MiB");
  EXPECT_EQ(human_size(12 * 1024 * 1024 + 512 * 1024), "12.5 MiB");
  EXPECT_EQ(human_size(std::uint64_t{3} << 30), "3 GiB");
}

TEST(ExcludeSet, NamesMatchAtAnyDepthPathsFromTheRoot) {
  ExcludeSet set({"node_modules", "./build/out/", "*.log", "/docs/tmp*"});
  EXPECT_TRUE(set.excluded("node_modules", "node_modules"));
  EXPECT_TRUE(set.excluded("a/b/node_modules", "node_modules"));
  EXPECT_TRUE(set.excluded("x/y.log", "y.log"));
  EXPECT_TRUE(set.excluded("build/out", "out"));
  EXPECT_FALSE(set.excluded("src/build/out", "out"));
  EXPECT_TRUE(set.excluded("docs/tmp1", "tmp1"));
  EXPECT_FALSE(set.excluded("docs/a/tmp1", "tmp1"));
  EXPECT_FALSE(set.excluded("src/main.c", "main.c"));
  EXPECT_FALSE(ExcludeSet({"", "/"}).excluded("a", "a"));
}

// ---------------------------------------------------------------------------- workspace

// A temporary tree: `ws` is the workspace, `outside` holds what a tenant must never reach,
// and the workspace has symlinks to it of every kind.
class FilesTest : public ::testing::TestWithParam<Resolve> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sandboxd-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    ws_dir_ = base_ + "/ws";
    outside_ = base_ + "/outside";
    ASSERT_EQ(::mkdir(ws_dir_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(outside_.c_str(), 0755), 0);
    write_text(outside_ + "/secret", "top secret\n");
    fs::create_symlink(outside_ + "/secret", ws_dir_ + "/abs");
    fs::create_symlink("../outside/secret", ws_dir_ + "/rel");
    fs::create_symlink(outside_, ws_dir_ + "/linkdir");
    fs::create_symlink(outside_ + "/created-by-api", ws_dir_ + "/dangling");
    fs::create_directories(ws_dir_ + "/sub/deeper");
    write_text(ws_dir_ + "/sub/file.txt", "hello\n");
    fs::create_symlink("../linkdir", ws_dir_ + "/sub/up");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  Workspace ws() {
    auto w = Workspace::open_dir(ws_dir_, GetParam());
    EXPECT_TRUE(w.has_value());
    return std::move(*w);
  }

  // Nothing outside the workspace changed: still one file with its content.
  void expect_outside_untouched() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(outside_)) names.push_back(e.path().filename());
    EXPECT_EQ(names, std::vector<std::string>{"secret"});
    EXPECT_EQ(read_text(outside_ + "/secret"), "top secret\n");
  }

  std::string base_, ws_dir_, outside_;
};

INSTANTIATE_TEST_SUITE_P(Resolvers, FilesTest, ::testing::Values(Resolve::automatic, Resolve::walk),
                         [](const auto& param_info) {
                           return std::string(param_info.param == Resolve::walk ? "Walk"
                                                                                : "Openat2");
                         });

TEST_P(FilesTest, OpenBeneathRefusesEverySymlinkAndNeverClimbs) {
  Workspace w = ws();
  const std::vector<std::pair<std::string, int>> cases = {
      {"abs", ELOOP},           {"rel", ELOOP},
      {"linkdir", ELOOP},       {"linkdir/secret", ELOOP},
      {"sub/up/secret", ELOOP}, {"dangling", ELOOP},
      {"missing", ENOENT},      {"sub/file.txt/x", ENOTDIR},
  };
  for (const auto& [rel, err] : cases) {
    const int fd = open_beneath(w.fd(), rel, O_RDONLY, 0, GetParam());
    EXPECT_EQ(fd, -err) << rel;
    if (fd >= 0) ::close(fd);
  }
  // O_CREAT on a dangling link never creates its target.
  const int fd = open_beneath(w.fd(), "dangling", O_WRONLY | O_CREAT, 0644, GetParam());
  EXPECT_EQ(fd, -ELOOP);
  if (fd >= 0) ::close(fd);
  // A plain file opens.
  const int good = open_beneath(w.fd(), "sub/file.txt", O_RDONLY, 0, GetParam());
  EXPECT_GE(good, 0);
  if (good >= 0) ::close(good);
  expect_outside_untouched();
}

TEST_P(FilesTest, EveryOperationRefusesSymlinksAndTouchesNothingOutside) {
  Workspace w = ws();
  auto symlink_refused = [](const ApiError& e) {
    return e.status == 400 && e.code == "invalid_path" && rule_of(e) == "symlink_refused";
  };
  for (const std::string p : {"abs", "rel", "linkdir/secret", "sub/up/secret"}) {
    auto r = read_file(w, path_of(p), 1 << 20);
    ASSERT_FALSE(r.has_value()) << p;
    EXPECT_TRUE(symlink_refused(r.error())) << p << ": " << r.error().message;
    EXPECT_EQ(r.error().message.find("top secret"), std::string::npos);
  }
  for (const std::string p :
       {"abs", "rel", "dangling", "linkdir/new.txt", "linkdir/a/b/c.txt", "sub/up/new.txt"}) {
    for (bool append : {false, true}) {
      auto r = write_file(w, path_of(p, PathUse::write), "pwned\n", append);
      ASSERT_FALSE(r.has_value()) << p;
      EXPECT_TRUE(symlink_refused(r.error()))
          << p << " append=" << append << ": " << r.error().message;
    }
  }
  for (const std::string p : {"linkdir", "sub/up"}) {
    auto l = list(w, path_of(p, PathUse::tree), ListOptions{});
    ASSERT_FALSE(l.has_value()) << p;
    EXPECT_TRUE(symlink_refused(l.error())) << p;
    auto e = ExportWalker::open(ws(), path_of(p, PathUse::tree), ExportOptions{});
    ASSERT_FALSE(e.has_value()) << p;
    EXPECT_TRUE(symlink_refused(e.error())) << p;
  }
  expect_outside_untouched();
  // The links themselves are still there, unchanged.
  EXPECT_EQ(fs::read_symlink(ws_dir_ + "/abs"), outside_ + "/secret");
  EXPECT_EQ(fs::read_symlink(ws_dir_ + "/dangling"), outside_ + "/created-by-api");
}

TEST_P(FilesTest, WriteReadRoundTripKeepsModesAndLeavesNoTemporaryFile) {
  Workspace w = ws();
  auto made =
      write_file(w, path_of("new/dirs/file.bin", PathUse::write), std::string("a\0b", 3), false);
  ASSERT_TRUE(made.has_value()) << made.error().message;
  EXPECT_TRUE(made->created);
  EXPECT_EQ(made->size, 3u);
  EXPECT_EQ(made->file_size, 3u);
  EXPECT_EQ(lstat_of(ws_dir_ + "/new/dirs/file.bin").st_mode & 07777, 0644u);
  EXPECT_EQ(lstat_of(ws_dir_ + "/new").st_mode & 07777, 0755u);
  EXPECT_EQ(lstat_of(ws_dir_ + "/new/dirs").st_mode & 07777, 0755u);
  auto back = read_file(w, path_of("new/dirs/file.bin"), 1 << 20);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, std::string("a\0b", 3));

  // Replacing keeps the mode without setuid/setgid/sticky.
  ASSERT_EQ(::chmod((ws_dir_ + "/sub/file.txt").c_str(), 04750), 0);
  auto replaced = write_file(w, path_of("sub/file.txt", PathUse::write), "new content", false);
  ASSERT_TRUE(replaced.has_value()) << replaced.error().message;
  EXPECT_FALSE(replaced->created);
  EXPECT_EQ(lstat_of(ws_dir_ + "/sub/file.txt").st_mode & 07777, 0750u);
  EXPECT_EQ(read_text(ws_dir_ + "/sub/file.txt"), "new content");

  // A hard link elsewhere keeps the old content: the write replaces the name.
  ASSERT_EQ(::link((ws_dir_ + "/sub/file.txt").c_str(), (ws_dir_ + "/hard").c_str()), 0);
  ASSERT_TRUE(write_file(w, path_of("sub/file.txt", PathUse::write), "third", false).has_value());
  EXPECT_EQ(read_text(ws_dir_ + "/hard"), "new content");

  for (const auto& e : fs::recursive_directory_iterator(ws_dir_)) {
    EXPECT_EQ(e.path().filename().string().find(".sandboxd-put-"), std::string::npos) << e.path();
  }
  // A directory, a path through a file, the workspace root.
  auto dir = write_file(w, path_of("sub/deeper", PathUse::write), "x", false);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(rule_of(dir.error()), "is_a_directory");
  auto through = write_file(w, path_of("sub/file.txt/x", PathUse::write), "x", false);
  ASSERT_FALSE(through.has_value());
  EXPECT_EQ(rule_of(through.error()), "not_a_directory");
}

TEST_P(FilesTest, AppendAddsInOrderAndRefusesHardLinks) {
  Workspace w = ws();
  auto first = write_file(w, path_of("logs/app.log", PathUse::write), "one\n", true);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_TRUE(first->created);
  EXPECT_EQ(lstat_of(ws_dir_ + "/logs/app.log").st_mode & 07777, 0644u);
  auto second = write_file(w, path_of("logs/app.log", PathUse::write), "two\n", true);
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->size, 4u);
  EXPECT_EQ(second->file_size, 8u);
  EXPECT_EQ(read_text(ws_dir_ + "/logs/app.log"), "one\ntwo\n");

  ASSERT_EQ(::link((ws_dir_ + "/logs/app.log").c_str(), (ws_dir_ + "/linked").c_str()), 0);
  auto linked = write_file(w, path_of("linked", PathUse::write), "x", true);
  ASSERT_FALSE(linked.has_value());
  EXPECT_EQ(rule_of(linked.error()), "hard_link_refused");
  EXPECT_EQ(read_text(ws_dir_ + "/logs/app.log"), "one\ntwo\n");
}

TEST_P(FilesTest, ReadAnswersMissingDirectoriesSpecialFilesAndTheLimit) {
  Workspace w = ws();
  auto missing = read_file(w, path_of("nope.txt"), 1 << 20);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().status, 404);
  auto dir = read_file(w, path_of("sub"), 1 << 20);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(rule_of(dir.error()), "is_a_directory");
  ASSERT_EQ(::mkfifo((ws_dir_ + "/fifo").c_str(), 0644), 0);
  auto fifo = read_file(w, path_of("fifo"), 1 << 20);  // must not block
  ASSERT_FALSE(fifo.has_value());
  EXPECT_EQ(rule_of(fifo.error()), "not_a_file");
  write_text(ws_dir_ + "/big", std::string(2560, 'x'));
  auto big = read_file(w, path_of("big"), 1024);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().status, 400);
  EXPECT_EQ(big.error().code, "file_too_large");
  EXPECT_EQ(big.error().message,
            "file is 2.5 KiB; the read limit is 1 KiB (files.read_max); use export");
  auto exact = read_file(w, path_of("big"), 2560);
  ASSERT_TRUE(exact.has_value());
  EXPECT_EQ(exact->size(), 2560u);
}

TEST_P(FilesTest, ListSortsSkipsAndTruncates) {
  Workspace w = ws();
  fs::create_directories(ws_dir_ + "/app/node_modules/pkg");
  fs::create_directories(ws_dir_ + "/app/.git/objects");
  fs::create_directories(ws_dir_ + "/app/src");
  write_text(ws_dir_ + "/app/src/main.c", "int main;\n");
  write_text(ws_dir_ + "/app/node_modules/pkg/index.js", "x");
  write_text(ws_dir_ + "/app-file", "12345");

  auto top = list(w, path_of("", PathUse::tree), ListOptions{});
  ASSERT_TRUE(top.has_value()) << top.error().message;
  std::vector<std::string> paths;
  for (const auto& e : top->entries) paths.push_back(e.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"abs", "app", "app-file", "dangling", "linkdir", "rel",
                                             "sub"}));
  EXPECT_FALSE(top->truncated);
  const ListEntry& file = top->entries[2];
  EXPECT_EQ(file.type, EntryType::file);
  EXPECT_EQ(file.size, 5u);
  EXPECT_EQ(file.mode, 0644u);
  EXPECT_EQ(top->entries[0].type, EntryType::symlink);
  EXPECT_EQ(top->entries[0].target, outside_ + "/secret");  // text only, never followed
  EXPECT_EQ(top->entries[1].type, EntryType::dir);

  ListOptions rec;
  rec.recursive = true;
  auto walked = list(w, path_of("app", PathUse::tree), rec);
  ASSERT_TRUE(walked.has_value());
  std::map<std::string, const ListEntry*> by_path;
  paths.clear();
  for (const auto& e : walked->entries) {
    paths.push_back(e.path);
    by_path[e.path] = &e;
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"app/.git", "app/node_modules", "app/src",
                                             "app/src/main.c"}));
  EXPECT_TRUE(by_path["app/.git"]->skipped);
  EXPECT_TRUE(by_path["app/node_modules"]->skipped);
  EXPECT_FALSE(by_path["app/src"]->skipped);

  rec.all = true;
  auto everything = list(w, path_of("app/", PathUse::tree), rec);
  ASSERT_TRUE(everything.has_value());
  EXPECT_EQ(everything->entries.size(), 7u);
  EXPECT_TRUE(std::is_sorted(everything->entries.begin(), everything->entries.end(),
                             [](const auto& a, const auto& b) { return a.path < b.path; }));

  rec.limit = 3;
  auto cut = list(w, path_of("app", PathUse::tree), rec);
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(cut->entries.size(), 3u);
  EXPECT_TRUE(cut->truncated);
  rec.limit = 7;
  EXPECT_FALSE(list(w, path_of("app", PathUse::tree), rec)->truncated);

  rec.max_depth = 1;
  auto shallow = list(w, path_of("app", PathUse::tree), rec);
  ASSERT_TRUE(shallow.has_value());
  EXPECT_EQ(shallow->entries.size(), 3u);  // .git, node_modules, src

  auto not_dir = list(w, path_of("app-file", PathUse::tree), ListOptions{});
  ASSERT_FALSE(not_dir.has_value());
  EXPECT_EQ(rule_of(not_dir.error()), "not_a_directory");
  auto missing = list(w, path_of("nothing", PathUse::tree), ListOptions{});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().status, 404);
}

// The whole archive of a walker, in pieces of `piece` bytes.
std::string drain(ExportWalker& walker, std::size_t piece = 4096) {
  std::string out;
  for (int i = 0; i < 100000; ++i) {
    auto done = walker.next(out, piece);
    EXPECT_TRUE(done.has_value()) << (done ? "" : done.error().detail);
    if (!done || *done) break;
  }
  return out;
}

struct Archived {
  TarEntryType type;
  std::string data;
  std::string link;
  std::uint32_t mode;
};

std::map<std::string, Archived> entries_of(const std::string& archive) {
  std::map<std::string, Archived> out;
  TarReader reader(archive);
  for (;;) {
    auto next = reader.next();
    EXPECT_TRUE(next.has_value()) << (next ? "" : next.error().detail);
    if (!next || !*next) break;
    const TarEntry& e = **next;
    out[e.path] = Archived{e.type, std::string(e.data), e.link_target, e.mode};
  }
  return out;
}

TEST_P(FilesTest, ExportStoresFilesDirsAndLinksNeverFollowing) {
  fs::create_directories(ws_dir_ + "/proj/node_modules/x");
  fs::create_directories(ws_dir_ + "/proj/build/out");
  write_text(ws_dir_ + "/proj/node_modules/x/a.js", "a");
  write_text(ws_dir_ + "/proj/build/out/bin", "bin");
  write_text(ws_dir_ + "/proj/keep.log", "log");
  const std::string long_name = std::string(120, 'n') + ".txt";
  write_text(ws_dir_ + "/proj/" + long_name, "long");
  write_text(ws_dir_ + "/proj/big", std::string(100000, 'z'));
  ASSERT_EQ(::chmod((ws_dir_ + "/proj/big").c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo((ws_dir_ + "/proj/fifo").c_str(), 0644), 0);
  fs::create_symlink(outside_ + "/secret", ws_dir_ + "/proj/escape");

  ExportOptions options;
  options.excludes = ExcludeSet({"node_modules", "build/out", "*.log"});
  options.uid = 1000;
  options.gid = 1000;
  auto walker = ExportWalker::open(ws(), path_of("proj", PathUse::tree), options);
  ASSERT_TRUE(walker.has_value()) << walker.error().message;
  const std::string archive = drain(**walker, 1000);
  EXPECT_EQ(archive.size() % 512, 0u);
  auto entries = entries_of(archive);
  std::vector<std::string> names;
  for (const auto& [name, e] : entries) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"big", "build/", "escape", long_name}));
  EXPECT_EQ(entries["big"].data, std::string(100000, 'z'));
  EXPECT_EQ(entries["big"].mode, 0600u);
  EXPECT_EQ(entries["build/"].type, TarEntryType::dir);
  EXPECT_EQ(entries["escape"].type, TarEntryType::symlink);
  EXPECT_EQ(entries["escape"].link, outside_ + "/secret");
  EXPECT_EQ(entries[long_name].data, "long");
  EXPECT_EQ(archive.find("top secret"), std::string::npos);
  EXPECT_EQ((*walker)->skipped(), 1u);  // the FIFO

  // The whole workspace: the outside secret never appears, links stay links.
  auto root = ExportWalker::open(ws(), FilePath{}, ExportOptions{});
  ASSERT_TRUE(root.has_value());
  const std::string all = drain(**root);
  auto everything = entries_of(all);
  EXPECT_EQ(everything["linkdir"].type, TarEntryType::symlink);
  EXPECT_EQ(everything["sub/file.txt"].data, "hello\n");
  EXPECT_EQ(everything.count("linkdir/secret"), 0u);
  EXPECT_EQ(all.find("top secret"), std::string::npos);
  expect_outside_untouched();
}

TEST_P(FilesTest, ExportCutsAGrowingFileAndFailsOnAShrinkingOne) {
  write_text(ws_dir_ + "/a-grows", std::string(3000, 'g'));
  write_text(ws_dir_ + "/b-shrinks", std::string(200000, 's'));
  auto walker = ExportWalker::open(ws(), FilePath{}, ExportOptions{});
  ASSERT_TRUE(walker.has_value());
  std::string out;
  // The first piece: the header of a-grows (its size is now fixed at 3000).
  ASSERT_FALSE(*(*walker)->next(out, 1));
  {
    std::ofstream more(ws_dir_ + "/a-grows", std::ios::app);
    more << std::string(5000, 'G');
  }
  // Until b-shrinks' content has started.
  while (out.find(std::string(1000, 's')) == std::string::npos) {
    auto done = (*walker)->next(out, 1);
    ASSERT_TRUE(done.has_value());
    ASSERT_FALSE(*done);
  }
  ASSERT_EQ(::truncate((ws_dir_ + "/b-shrinks").c_str(), 10), 0);
  Result<bool> done = false;
  for (int i = 0; i < 1000 && done && !*done; ++i) done = (*walker)->next(out, 4096);
  ASSERT_FALSE(done.has_value());
  EXPECT_NE(done.error().detail.find("b-shrinks shrank"), std::string::npos) << done.error().detail;
  // What came before is a valid prefix: a-grows holds exactly its first 3000 bytes.
  TarReader reader(out);
  auto first = reader.next();
  ASSERT_TRUE(first.has_value() && *first);
  EXPECT_EQ((*first)->path, "a-grows");
  EXPECT_EQ((*first)->data, std::string(3000, 'g'));
}

// fsuid/fsgid: the kernel applies the tenant's permissions and new entries are the tenant's.
TEST(FsIdentity, AppliesTheOwnersPermissionsOnThisThreadOnly) {
  ASSERT_EQ(::geteuid(), 0u) << "this test needs root (CAP_SETUID), as sandboxd does";
  char tmpl[] = "/tmp/sandboxd-fsid-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_EQ(::chown(dir.c_str(), 1000, 1000), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((dir + "/rootonly").c_str(), 0755), 0);  // owned by root
  auto w = Workspace::open_dir(dir);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->owner_uid(), 1000u);
  {
    FsIdentity as(w->owner_uid(), w->owner_gid());
    auto mine = write_file(*w, path_of("mine.txt", PathUse::write), "x", false);
    ASSERT_TRUE(mine.has_value()) << mine.error().message;
    auto denied = write_file(*w, path_of("rootonly/x.txt", PathUse::write), "x", false);
    ASSERT_FALSE(denied.has_value());
    EXPECT_EQ(rule_of(denied.error()), "permission_denied") << denied.error().message;
    auto made = write_file(*w, path_of("a/b/c.txt", PathUse::write), "x", true);
    ASSERT_TRUE(made.has_value()) << made.error().message;
  }
  for (const std::string p : {"/mine.txt", "/a", "/a/b", "/a/b/c.txt"}) {
    EXPECT_EQ(lstat_of(dir + p).st_uid, 1000u) << p;
    EXPECT_EQ(lstat_of(dir + p).st_gid, 1000u) << p;
  }
  EXPECT_FALSE(present(dir + "/rootonly/x.txt"));
  // Back to root afterwards: root may write where the tenant may not.
  EXPECT_TRUE(write_file(*w, path_of("rootonly/x.txt", PathUse::write), "x", false).has_value());
  EXPECT_EQ(lstat_of(dir + "/rootonly/x.txt").st_uid, 1000u);  // still given to the owner
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace sandboxd::control::files
