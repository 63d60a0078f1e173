// inspect_certificate on certificates made at test time.
#include "acme/certificate.h"
#include "support/test_pki.h"

#include <gtest/gtest.h>

namespace sandboxd::acme {
namespace {

using testing::make_ca;
using testing::make_leaf;

TEST(InspectCertificate, ReadsNamesDatesSerialIssuerAndKeyType) {
  const auto ca = make_ca("Test Issuing CA");
  const auto leaf = make_leaf(ca, {"DNS:*.Preview.Test", "DNS:preview.test", "IP:127.0.0.1"}, 30);
  auto b = inspect_certificate(leaf.cert + ca.cert, leaf.key);
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ(b->names, (std::vector<std::string>{"*.preview.test", "preview.test"}));
  EXPECT_EQ(b->issuer, "CN=Test Issuing CA");
  EXPECT_EQ(b->key_type, "ec256");
  EXPECT_FALSE(b->serial.empty());
  EXPECT_NE(b->serial.front(), '0');
  const auto life = b->not_after - b->not_before;
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::hours>(life).count(), 30 * 24 + 1);
  EXPECT_TRUE(covers_names(*b, {"*.preview.test", "PREVIEW.test"}));
  EXPECT_FALSE(covers_names(*b, {"other.test"}));
  EXPECT_EQ(b->chain_pem, leaf.cert + ca.cert);
}

TEST(InspectCertificate, RefusesAKeyThatDoesNotMatch) {
  const auto ca = make_ca("CA");
  const auto one = make_leaf(ca, {"DNS:a.test"});
  const auto two = make_leaf(ca, {"DNS:a.test"});
  auto b = inspect_certificate(one.cert, two.key);
  ASSERT_FALSE(b.has_value());
  EXPECT_NE(b.error().detail.find("does not match"), std::string::npos);
}

TEST(InspectCertificate, RefusesGarbage) {
  EXPECT_FALSE(inspect_certificate("", "").has_value());
  const auto ca = make_ca("CA");
  EXPECT_FALSE(inspect_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                                   ca.key)
                   .has_value());
  EXPECT_FALSE(inspect_certificate(ca.cert, "junk").has_value());
}

}  // namespace
}  // namespace sandboxd::acme
