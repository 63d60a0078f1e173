#include "auth.h"

#include <gtest/gtest.h>

namespace sandboxd::control {
namespace {

std::vector<config::ApiToken> tokens() {
  return {{"admin", config::Secret("0123456789abcdef-admin"), false},
          {"viewer", config::Secret("0123456789abcdef-viewer"), true},
          {"tenant", config::Secret("0123456789abcdef-tenant"), false, "acme"}};
}

TEST(Auth, AcceptsEveryConfiguredToken) {
  Authenticator auth(tokens(), true);
  auto a = auth.check("Bearer 0123456789abcdef-admin");
  EXPECT_EQ(a.outcome, AuthOutcome::ok);
  EXPECT_EQ(a.token_name, "admin");
  EXPECT_FALSE(a.read_only);
  EXPECT_EQ(a.actor(), "token:admin");
  auto v = auth.check("bearer   0123456789abcdef-viewer ");
  EXPECT_EQ(v.outcome, AuthOutcome::ok);
  EXPECT_TRUE(v.read_only);
  EXPECT_TRUE(v.user_id.empty()) << "an operator's token acts for every user";
  auto t = auth.check("Bearer 0123456789abcdef-tenant");
  EXPECT_EQ(t.outcome, AuthOutcome::ok);
  EXPECT_EQ(t.user_id, "acme");
}

TEST(Auth, MissingHeaderDependsOnRequired) {
  EXPECT_EQ(Authenticator(tokens(), true).check(std::nullopt).outcome, AuthOutcome::missing);
  EXPECT_EQ(Authenticator(tokens(), false).check(std::nullopt).outcome, AuthOutcome::anonymous);
}

TEST(Auth, PresentedTokensAreCheckedEvenWhenOptional) {
  Authenticator auth(tokens(), false);
  EXPECT_EQ(auth.check("Bearer wrong-token-value").outcome, AuthOutcome::unknown);
}

TEST(Auth, MalformedHeaders) {
  Authenticator auth(tokens(), true);
  for (const std::string& h : std::vector<std::string>{"", "Bearer", "Bearer ", "Basic abc", "Bearer a\tb", "Token x",
                        "Bearer " + std::string(513, 'a'), std::string("Bearer \x80", 8)}) {
    EXPECT_EQ(auth.check(h).outcome, AuthOutcome::malformed) << h;
  }
  EXPECT_EQ(auth.check("Bearer " + std::string(512, 'a')).outcome, AuthOutcome::unknown);
}

}  // namespace
}  // namespace sandboxd::control
