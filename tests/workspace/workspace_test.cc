#include "workspace.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tar_writer.h"

namespace sandboxd::control {
namespace {

namespace fs = std::filesystem;
using testing::TarWriter;

constexpr const char* kId = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
constexpr const char* kId2 = "01J9ZQ3V4X5Y6Z7A8B9C0D1E2F";

bool running_as_root() { return ::geteuid() == 0; }

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

mode_t mode_of(const std::string& path) { return lstat_of(path).st_mode & 07777; }

bool present(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_text(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

std::string link_text(const std::string& path) {
  std::error_code ec;
  return fs::read_symlink(path, ec).string();
}

// Every entry under `dir` (symlinks not followed) with its type, mode and content.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    const std::string path = entry.path().string();
    const struct stat st = lstat_of(path);
    std::string what = std::to_string(st.st_mode) + ":";
    if (S_ISREG(st.st_mode)) what += read_text(path);
    if (S_ISLNK(st.st_mode)) what += link_text(path);
    out[path.substr(dir.size())] = what;
  }
  return out;
}

// Sum of st_blocks * 512 over a tree, the root included, without following symlinks.
std::uint64_t blocks_of_tree(const std::string& dir) {
  std::uint64_t sum = static_cast<std::uint64_t>(lstat_of(dir).st_blocks) * 512;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    sum += static_cast<std::uint64_t>(lstat_of(entry.path().string()).st_blocks) * 512;
  }
  return sum;
}

class WorkspaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/sandboxd-workspace-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    tmp_ = pattern;
    data_ = tmp_ + "/data";
    outside_ = tmp_ + "/outside";
    ASSERT_EQ(::mkdir(outside_.c_str(), 0755), 0);
    write_text(outside_ + "/keep.txt", "outside file");
    ASSERT_EQ(::mkdir((outside_ + "/dir").c_str(), 0755), 0);
    write_text(outside_ + "/dir/nested.txt", "nested outside file");
    outside_before_ = snapshot(outside_);
    // As root (CI) the workspace owner differs from us, so chown is really exercised.
    uid_ = running_as_root() ? 12345 : ::getuid();
    gid_ = running_as_root() ? 23456 : ::getgid();
    auto root = WorkspaceRoot::open(data_, uid_, gid_);
    ASSERT_TRUE(root) << root.error().message();
    root_.emplace(std::move(*root));
  }

  void TearDown() override {
    root_.reset();
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }

  WorkspaceRoot& root() { return *root_; }
  std::string ws(const std::string& id = kId) const { return data_ + "/workspaces/" + id; }

  void expect_outside_untouched() { EXPECT_EQ(snapshot(outside_), outside_before_); }

  // Every entry of the workspace, the root included, belongs to the sandbox user.
  void expect_owned(const std::string& dir) {
    EXPECT_EQ(lstat_of(dir).st_uid, uid_);
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      const struct stat st = lstat_of(entry.path().string());
      EXPECT_EQ(st.st_uid, uid_) << entry.path();
      EXPECT_EQ(st.st_gid, gid_) << entry.path();
    }
  }

  std::string tmp_;
  std::string data_;
  std::string outside_;
  std::map<std::string, std::string> outside_before_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::optional<WorkspaceRoot> root_;
};

// ---- open ----

TEST_F(WorkspaceTest, OpenCreatesTheRootWithItsModes) {
  EXPECT_EQ(mode_of(data_), 0755u);
  const struct stat st = lstat_of(data_ + "/workspaces");
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(st.st_gid, ::getegid());
}

TEST_F(WorkspaceTest, OpenRepairsTheModeOfAnExistingRoot) {
  root_.reset();
  ASSERT_EQ(::chmod((data_ + "/workspaces").c_str(), 0777), 0);
  auto again = WorkspaceRoot::open(data_, uid_, gid_);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(mode_of(data_ + "/workspaces"), 0711u);
}

TEST_F(WorkspaceTest, OpenRefusesARelativeDataDir) {
  auto opened = WorkspaceRoot::open("relative/data", uid_, gid_);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, Errc::invalid_argument);
}

