// Preview tokens and cookies (SPEC §3.14): every refusal reason, key rotation, the claims'
// edge cases. Tokens are made here by hand where the signer would not make them.
#include "edge/preview_auth.h"

#include "base/base64.h"

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace sandboxd::edge {
namespace {

const PreviewKey kOld{"k1", std::string(32, 'a')};
const PreviewKey kNew{"k2", std::string(40, 'b')};
const Ulid kId = Ulid::parse("01J9ZQ4Y3M5N6P7Q8R9S0T1V2W").value();
const Ulid kOther = Ulid::parse("01J9ZQ4Y3M5N6P7Q8R9S0T1V2X").value();
constexpr std::int64_t kNow = 1'800'000'000;

std::string hs256(const std::string& key, const std::string& header, const std::string& claims) {
  const std::string signing = base64url_encode(header) + "." + base64url_encode(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, &n);
  return signing + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), n));
}

std::string token(const std::string& claims, const PreviewKey& key = kOld,
                  const std::string& header = "") {
  return hs256(key.secret, header.empty() ? R"({"alg":"HS256","kid":")" + key.kid + R"("})" : header,
               claims);
}

std::string claims(const std::string& extra = "", std::int64_t exp = kNow + 600) {
  return R"({"sub":")" + kId.str() + R"(","aud":"sandbox-preview","exp":)" + std::to_string(exp) +
         extra + "}";
}

TokenCheck check(const std::string& t, std::uint16_t port = 3000,
                 const std::vector<PreviewKey>& keys = {kNew, kOld}) {
  return check_preview_token(t, keys, kId, port, kNow);
}

TEST(PreviewToken, MintedTokenVerifies) {
  EXPECT_EQ(check(make_preview_token(kNew, kId, std::nullopt, kNow, kNow + 60)), TokenCheck::ok);
  EXPECT_EQ(check(make_preview_token(kNew, kId, 3000, kNow, kNow + 60)), TokenCheck::ok);
  EXPECT_EQ(check(make_preview_token(kNew, kId, 3000, kNow, kNow + 60), 5173), TokenCheck::wrong_port);
}

TEST(PreviewToken, ClaimsAreChecked) {
  EXPECT_EQ(check(token(claims())), TokenCheck::ok);
  // sub is compared upper-cased; aud may be an array.
  EXPECT_EQ(check(token(R"({"sub":")" + [] {
                          std::string s = kId.str();
                          for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                          return s;
                        }() + R"(","aud":["x","sandbox-preview"],"exp":)" + std::to_string(kNow + 60) + "}")),
            TokenCheck::ok);
  EXPECT_EQ(check(token(R"({"sub":")" + kOther.str() + R"(","aud":"sandbox-preview","exp":)" +
                        std::to_string(kNow + 60) + "}")),
            TokenCheck::wrong_sandbox);
  EXPECT_EQ(check(token(R"({"sub":")" + kId.str() + R"(","aud":"sandbox-preview-cookie","exp":)" +
                        std::to_string(kNow + 60) + "}")),
            TokenCheck::bad_audience);
  EXPECT_EQ(check(token(R"({"sub":")" + kId.str() + R"(","aud":"sandbox-preview"})")), TokenCheck::malformed);
  // 60 s of skew either way.
  EXPECT_EQ(check(token(claims("", kNow - 59))), TokenCheck::ok);
  EXPECT_EQ(check(token(claims("", kNow - 61))), TokenCheck::expired);
  EXPECT_EQ(check(token(claims(R"(,"nbf":)" + std::to_string(kNow + 59)))), TokenCheck::ok);
  EXPECT_EQ(check(token(claims(R"(,"nbf":)" + std::to_string(kNow + 61)))), TokenCheck::not_yet_valid);
  EXPECT_EQ(check(token(claims(R"(,"iat":)" + std::to_string(kNow + 61)))), TokenCheck::not_yet_valid);
  EXPECT_EQ(check(token(claims(R"(,"port":3000)"))), TokenCheck::ok);
  EXPECT_EQ(check(token(claims(R"(,"port":"3000")"))), TokenCheck::wrong_port);
}

TEST(PreviewToken, HeaderAndSignatureAreChecked) {
  const std::string good = token(claims());
  EXPECT_EQ(check(token(claims(), kOld, R"({"alg":"none","kid":"k1"})")), TokenCheck::bad_alg);
  EXPECT_EQ(check(token(claims(), kOld, R"({"alg":"HS512","kid":"k1"})")), TokenCheck::bad_alg);
  EXPECT_EQ(check(token(claims(), kOld, R"({"alg":"HS256"})")), TokenCheck::unknown_kid);
  EXPECT_EQ(check(token(claims(), PreviewKey{"k9", kOld.secret})), TokenCheck::unknown_kid);
  // Signed with k1's name but another secret.
  EXPECT_EQ(check(token(claims(), PreviewKey{"k1", std::string(32, 'z')})), TokenCheck::bad_signature);
  // The payload changed after signing.
  const std::size_t a = good.find('.'), b = good.rfind('.');
  const std::string forged = good.substr(0, a + 1) +
                             base64url_encode(claims("", kNow + 999999)) + good.substr(b);
  EXPECT_EQ(check(forged), TokenCheck::bad_signature);
  for (const std::string& bad : {std::string(), std::string("a.b"), std::string("a.b.c.d"),
                                std::string("!!.!!.!!"), good + "x.", std::string(4097, 'a')}) {
    EXPECT_EQ(check(bad), TokenCheck::malformed) << bad.substr(0, 40);
  }
}

TEST(PreviewToken, RotationKeepsOldTokensWhileTheirKeyIsListed) {
  const std::string old = make_preview_token(kOld, kId, std::nullopt, kNow, kNow + 60);
  EXPECT_EQ(check(old, 3000, {kNew, kOld}), TokenCheck::ok);
  EXPECT_EQ(check(old, 3000, {kNew}), TokenCheck::unknown_kid);
  EXPECT_EQ(check(old, 3000, {}), TokenCheck::unknown_kid);
}

TEST(PreviewCookie, BoundToItsHostAndAudience) {
  const std::string c = make_preview_cookie(kNew, kId, "s-a-3000.preview.test", kNow + 60);
  EXPECT_EQ(check_preview_cookie(c, {kNew}, kId, "s-a-3000.preview.test", kNow), TokenCheck::ok);
  EXPECT_EQ(check_preview_cookie(c, {kNew}, kId, "s-a-5173.preview.test", kNow), TokenCheck::wrong_sandbox);
  EXPECT_EQ(check_preview_cookie(c, {kNew}, kOther, "s-a-3000.preview.test", kNow), TokenCheck::wrong_sandbox);
  EXPECT_EQ(check_preview_cookie(c, {kNew}, kId, "s-a-3000.preview.test", kNow + 121), TokenCheck::expired);
  EXPECT_EQ(check_preview_cookie(c, {kOld}, kId, "s-a-3000.preview.test", kNow), TokenCheck::unknown_kid);
  // A preview token is not a cookie, nor the other way round.
  const std::string t = make_preview_token(kNew, kId, std::nullopt, kNow, kNow + 60);
  EXPECT_EQ(check_preview_cookie(t, {kNew}, kId, "s-a-3000.preview.test", kNow), TokenCheck::bad_audience);
  EXPECT_EQ(check_preview_token(c, {kNew}, kId, 3000, kNow), TokenCheck::bad_audience);
}

}  // namespace
}  // namespace sandboxd::edge
