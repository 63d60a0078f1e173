// JWS ES256, JWK thumbprints, EAB, the dns-01 value and the CSR, checked with OpenSSL
// directly (never with the code under test).
#include "base64.h"
#include "crypto.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace sandboxd::acme {
namespace {

PkeyPtr p256() {
  auto k = generate_key(KeyType::ec256);
  EXPECT_TRUE(k.has_value());
  return std::move(*k);
}

// Verifies a raw r‖s ES256 signature by converting it back to DER.
bool verify_es256(EVP_PKEY* key, const std::string& data, const std::string& raw) {
  if (raw.size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  const int ok = EVP_DigestVerify(ctx, der, static_cast<std::size_t>(der_len),
                                  reinterpret_cast<const unsigned char*>(data.data()), data.size());
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return ok == 1;
}

std::string b64url_dec(const std::string& s) {
  auto d = base64url_decode(s);
  EXPECT_TRUE(d.has_value()) << s;
  return d.value_or("");
}

TEST(Base64, RoundTripsEveryLengthWithoutPadding) {
  std::string bytes;
  for (int n = 0; n < 40; ++n) {
    const std::string url = base64url_encode(bytes);
    EXPECT_EQ(url.find('='), std::string::npos);
    EXPECT_EQ(url.find('+'), std::string::npos);
    EXPECT_EQ(url.find('/'), std::string::npos);
    EXPECT_EQ(base64url_decode(url), bytes);
    EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes);
    bytes += static_cast<char>(0xf0 + n % 16);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("ab+c").has_value());
  EXPECT_FALSE(base64_decode("a").has_value());
}

TEST(Jws, Es256SignatureIsRawRAndSOf64BytesAndVerifies) {
  auto key = p256();
  for (int i = 0; i < 50; ++i) {  // r or s with leading zero bytes show up in 50 tries
    const std::string data = "eyJhbGciOiJFUzI1NiJ9.payload-" + std::to_string(i);
    auto sig = es256_sign(key.get(), data);
    ASSERT_TRUE(sig.has_value());
    ASSERT_EQ(sig->size(), 64u);
    EXPECT_TRUE(verify_es256(key.get(), data, *sig));
    EXPECT_FALSE(verify_es256(key.get(), data + "x", *sig));
  }
}

TEST(Jws, RejectsKeysOtherThanP256) {
  auto k384 = generate_key(KeyType::ec384);
  ASSERT_TRUE(k384.has_value());
  EXPECT_FALSE(es256_sign(k384->get(), "x").has_value());
  EXPECT_FALSE(ec_jwk_json(k384->get()).has_value());
}

TEST(Jws, FlattenedSerializationSignsProtectedDotPayload) {
  auto key = p256();
  const std::string header = R"({"alg":"ES256","nonce":"abc","url":"https://ca/new-order"})";
  const std::string payload = R"({"identifiers":[]})";
  auto jws = jws_es256(key.get(), header, payload);
  ASSERT_TRUE(jws.has_value());
  const auto v = boost::json::parse(*jws).as_object();
  const std::string p(v.at("protected").as_string());
  const std::string pl(v.at("payload").as_string());
  const std::string sig(v.at("signature").as_string());
  EXPECT_EQ(b64url_dec(p), header);
  EXPECT_EQ(b64url_dec(pl), payload);
  EXPECT_EQ(sig.find('='), std::string::npos);
  EXPECT_TRUE(verify_es256(key.get(), p + "." + pl, b64url_dec(sig)));

  auto get = jws_es256(key.get(), header, "");  // POST-as-GET
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(boost::json::parse(*get).as_object().at("payload").as_string(), "");
}

TEST(Jwk, ThumbprintIsSha256OfTheCanonicalMembersInOrder) {
  auto key = p256();
  auto jwk = ec_jwk_json(key.get());
  ASSERT_TRUE(jwk.has_value());
  // RFC 7638: exactly crv, kty, x, y in lexicographic order, no whitespace.
  EXPECT_TRUE(jwk->starts_with(R"({"crv":"P-256","kty":"EC","x":")")) << *jwk;
  EXPECT_EQ(jwk->find(' '), std::string::npos);
  const auto o = boost::json::parse(*jwk).as_object();
  ASSERT_EQ(o.size(), 4u);
  // x and y are the public point's coordinates, 32 bytes each.
  BIGNUM* x = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
  unsigned char xb[32];
  BN_bn2binpad(x, xb, 32);
  BN_free(x);
  EXPECT_EQ(b64url_dec(std::string(o.at("x").as_string())),
            std::string(reinterpret_cast<char*>(xb), 32));
  EXPECT_EQ(b64url_dec(std::string(o.at("y").as_string())).size(), 32u);

  unsigned char digest[32];
  unsigned int len = 0;
  EVP_Digest(jwk->data(), jwk->size(), digest, &len, EVP_sha256(), nullptr);
  EXPECT_EQ(jwk_thumbprint(key.get()).value(),
            base64url_encode(std::string(reinterpret_cast<char*>(digest), len)));
}

TEST(Dns01, ValueIsB64UrlOfSha256OfTheKeyAuthorization) {
  // RFC 8555 §8.4 by hand: base64url(SHA-256("token.thumbprint")).
  unsigned char digest[32];
  unsigned int len = 0;
  const std::string ka = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
  EVP_Digest(ka.data(), ka.size(), digest, &len, EVP_sha256(), nullptr);
  EXPECT_EQ(dns01_txt_value("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
                            "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"),
            base64url_encode(std::string(reinterpret_cast<char*>(digest), len)));
  EXPECT_EQ(dns01_txt_value("a", "b").size(), 43u);
}

TEST(Eab, Hs256OverTheAccountJwkWithKidAndUrl) {
  auto key = p256();
  const std::string jwk = ec_jwk_json(key.get()).value();
  const std::string mac_key = "0123456789abcdef0123456789abcdef";
  const std::string eab = eab_jws(jwk, "kid-\"1\"", mac_key, "https://ca/new-acct");
  const auto o = boost::json::parse(eab).as_object();
  const std::string p(o.at("protected").as_string());
  const std::string pl(o.at("payload").as_string());
  const auto header = boost::json::parse(b64url_dec(p)).as_object();
  EXPECT_EQ(header.at("alg").as_string(), "HS256");
  EXPECT_EQ(header.at("kid").as_string(), "kid-\"1\"");
  EXPECT_EQ(header.at("url").as_string(), "https://ca/new-acct");
  EXPECT_FALSE(header.contains("nonce"));  // RFC 8555 §7.3.4: no nonce in the inner JWS
  EXPECT_EQ(b64url_dec(pl), jwk);

  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  const std::string input = p + "." + pl;
  HMAC(EVP_sha256(), mac_key.data(), static_cast<int>(mac_key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
  EXPECT_EQ(b64url_dec(std::string(o.at("signature").as_string())),
            std::string(reinterpret_cast<char*>(mac), mac_len));
}

TEST(Csr, EmptySubjectEveryNameAsSanSignedWithTheKey) {
  for (const KeyType type : {KeyType::ec256, KeyType::ec384, KeyType::rsa2048}) {
    auto key = generate_key(type);
    ASSERT_TRUE(key.has_value());
    auto der = make_csr_der(key->get(), {"*.preview.example.com", "preview.example.com"});
    ASSERT_TRUE(der.has_value());
    const auto* p = reinterpret_cast<const unsigned char*>(der->data());
    X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der->size()));
    ASSERT_NE(req, nullptr);
    EXPECT_EQ(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
    EXPECT_EQ(X509_REQ_verify(req, key->get()), 1);
    EXPECT_EQ(X509_REQ_get_signature_nid(req) == NID_ecdsa_with_SHA256 ||
                  X509_REQ_get_signature_nid(req) == NID_sha256WithRSAEncryption,
              true);
    STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
    ASSERT_NE(exts, nullptr);
    GENERAL_NAMES* names = nullptr;
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
      X509_EXTENSION* e = sk_X509_EXTENSION_value(exts, i);
      if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name) {
        names = static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(e));
      }
    }
    ASSERT_NE(names, nullptr);
    std::vector<std::string> got;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
      ASSERT_EQ(gn->type, GEN_DNS);
      got.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                       static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
    }
    EXPECT_EQ(got, (std::vector<std::string>{"*.preview.example.com", "preview.example.com"}));
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
  }
}

TEST(Csr, RefusesNamesThatAreNotPlainDnsNames) {
  auto key = p256();
  EXPECT_FALSE(make_csr_der(key.get(), {}).has_value());
  EXPECT_FALSE(make_csr_der(key.get(), {"a.example,DNS:evil.example"}).has_value());
}

TEST(Keys, PemRoundTrip) {
  auto key = p256();
  auto pem = private_key_pem(key.get());
  ASSERT_TRUE(pem.has_value());
  EXPECT_TRUE(pem->starts_with("-----BEGIN PRIVATE KEY-----"));
  auto back = load_private_key(*pem);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(jwk_thumbprint(back->get()).value(), jwk_thumbprint(key.get()).value());
  EXPECT_FALSE(load_private_key("not a key").has_value());
}

}  // namespace
}  // namespace sandboxd::acme