TEST_F(WorkspaceTest, OpenRefusesASymlinkedDataDir) {
  const std::string link = tmp_ + "/data-link";
  ASSERT_EQ(::symlink(data_.c_str(), link.c_str()), 0);
  auto opened = WorkspaceRoot::open(link, uid_, gid_);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, Errc::invalid_argument);
  EXPECT_NE(opened.error().detail.find("symlink"), std::string::npos);
}

TEST_F(WorkspaceTest, OpenRefusesASymlinkedWorkspacesDir) {
  const std::string data = tmp_ + "/data2";
  ASSERT_EQ(::mkdir(data.c_str(), 0755), 0);
  ASSERT_EQ(::symlink(outside_.c_str(), (data + "/workspaces").c_str()), 0);
  auto opened = WorkspaceRoot::open(data, uid_, gid_);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, Errc::invalid_argument);
  EXPECT_NE(opened.error().detail.find("symlink"), std::string::npos);
  EXPECT_EQ(mode_of(outside_), 0755u);  // not chmod-ed through the link
}

TEST_F(WorkspaceTest, OpenRefusesANonDirectory) {
  const std::string data = tmp_ + "/data3";
  ASSERT_EQ(::mkdir(data.c_str(), 0755), 0);
  write_text(data + "/workspaces", "not a directory");
  auto opened = WorkspaceRoot::open(data, uid_, gid_);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, Errc::invalid_argument);

  write_text(tmp_ + "/plain", "file");
  auto file = WorkspaceRoot::open(tmp_ + "/plain", uid_, gid_);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code, Errc::invalid_argument);
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST_F(WorkspaceTest, MovesAndClosesItsHandle) {
  root_.reset();
  const std::size_t before = open_fds();
  {
    auto opened = WorkspaceRoot::open(data_, uid_, gid_);
    ASSERT_TRUE(opened);
    WorkspaceRoot moved = std::move(*opened);
    WorkspaceRoot assigned = std::move(moved);
    EXPECT_EQ(open_fds(), before + 1);
    EXPECT_TRUE(assigned.create(kId).value());
    EXPECT_TRUE(assigned.exists(kId));
  }
  EXPECT_EQ(open_fds(), before);
}

// ---- create, exists, is_empty, list_ids ----

TEST_F(WorkspaceTest, CreateIsFreshOnceThenReusesTheDirectory) {
  EXPECT_FALSE(root().exists(kId));
  auto made = root().create(kId);
  ASSERT_TRUE(made) << made.error().message();
  EXPECT_TRUE(*made);
  const struct stat st = lstat_of(ws());
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_uid, uid_);
  EXPECT_EQ(st.st_gid, gid_);
  EXPECT_TRUE(root().exists(kId));
  EXPECT_TRUE(root().is_empty(kId).value());

  write_text(ws() + "/file", "tenant data");
  auto again = root().create(kId);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  EXPECT_EQ(read_text(ws() + "/file"), "tenant data");
  EXPECT_FALSE(root().is_empty(kId).value());
}

TEST_F(WorkspaceTest, CreateRefusesANameTakenByANonDirectory) {
  write_text(ws(), "a file");
  auto made = root().create(kId);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code, Errc::conflict);
  EXPECT_FALSE(root().exists(kId));

  ASSERT_EQ(::symlink(outside_.c_str(), ws(kId2).c_str()), 0);
  EXPECT_FALSE(root().exists(kId2));  // a symlink is not a workspace
  EXPECT_EQ(root().create(kId2).error().code, Errc::conflict);
}

TEST_F(WorkspaceTest, IdsThatAreNotSingleNamesAreRefused) {
  for (const std::string& id : std::vector<std::string>{"", ".", "..", "a/b", "../outside", "A.B",
                                                        std::string("A\0B", 3)}) {
    SCOPED_TRACE(id);
    EXPECT_FALSE(root().exists(id));
    EXPECT_EQ(root().create(id).error().code, Errc::internal);
    EXPECT_EQ(root().is_empty(id).error().code, Errc::internal);
    EXPECT_EQ(root().remove(id).error().code, Errc::internal);
    EXPECT_EQ(root().fill_from_tar(id, "", "").error().code, Errc::internal);
    EXPECT_EQ(root().fill_from_dir(id, outside_).error().code, Errc::internal);
  }
  expect_outside_untouched();
}

