// The file storage of SPEC §10.3 in a temp directory: modes, atomic replacement, keys, lock.
#include "acme/issuer.h"
#include "acme/storage.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace sandboxd::acme {
namespace {

namespace fs = std::filesystem;

class FileStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/acme-storage.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/data/acme";  // the parent "data" does not exist yet
  }
  void TearDown() override { fs::remove_all(root_); }

  static unsigned mode_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 0777;
  }

  std::string root_;
  std::string dir_;
};

TEST_F(FileStorageTest, StoresPrivateFilesInPrivateDirectories) {
  auto s = make_file_storage(dir_);
  ASSERT_TRUE(s->store("certs/preview.test/key.pem", "secret key"));
  EXPECT_EQ(mode_of(dir_), 0700u);
  EXPECT_EQ(mode_of(dir_ + "/certs"), 0700u);
  EXPECT_EQ(mode_of(dir_ + "/certs/preview.test"), 0700u);
  EXPECT_EQ(mode_of(dir_ + "/certs/preview.test/key.pem"), 0600u);
  auto back = s->load("certs/preview.test/key.pem");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->value(), "secret key");
}

TEST_F(FileStorageTest, ReplacesAtomicallyAndLeavesNoTempFiles) {
  auto s = make_file_storage(dir_);
  ASSERT_TRUE(s->store("pending.json", "[1]"));
  ASSERT_TRUE(s->store("pending.json", "[1,2]"));
  EXPECT_EQ(s->load("pending.json")->value(), "[1,2]");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"pending.json"});
  ASSERT_TRUE(s->remove("pending.json"));
  EXPECT_FALSE(s->load("pending.json")->has_value());
  EXPECT_TRUE(s->remove("pending.json"));  // removing a missing key succeeds
}

TEST_F(FileStorageTest, MissingKeyIsEmptyNotAnError) {
  auto s = make_file_storage(dir_);
  auto r = s->load("accounts/ca/account.key");
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->has_value());
}

TEST_F(FileStorageTest, TightensLooseModes) {
  auto s = make_file_storage(dir_);
  ASSERT_TRUE(s->store("certs/x/cert.pem", "pem"));
  ::chmod((dir_ + "/certs/x/cert.pem").c_str(), 0644);
  ::chmod((dir_ + "/certs").c_str(), 0755);
  ASSERT_TRUE(s->load("certs/x/cert.pem")->has_value());
  EXPECT_EQ(mode_of(dir_ + "/certs/x/cert.pem"), 0600u);
  ASSERT_TRUE(s->store("certs/x/meta.json", "{}"));
  EXPECT_EQ(mode_of(dir_ + "/certs"), 0700u);
}

TEST_F(FileStorageTest, RefusesKeysThatEscapeTheDirectory) {
  auto s = make_file_storage(dir_);
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../b", "a//b", "a/./b", ".hidden", "a b",
                          "certs/x/"}) {
    EXPECT_FALSE(valid_storage_key(bad)) << bad;
    EXPECT_FALSE(s->store(bad, "x")) << bad;
  }
  EXPECT_TRUE(valid_storage_key("accounts/127.0.0.1_14000/account.key"));
}

TEST_F(FileStorageTest, LockIsExclusiveUntilReleased) {
  auto a = make_file_storage(dir_);
  auto b = make_file_storage(dir_);
  auto first = a->try_lock();
  ASSERT_TRUE(first.has_value());
  ASSERT_NE(first->get(), nullptr);
  auto second = b->try_lock();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->get(), nullptr);  // held: answered at once, no waiting
  first->reset();
  auto third = b->try_lock();
  ASSERT_TRUE(third.has_value());
  EXPECT_NE(third->get(), nullptr);
}

TEST(StorageKeys, AccountFolderIsHostAndPort) {
  EXPECT_EQ(account_storage_prefix("https://acme-v02.api.letsencrypt.org/directory"),
            "accounts/acme-v02.api.letsencrypt.org");
  EXPECT_EQ(account_storage_prefix("https://127.0.0.1:14000/dir"), "accounts/127.0.0.1_14000");
  EXPECT_EQ(account_storage_prefix("https://[::1]:14000/dir"), "accounts/__1_14000");
  EXPECT_EQ(account_storage_prefix("not a url"), "accounts/invalid");
  EXPECT_EQ(cert_storage_prefix("preview.example.com"), "certs/preview.example.com");
}

}  // namespace
}  // namespace sandboxd::acme
