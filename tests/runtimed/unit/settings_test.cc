#include "runtimed/settings.h"

#include <gtest/gtest.h>

namespace sandboxd::runtimed {
namespace {

const std::string kSecret(64, 'a');

std::string with(const std::string& fields) {
  return R"({"version":1,"sandbox_id":"01j00000000000000000000000","secret":")" + kSecret +
         "\"" + fields + "}";
}

TEST(SettingsTest, FullFileIsRead) {
  auto s = parse_settings(with(R"(,"project_dir":"workspace/web/","dev":{"command":"pnpm dev","port":5173},
      "tasks":{"timeout_s":60,"max_queued":2,"cancel_grace_ms":100,"max_output_bytes":4096},
      "future_field":{"x":1})"));
  ASSERT_TRUE(s) << s.error().detail;
  EXPECT_EQ(s->sandbox_id, "01J00000000000000000000000");
  EXPECT_EQ(s->secret, kSecret);
  EXPECT_EQ(s->project_dir, "workspace/web");
  EXPECT_EQ(s->dev.command, "pnpm dev");
  EXPECT_EQ(s->dev.port, 5173);
  EXPECT_EQ(s->tasks.timeout_s, 60);
  EXPECT_EQ(s->tasks.max_queued, 2);
  EXPECT_EQ(s->tasks.cancel_grace_ms, 100);
  EXPECT_EQ(s->tasks.max_output_bytes, 4096u);
}

TEST(SettingsTest, DefaultsFillWhatIsMissing) {
  auto s = parse_settings(with(""));
  ASSERT_TRUE(s) << s.error().detail;
  EXPECT_EQ(s->project_dir, "workspace/app");
  EXPECT_EQ(s->dev.command, "");
  EXPECT_EQ(s->dev.port, 3000);
  EXPECT_EQ(s->tasks.timeout_s, 7200);
  EXPECT_EQ(s->tasks.max_queued, 8);
  EXPECT_EQ(s->tasks.cancel_grace_ms, 5000);
  EXPECT_EQ(s->tasks.max_output_bytes, 16u * 1024 * 1024);
}

TEST(SettingsTest, InvalidFilesNameTheField) {
  struct Case {
    std::string text;
    std::string field;
  };
  std::vector<Case> cases{
      {"", "JSON"},
      {"[]", "object"},
      {R"({"sandbox_id":"01J00000000000000000000000","secret":")" + kSecret + "\"}", "version"},
      {R"({"version":2,"sandbox_id":"01J00000000000000000000000","secret":")" + kSecret + "\"}",
       "version"},
      {R"({"version":1,"secret":")" + kSecret + "\"}", "sandbox_id"},
      {R"({"version":1,"sandbox_id":"../x","secret":")" + kSecret + "\"}", "sandbox_id"},
      {R"({"version":1,"sandbox_id":"01J00000000000000000000000","secret":"abc"})", "secret"},
      {R"({"version":1,"sandbox_id":"01J00000000000000000000000","secret":")" +
           std::string(64, 'g') + "\"}",
       "secret"},
      {with(R"(,"project_dir":"/abs")"), "project_dir"},
      {with(R"(,"project_dir":"a/../b")"), "project_dir"},
      {with(R"(,"dev":{"port":0})"), "dev.port"},
      {with(R"(,"dev":{"port":70000})"), "dev.port"},
      {with(R"(,"dev":{"port":"3000"})"), "dev.port"},
      {with(R"(,"dev":{"command":5})"), "dev.command"},
      {with(R"(,"dev":[])"), "dev"},
      {with(R"(,"tasks":{"timeout_s":0})"), "tasks.timeout_s"},
      {with(R"(,"tasks":{"max_queued":-1})"), "tasks.max_queued"},
      {with(R"(,"tasks":{"max_output_bytes":1.5})"), "tasks.max_output_bytes"},
  };
  for (const Case& c : cases) {
    auto s = parse_settings(c.text);
    ASSERT_FALSE(s) << c.text;
    EXPECT_NE(s.error().detail.find(c.field), std::string::npos)
        << c.text << " -> " << s.error().detail;
  }
}

}  // namespace
}  // namespace sandboxd::runtimed