TEST_F(WorkspaceTest, IsEmptyOfAMissingWorkspaceIsNotFound) {
  EXPECT_EQ(root().is_empty(kId).error().code, Errc::not_found);
}

TEST_F(WorkspaceTest, ListIdsNamesOnlyDirectories) {
  EXPECT_TRUE(root().list_ids().empty());
  ASSERT_TRUE(root().create(kId2));
  ASSERT_TRUE(root().create(kId));
  write_text(data_ + "/workspaces/stray-file", "x");
  ASSERT_EQ(::symlink(outside_.c_str(), (data_ + "/workspaces/stray-link").c_str()), 0);
  EXPECT_EQ(root().list_ids(), (std::vector<std::string>{kId, kId2}));
}

// ---- fill_from_tar ----

TEST_F(WorkspaceTest, FillFromTarExtractsTheSkeleton) {
  ASSERT_TRUE(root().create(kId));
  TarWriter w;
  w.dir("sandbox-skel/", 0700)  // the prefix itself is the root: its mode is not applied
      .file("sandbox-skel/.bashrc", "alias ll='ls -l'\n", 0644, 1600000000)
      .dir("sandbox-skel/bin/", 0750)
      .file("sandbox-skel/bin/tool", "#!/bin/sh\necho hi\n", 06755)
      .dir("sandbox-skel/shared/", 03775)
      .file("sandbox-skel/deep/a/b/c.txt", "deep")  // parents implied
      .dir("sandbox-skel/ro/", 0555)
      .file("sandbox-skel/ro/f", "read only", 0444)
      .file("sandbox-skel/later/f", "child first")
      .dir("sandbox-skel/later/", 0700)
      .file("./sandbox-skel//./dots", "normalized")
      .file("elsewhere/x", "outside the prefix");
  auto filled = root().fill_from_tar(kId, w.finish(), "sandbox-skel");
  ASSERT_TRUE(filled) << filled.error().message();

  EXPECT_EQ(mode_of(ws()), 0755u);
  EXPECT_EQ(read_text(ws() + "/.bashrc"), "alias ll='ls -l'\n");
  EXPECT_EQ(mode_of(ws() + "/.bashrc"), 0644u);
  EXPECT_EQ(lstat_of(ws() + "/.bashrc").st_mtime, 1600000000);
  EXPECT_EQ(mode_of(ws() + "/bin"), 0750u);
  EXPECT_EQ(mode_of(ws() + "/bin/tool"), 0755u);  // setuid and setgid stripped
  EXPECT_EQ(read_text(ws() + "/bin/tool"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(mode_of(ws() + "/shared"), 0775u);  // setgid and sticky stripped
  EXPECT_EQ(read_text(ws() + "/deep/a/b/c.txt"), "deep");
  EXPECT_EQ(mode_of(ws() + "/deep"), 0755u);
  EXPECT_EQ(mode_of(ws() + "/deep/a/b"), 0755u);
  EXPECT_EQ(mode_of(ws() + "/ro"), 0555u);
  EXPECT_EQ(read_text(ws() + "/ro/f"), "read only");
  EXPECT_EQ(mode_of(ws() + "/later"), 0700u);
  EXPECT_EQ(read_text(ws() + "/later/f"), "child first");
  EXPECT_EQ(read_text(ws() + "/dots"), "normalized");
  EXPECT_FALSE(present(ws() + "/elsewhere"));
  EXPECT_FALSE(present(ws() + "/sandbox-skel"));
  expect_owned(ws());
}

TEST_F(WorkspaceTest, FillFromTarNeverFollowsSymlinks) {
  ASSERT_TRUE(root().create(kId));
  const std::string passwd_before = read_text("/etc/passwd");
  TarWriter w;
  w.symlink("sandbox-skel/abs", outside_)
      .symlink("sandbox-skel/rel", "../../../outside")
      .symlink("sandbox-skel/etc", "../../etc")
      .symlink("sandbox-skel/passwd", "/etc/passwd")
      .file("sandbox-skel/abs/evil", "pwned")
      .file("sandbox-skel/rel/evil", "pwned")
      .file("sandbox-skel/abs/keep.txt", "pwned")
      .dir("sandbox-skel/abs/newdir/")
      .file("sandbox-skel/abs/sub/deeper", "pwned")
      .symlink("sandbox-skel/rel/dir/link", "/")
      .file("sandbox-skel/passwd", "root::0:0::/:/bin/sh\n")
      .file("sandbox-skel/etc/evil", "pwned")
      .file("sandbox-skel/real", "real")
      .hardlink("sandbox-skel/abs/hl", "sandbox-skel/real");
  auto filled = root().fill_from_tar(kId, w.finish(), "sandbox-skel/");
  ASSERT_TRUE(filled) << filled.error().message();

  for (const auto& [name, target] :
       std::vector<std::pair<std::string, std::string>>{{"abs", outside_},
                                                        {"rel", "../../../outside"},
                                                        {"etc", "../../etc"},
                                                        {"passwd", "/etc/passwd"}}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(S_ISLNK(lstat_of(ws() + "/" + name).st_mode));
    EXPECT_EQ(link_text(ws() + "/" + name), target);
  }
  EXPECT_EQ(read_text(ws() + "/real"), "real");
  expect_outside_untouched();
  EXPECT_EQ(read_text("/etc/passwd"), passwd_before);
  EXPECT_FALSE(present(data_ + "/etc"));  // where ../../etc points from the workspace
  expect_owned(ws());
}

TEST_F(WorkspaceTest, FillFromTarCopiesHardLinksOfEarlierFiles) {
  ASSERT_TRUE(root().create(kId));
  TarWriter w;
  w.file("skel/a", "shared content", 0640)
      .hardlink("skel/b", "skel/a")
      .hardlink("skel/missing", "skel/nowhere")
      .hardlink("skel/escape", "skel/../../etc/passwd")
      .hardlink("skel/c", "skel/b");
  auto filled = root().fill_from_tar(kId, w.finish(), "skel");
  ASSERT_TRUE(filled) << filled.error().message();
  const struct stat a = lstat_of(ws() + "/a");
  const struct stat b = lstat_of(ws() + "/b");
  EXPECT_TRUE(S_ISREG(b.st_mode));
  EXPECT_NE(a.st_ino, b.st_ino);
  EXPECT_EQ(b.st_nlink, 1u);
  EXPECT_EQ(b.st_mode & 07777, 0640u);
  EXPECT_EQ(read_text(ws() + "/b"), "shared content");
  EXPECT_EQ(read_text(ws() + "/c"), "shared content");
  EXPECT_FALSE(present(ws() + "/missing"));
  EXPECT_FALSE(present(ws() + "/escape"));
  expect_owned(ws());
}

TEST_F(WorkspaceTest, FillFromTarSkipsSpecialFiles) {
  ASSERT_TRUE(root().create(kId));
  TarWriter w;
  w.special("skel/fifo", '6').special("skel/tty", '3').special("skel/disk", '4');
  w.special("skel/sparse", 'S').file("skel/file", "f");
  ASSERT_TRUE(root().fill_from_tar(kId, w.finish(), "skel"));
  for (const char* name : {"fifo", "tty", "disk", "sparse"})
    EXPECT_FALSE(present(ws() + "/" + name));
  EXPECT_EQ(read_text(ws() + "/file"), "f");
}

TEST_F(WorkspaceTest, FillFromTarRefusesUnsafePaths) {
  ASSERT_TRUE(root().create(kId));
  for (const std::string path :
       {"/etc/evil", "skel/../../evil", "../evil", "skel/a/../../../evil"}) {
    SCOPED_TRACE(path);
    auto filled = root().fill_from_tar(kId, TarWriter().file(path, "pwned").finish(), "skel");
    ASSERT_FALSE(filled);
    EXPECT_EQ(filled.error().code, Errc::invalid_argument);
  }
  auto bad_prefix = root().fill_from_tar(kId, TarWriter().finish(), "../skel");
  ASSERT_FALSE(bad_prefix);
  EXPECT_EQ(bad_prefix.error().code, Errc::invalid_argument);
  EXPECT_TRUE(root().is_empty(kId).value());
  EXPECT_FALSE(present(data_ + "/workspaces/evil"));
  EXPECT_FALSE(present(data_ + "/evil"));
}

TEST_F(WorkspaceTest, FillFromTarKeepsExistingEntries) {
  ASSERT_TRUE(root().create(kId));
  write_text(ws() + "/mine", "tenant", 0600);
  ASSERT_EQ(::mkdir((ws() + "/dir").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(outside_.c_str(), (ws() + "/escape").c_str()), 0);
  ASSERT_EQ(::symlink("/nonexistent-target", (ws() + "/dangling").c_str()), 0);
  TarWriter w;
  w.file("skel/mine", "skeleton", 0644)
      .dir("skel/dir/", 0755)
      .file("skel/dir/new", "added")
      .file("skel/escape", "pwned")
      .dir("skel/escape/")
      .file("skel/escape/keep.txt", "pwned")
      .file("skel/escape/dir/x", "pwned")
      .file("skel/dangling", "pwned")
      .file("skel/dangling/x", "pwned");
  auto filled = root().fill_from_tar(kId, w.finish(), "skel");
  ASSERT_TRUE(filled) << filled.error().message();
  EXPECT_EQ(read_text(ws() + "/mine"), "tenant");
  EXPECT_EQ(mode_of(ws() + "/mine"), 0600u);
  EXPECT_EQ(mode_of(ws() + "/dir"), 0700u);  // an existing directory keeps its mode
  EXPECT_EQ(read_text(ws() + "/dir/new"), "added");
  EXPECT_EQ(link_text(ws() + "/escape"), outside_);
  EXPECT_FALSE(present("/nonexistent-target"));
  expect_outside_untouched();
}

TEST_F(WorkspaceTest, FillFromTarReportsACorruptArchive) {
  ASSERT_TRUE(root().create(kId));
  std::string archive = TarWriter().file("skel/a", "x").finish();
  archive[10] = 'Z';  // breaks the checksum
  auto filled = root().fill_from_tar(kId, archive, "skel");
  ASSERT_FALSE(filled);
  EXPECT_EQ(filled.error().code, Errc::corrupt);
  EXPECT_EQ(root().fill_from_tar(kId2, TarWriter().finish(), "").error().code, Errc::not_found);
}

// ---- fill_from_dir ----

TEST_F(WorkspaceTest, FillFromDirCopiesTheTree) {
  const std::string src = tmp_ + "/template";
  ASSERT_EQ(::mkdir(src.c_str(), 0700), 0);
  write_text(src + "/.profile", "export A=1\n", 0640);
  ASSERT_EQ(::mkdir((src + "/bin").c_str(), 0750), 0);
  write_text(src + "/bin/tool", "#!/bin/sh\n", 04755);
  ASSERT_EQ(::mkdir((src + "/sgid").c_str(), 02770), 0);
  ASSERT_EQ(::chmod((src + "/sgid").c_str(), 02770), 0);
  fs::create_directories(src + "/sub/deeper");
  write_text(src + "/sub/deeper/file", "deep");
  ASSERT_EQ(::symlink(outside_.c_str(), (src + "/abs").c_str()), 0);
  ASSERT_EQ(::symlink("../../../outside/keep.txt", (src + "/rel").c_str()), 0);
  ASSERT_EQ(::mkfifo((src + "/fifo").c_str(), 0644), 0);
  write_text(src + "/h1", "hard linked");
  ASSERT_EQ(::link((src + "/h1").c_str(), (src + "/h2").c_str()), 0);
  ASSERT_EQ(::mkdir((src + "/ro").c_str(), 0755), 0);
  write_text(src + "/ro/f", "read only", 0444);
  ASSERT_EQ(::chmod((src + "/ro").c_str(), 0555), 0);
  ASSERT_EQ(::utimensat(AT_FDCWD, (src + "/.profile").c_str(),
                        std::vector<timespec>{{1500000000, 0}, {1500000000, 0}}.data(), 0),
            0);

  ASSERT_TRUE(root().create(kId));
  auto filled = root().fill_from_dir(kId, src);
  ASSERT_TRUE(filled) << filled.error().message();

  EXPECT_EQ(mode_of(ws()), 0755u);  // the source root's 0700 is not copied
  EXPECT_EQ(read_text(ws() + "/.profile"), "export A=1\n");
  EXPECT_EQ(mode_of(ws() + "/.profile"), 0640u);
  EXPECT_EQ(lstat_of(ws() + "/.profile").st_mtime, 1500000000);
  EXPECT_EQ(mode_of(ws() + "/bin"), 0750u);
  EXPECT_EQ(mode_of(ws() + "/bin/tool"), 0755u);
  EXPECT_EQ(mode_of(ws() + "/sgid"), 0770u);
  EXPECT_EQ(read_text(ws() + "/sub/deeper/file"), "deep");
  EXPECT_EQ(link_text(ws() + "/abs"), outside_);
  EXPECT_EQ(link_text(ws() + "/rel"), "../../../outside/keep.txt");
  EXPECT_FALSE(present(ws() + "/fifo"));
  const struct stat h1 = lstat_of(ws() + "/h1");
  const struct stat h2 = lstat_of(ws() + "/h2");
  EXPECT_NE(h1.st_ino, h2.st_ino);
  EXPECT_EQ(read_text(ws() + "/h2"), "hard linked");
  EXPECT_EQ(mode_of(ws() + "/ro"), 0555u);
  EXPECT_EQ(read_text(ws() + "/ro/f"), "read only");
  expect_owned(ws());
  expect_outside_untouched();
}

TEST_F(WorkspaceTest, FillFromDirRefusesASymlinkedOrMissingSource) {
  ASSERT_TRUE(root().create(kId));
  const std::string link = tmp_ + "/template-link";
  ASSERT_EQ(::symlink(outside_.c_str(), link.c_str()), 0);
  EXPECT_EQ(root().fill_from_dir(kId, link).error().code, Errc::invalid_argument);
  EXPECT_EQ(root().fill_from_dir(kId, tmp_ + "/nothing").error().code, Errc::not_found);
  EXPECT_EQ(root().fill_from_dir(kId2, outside_).error().code, Errc::not_found);
  EXPECT_TRUE(root().is_empty(kId).value());
}

TEST_F(WorkspaceTest, FillFromDirNeverFollowsWorkspaceSymlinks) {
  const std::string src = tmp_ + "/template";
  fs::create_directories(src + "/escape/dir");
  write_text(src + "/escape/keep.txt", "pwned");
  write_text(src + "/escape/dir/x", "pwned");
  write_text(src + "/file", "skeleton");
  ASSERT_TRUE(root().create(kId));
  ASSERT_EQ(::symlink(outside_.c_str(), (ws() + "/escape").c_str()), 0);
  ASSERT_EQ(::symlink((outside_ + "/keep.txt").c_str(), (ws() + "/file").c_str()), 0);
  auto filled = root().fill_from_dir(kId, src);
  ASSERT_TRUE(filled) << filled.error().message();
  EXPECT_TRUE(S_ISLNK(lstat_of(ws() + "/escape").st_mode));
  EXPECT_TRUE(S_ISLNK(lstat_of(ws() + "/file").st_mode));
  expect_outside_untouched();
}

// ---- remove ----

TEST_F(WorkspaceTest, RemoveDeletesTheTreeButNothingALinkPointsTo) {
  ASSERT_TRUE(root().create(kId));
  fs::create_directories(ws() + "/a/b/c");
  write_text(ws() + "/a/file", std::string(10000, 'x'));
  write_text(ws() + "/a/b/c/file", std::string(100000, 'y'));
  ASSERT_EQ(::symlink(outside_.c_str(), (ws() + "/dirlink").c_str()), 0);
  ASSERT_EQ(::symlink((outside_ + "/dir").c_str(), (ws() + "/a/b/nested-link").c_str()), 0);
  ASSERT_EQ(::symlink((outside_ + "/keep.txt").c_str(), (ws() + "/filelink").c_str()), 0);
  ASSERT_EQ(::symlink("../../../outside", (ws() + "/rel").c_str()), 0);
  ASSERT_EQ(::mkfifo((ws() + "/fifo").c_str(), 0600), 0);
  const std::uint64_t expected = blocks_of_tree(ws());

  auto freed = root().remove(kId);
  ASSERT_TRUE(freed) << freed.error().message();
  EXPECT_GT(*freed, 110000u);
  EXPECT_EQ(*freed, expected);
  EXPECT_FALSE(present(ws()));
  EXPECT_FALSE(root().exists(kId));
  expect_outside_untouched();
}

TEST_F(WorkspaceTest, RemoveOfAMissingWorkspaceFreesNothing) {
  EXPECT_EQ(root().remove(kId).value(), 0u);
  ASSERT_TRUE(root().create(kId));
  EXPECT_GT(root().remove(kId).value(), 0u);
  EXPECT_EQ(root().remove(kId).value(), 0u);
}

TEST_F(WorkspaceTest, RemoveCountsAHardLinkedFileOnce) {
  ASSERT_TRUE(root().create(kId));
  write_text(ws() + "/a", std::string(50000, 'z'));
  ASSERT_EQ(::link((ws() + "/a").c_str(), (ws() + "/b").c_str()), 0);
  const std::uint64_t file = static_cast<std::uint64_t>(lstat_of(ws() + "/a").st_blocks) * 512;
  const std::uint64_t dir = static_cast<std::uint64_t>(lstat_of(ws()).st_blocks) * 512;
  EXPECT_EQ(root().remove(kId).value(), file + dir);
}

TEST_F(WorkspaceTest, RemoveHandlesDirectoriesWithoutPermissions) {
  ASSERT_TRUE(root().create(kId));
  for (const char* name : {"none", "read-only", "write-only", "sticky"}) {
    const std::string dir = ws() + "/" + name;
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((dir + "/inner").c_str(), 0755), 0);
    write_text(dir + "/inner/file", "x");
    write_text(dir + "/file", "x", 0);
  }
  ASSERT_EQ(::chmod((ws() + "/none/inner").c_str(), 0), 0);
  ASSERT_EQ(::chmod((ws() + "/none").c_str(), 0), 0);
  ASSERT_EQ(::chmod((ws() + "/read-only").c_str(), 0500), 0);
  ASSERT_EQ(::chmod((ws() + "/write-only").c_str(), 0300), 0);
  ASSERT_EQ(::chmod((ws() + "/sticky").c_str(), 01777), 0);
  auto freed = root().remove(kId);
  ASSERT_TRUE(freed) << freed.error().message();
  EXPECT_FALSE(present(ws()));
}

TEST_F(WorkspaceTest, RemoveHandlesAVeryDeepTree) {
  ASSERT_TRUE(root().create(kId));
  constexpr int kDepth = 3000;
  // Too deep for path strings (PATH_MAX), so build and measure it with *at calls.
  std::uint64_t expected = 0;
  int fd = ::open(ws().c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < kDepth; ++i) {
    ASSERT_EQ(::mkdirat(fd, "d", 0755), 0) << i;
    if (i % 100 == 0) {
      ASSERT_EQ(::symlinkat(outside_.c_str(), fd, "up"), 0);
      const int file = ::openat(fd, "f", O_WRONLY | O_CREAT | O_EXCL, 0644);
      ASSERT_GE(file, 0);
      ASSERT_EQ(::write(file, "data", 4), 4);
      ::close(file);
    }
    struct stat st {};
    ASSERT_EQ(::fstat(fd, &st), 0);
    expected += static_cast<std::uint64_t>(st.st_blocks) * 512;
    if (i % 100 == 0) {
      ASSERT_EQ(::fstatat(fd, "f", &st, 0), 0);
      expected += static_cast<std::uint64_t>(st.st_blocks) * 512;
    }
    const int next = ::openat(fd, "d", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(next, 0);
    ::close(fd);
    fd = next;
  }
  struct stat last {};
  ASSERT_EQ(::fstat(fd, &last), 0);
  expected += static_cast<std::uint64_t>(last.st_blocks) * 512;
  ::close(fd);

  auto freed = root().remove(kId);
  ASSERT_TRUE(freed) << freed.error().message();
  EXPECT_EQ(*freed, expected);
  EXPECT_FALSE(present(ws()));
  expect_outside_untouched();
}

TEST_F(WorkspaceTest, RemoveUnlinksAWorkspaceThatIsASymlink) {
  ASSERT_EQ(::symlink(outside_.c_str(), ws().c_str()), 0);
  ASSERT_TRUE(root().remove(kId));
  EXPECT_FALSE(present(ws()));
  expect_outside_untouched();
}

// Without root's capabilities, unreadable directories need the chmod path, and a chown to
// another user fails and must be reported. Checked in a child that drops to a plain user.
TEST_F(WorkspaceTest, WorksWithoutRootCapabilities) {
  if (!running_as_root()) {
    // Already unprivileged: chowning a workspace to root must fail and leave nothing.
    auto other = WorkspaceRoot::open(tmp_ + "/plain-data", 0, 0);
    ASSERT_TRUE(other);
    auto made = other->create(kId);
    ASSERT_FALSE(made);
    EXPECT_EQ(made.error().code, Errc::io);
    EXPECT_FALSE(other->exists(kId));
    return;
  }
  const uid_t user = 12345;
  const gid_t group = 23456;
  const std::string home = tmp_ + "/unprivileged";
  ASSERT_EQ(::mkdir(home.c_str(), 0755), 0);
  ASSERT_EQ(::chown(home.c_str(), user, group), 0);
  ASSERT_EQ(::chmod(tmp_.c_str(), 0755), 0);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(group) != 0 || ::setuid(user) != 0) _exit(10);
    auto opened = WorkspaceRoot::open(home + "/data", user, group);
    if (!opened) _exit(11);
    WorkspaceRoot workspaces = std::move(*opened);
    // Giving a workspace to another user (root here) needs CAP_CHOWN: reported, undone.
    auto for_root = WorkspaceRoot::open(home + "/data", 0, 0);
    if (!for_root) _exit(12);
    auto refused = for_root->create(kId2);
    if (refused || refused.error().code != Errc::io || workspaces.exists(kId2)) _exit(12);
    if (!workspaces.create(kId)) _exit(13);
    const std::string dir = home + "/data/workspaces/" + kId;
    for (const char* name : {"/none", "/ro", "/wo"}) {
      if (::mkdir((dir + name).c_str(), 0755) != 0) _exit(14);
      if (::mkdir((dir + name + "/inner").c_str(), 0755) != 0) _exit(14);
      std::ofstream(dir + name + "/inner/file") << "x";
      std::ofstream(dir + name + "/file") << "x";
    }
    if (::chmod((dir + "/none/inner").c_str(), 0) != 0) _exit(15);
    if (::chmod((dir + "/none").c_str(), 0) != 0) _exit(15);
    if (::chmod((dir + "/ro").c_str(), 0500) != 0) _exit(15);
    if (::chmod((dir + "/wo").c_str(), 0300) != 0) _exit(15);
    // A tar with a read-only directory must still be filled.
    TarWriter w;
    w.dir("skel/locked/", 0555).file("skel/locked/f", "x", 0444).dir("skel/zero/", 0);
    w.file("skel/zero/g", "y");
    if (auto filled = workspaces.fill_from_tar(kId, w.finish(), "skel"); !filled) {
      std::fprintf(stderr, "fill: %s\n", filled.error().message().c_str());
      _exit(16);
    }
    struct stat st {};
    if (::stat((dir + "/locked/f").c_str(), &st) != 0) _exit(17);
    auto freed = workspaces.remove(kId);
    if (!freed || *freed == 0) _exit(18);
    if (::access(dir.c_str(), F_OK) == 0) _exit(19);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace sandboxd::control
