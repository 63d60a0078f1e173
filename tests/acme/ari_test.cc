// RFC 9773 pieces of the renewal (SPEC §10.2): the certificate identifier, the window's
// parsing, RFC 3339 times, and the draw inside the window.
#include "ari.h"

#include <gtest/gtest.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace sandboxd::acme {
namespace {

using namespace std::chrono_literals;

// A self-signed certificate with the AKI and serial of RFC 9773's example.
std::string rfc9773_example_cert() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  BIGNUM* bn = nullptr;
  BN_hex2bn(&bn, "87654321");
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  AUTHORITY_KEYID* aki = AUTHORITY_KEYID_new();
  const unsigned char id[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                              0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
  aki->keyid = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(aki->keyid, id, sizeof id);
  X509_add1_ext_i2d(x, NID_authority_key_identifier, aki, 0, X509V3_ADD_DEFAULT);
  AUTHORITY_KEYID_free(aki);
  X509_sign(x, key, EVP_sha256());
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(out, x);
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(out);
  X509_free(x);
  EVP_PKEY_free(key);
  return pem;
}

TEST(Ari, CertIdIsTheRfc9773Example) {
  auto id = ari_cert_id(rfc9773_example_cert());
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_EQ(*id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
}

TEST(Ari, CertIdNeedsAnAuthorityKeyIdentifier) {
  EXPECT_FALSE(ari_cert_id("not pem"));
}

TEST(Ari, WindowParses) {
  auto w = parse_renewal_window(
      R"({"suggestedWindow":{"start":"2026-12-18T10:00:00Z","end":"2026-12-20T10:00:00.5+02:00"},"explanationURL":"https://x"})");
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(w->start, *parse_rfc3339_time("2026-12-18T10:00:00Z"));
  EXPECT_EQ(w->end - w->start, 46h + 500ms);
}

TEST(Ari, BadWindowsAreRefused) {
  for (const char* body : {"", "[]", "{}", R"({"suggestedWindow":1})",
                           R"({"suggestedWindow":{"start":"x","end":"2026-12-20T10:00:00Z"}})",
                           R"({"suggestedWindow":{"start":"2026-12-20T10:00:00Z","end":"2026-12-20T10:00:00Z"}})",
                           R"({"suggestedWindow":{"start":"2026-12-21T10:00:00Z","end":"2026-12-20T10:00:00Z"}})"}) {
    EXPECT_FALSE(parse_renewal_window(body)) << body;
  }
}

TEST(Ari, Rfc3339TimesAreStrict) {
  EXPECT_TRUE(parse_rfc3339_time("2026-01-01T00:00:00Z"));
  EXPECT_TRUE(parse_rfc3339_time("2026-01-01t00:00:00.123456z"));
  EXPECT_EQ(*parse_rfc3339_time("2026-01-01T02:00:00+02:00"), *parse_rfc3339_time("2026-01-01T00:00:00Z"));
  for (const char* bad : {"", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
                          "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00Zjunk", "2026-01-01T24:00:00Z",
                          "2026-01-01T00:00:00+2:00"}) {
    EXPECT_FALSE(parse_rfc3339_time(bad)) << bad;
  }
}

TEST(Ari, DrawStaysInsideTheWindow) {
  const RenewalWindow w{*parse_rfc3339_time("2026-12-18T10:00:00Z"),
                        *parse_rfc3339_time("2026-12-20T10:00:00Z")};
  EXPECT_EQ(ari_renewal_time(w, 0.0), w.start);
  EXPECT_EQ(ari_renewal_time(w, 0.5), w.start + 24h);
  EXPECT_LE(ari_renewal_time(w, 0.999999), w.end);
}

}  // namespace
}  // namespace sandboxd::acme
