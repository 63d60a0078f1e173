#include "runtimed/devserver_policy.h"

#include <gtest/gtest.h>

namespace sandboxd::runtimed {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(DevCommandTest, DetectedFromPackageJsonAndLockfile) {
  ProjectFiles files;
  EXPECT_FALSE(detect_dev_command(files));
  files.package_json = R"({"name":"app","scripts":{"build":"vite build"}})";
  EXPECT_FALSE(detect_dev_command(files));
  files.package_json = R"({"scripts":{"dev":""}})";
  EXPECT_FALSE(detect_dev_command(files));
  files.package_json = "{not json";
  EXPECT_FALSE(detect_dev_command(files));
  files.package_json = R"({"scripts":{"dev":"vite"}})";
  EXPECT_EQ(detect_dev_command(files), "npm run dev");
  files.bun_lock = true;
  EXPECT_EQ(detect_dev_command(files), "bun run dev");
  files.pnpm_lock = true;
  EXPECT_EQ(detect_dev_command(files), "pnpm run dev");
}

TEST(RestartBackoffTest, DoublesToThirtyAndNeverGivesUp) {
  RestartBackoff b;
  std::vector<long> delays;
  for (int i = 0; i < 9; ++i) delays.push_back(b.next(milliseconds(100)).count());
  EXPECT_EQ(delays, (std::vector<long>{1, 2, 4, 8, 16, 30, 30, 30, 30}));
}

TEST(RestartBackoffTest, AHealthyRunStartsOver) {
  RestartBackoff b;
  b.next(milliseconds(10));
  b.next(milliseconds(10));
  EXPECT_EQ(b.next(milliseconds(10)), seconds(4));
  EXPECT_EQ(b.next(seconds(30)), seconds(1));
  EXPECT_EQ(b.next(milliseconds(10)), seconds(2));
  b.reset();
  EXPECT_EQ(b.next(milliseconds(10)), seconds(1));
}

TEST(DevHintsTest, HintsSayWhatToDo) {
  EXPECT_NE(waiting_hint("workspace/app", true).find("workspace/app/package.json"), std::string::npos);
  EXPECT_NE(waiting_hint("workspace/app", false).find("does not exist"), std::string::npos);
  EXPECT_NE(std::string(kLoopbackOnlyHint).find("0.0.0.0"), std::string::npos);
  EXPECT_NE(port_taken_hint(3000).find("3000"), std::string::npos);
}

}  // namespace
}  // namespace sandboxd::runtimed
