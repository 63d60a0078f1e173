// tls.mode: files against real certificates, made here with OpenSSL for each case.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>

#include "config/load.h"

namespace sandboxd::config {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Key new_key() {
  EVP_PKEY* k = nullptr;
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr), EVP_PKEY_CTX_free);
  EXPECT_EQ(EVP_PKEY_keygen_init(ctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), NID_X9_62_prime256v1), 1);
  EXPECT_EQ(EVP_PKEY_keygen(ctx.get(), &k), 1);
  return Key(k);
}

std::string to_pem(const std::function<int(BIO*)>& write) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(write(bio.get()), 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

// A self-signed certificate for `sans` ("DNS:a,DNS:b") valid from an hour ago for
// `valid_for` seconds from now.
std::string make_cert(EVP_PKEY* key, const std::string& sans, long valid_for = 86400) {
  std::unique_ptr<X509, CertFree> x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), valid_for);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  const std::string cn = "sandboxd test";
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x.get(), name);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, sans.c_str());
  EXPECT_NE(ext, nullptr);
  X509_add_ext(x.get(), ext, -1);
  X509_EXTENSION_free(ext);
  EXPECT_GT(X509_sign(x.get(), key, EVP_sha256()), 0);
  return to_pem([&](BIO* b) { return PEM_write_bio_X509(b, x.get()); });
}

std::string key_pem(EVP_PKEY* key) {
  return to_pem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

class ConfigTlsFiles : public ::testing::Test {
 protected:
  ConfigTlsFiles() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "config_tls.XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  ~ConfigTlsFiles() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string write(const std::string& name, const std::string& content) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p) << content;
    return p;
  }

  // Loads a files-mode config for preview.example.com with the given pair.
  LoadResult load(const std::string& cert, const std::string& key) {
    yaml_ =
        "preview:\n"
        "  domain: example.com\n"
        "tls:\n"
        "  mode: files\n"
        "  files:\n"
        "    cert: " +
        cert +
        "\n"
        "    key: " +
        key + "\n";
    EnvLookup none = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    return parse_config(yaml_, "sandboxd.yaml", none);
  }

  std::vector<std::string> errors(const LoadResult& r) {
    std::vector<std::string> out;
    for (const auto& d : r.errors) out.push_back(d.str());
    return out;
  }

  std::string dir_;
  std::string yaml_;
};

TEST_F(ConfigTlsFiles, AWildcardPairIsAccepted) {
  Key key = new_key();
  std::string cert =
      write("c.pem", make_cert(key.get(), "DNS:*.preview.example.com,DNS:preview.example.com"));
  std::string k = write("k.pem", key_pem(key.get()));
  LoadResult r = load(cert, k);
  ASSERT_TRUE(r.ok()) << r.errors[0].str();
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.config->tls.mode, TlsMode::files);
}

TEST_F(ConfigTlsFiles, NamesAreMatchedWithoutCase) {
  Key key = new_key();
  std::string cert = write("c.pem", make_cert(key.get(), "DNS:*.PREVIEW.Example.com"));
  LoadResult r = load(cert, write("k.pem", key_pem(key.get())));
  EXPECT_TRUE(r.ok()) << r.errors[0].str();
}

TEST_F(ConfigTlsFiles, ACertificateForOtherNamesIsRefused) {
  Key key = new_key();
  std::string cert = write("c.pem", make_cert(key.get(), "DNS:example.org,DNS:*.example.org"));
  LoadResult r = load(cert, write("k.pem", key_pem(key.get())));
  EXPECT_EQ(errors(r), std::vector<std::string>{
                           "sandboxd.yaml:6:5: tls.files.cert: the certificate does not cover "
                           "*.preview.example.com\n"
                           "  hint: it covers example.org or *.example.org"});
}

TEST_F(ConfigTlsFiles, AKeyOfAnotherCertificateIsRefused) {
  Key key = new_key();
  Key other = new_key();
  std::string cert = write("c.pem", make_cert(key.get(), "DNS:*.preview.example.com"));
  LoadResult r = load(cert, write("k.pem", key_pem(other.get())));
  EXPECT_EQ(errors(r),
            std::vector<std::string>{"sandboxd.yaml:7:5: tls.files.key: the key does not match the "
                                     "certificate in tls.files.cert"});
}

TEST_F(ConfigTlsFiles, AnExpiredCertificateIsRefused) {
  Key key = new_key();
  std::string cert = write("c.pem", make_cert(key.get(), "DNS:*.preview.example.com", -60));
  LoadResult r = load(cert, write("k.pem", key_pem(key.get())));
  EXPECT_EQ(errors(r), std::vector<std::string>{"sandboxd.yaml:6:5: tls.files.cert: the "
                                                "certificate in \"" +
                                                cert + "\" has expired"});
}

TEST_F(ConfigTlsFiles, FilesThatAreNotPemAreRefused) {
  std::string cert = write("c.pem", "not a certificate\n");
  std::string key =
      write("k.pem", "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n");
  LoadResult r = load(cert, key);
  EXPECT_EQ(
      errors(r),
      (std::vector<std::string>{
          "sandboxd.yaml:6:5: tls.files.cert: \"" + cert +
              "\" holds no PEM certificate\n"
              "  hint: the file starts with -----BEGIN CERTIFICATE-----, leaf first",
          "sandboxd.yaml:7:5: tls.files.key: \"" + key +
              "\" holds no PEM private key\n"
              "  hint: expected -----BEGIN PRIVATE KEY----- (encrypted keys are not supported)"}));
}

TEST_F(ConfigTlsFiles, EncryptedKeysAreRefusedWithoutPrompting) {
  Key key = new_key();
  std::string cert = write("c.pem", make_cert(key.get(), "DNS:*.preview.example.com"));
  std::string encrypted = to_pem([&](BIO* b) {
    const std::string pass = "passphrase";
    return PEM_write_bio_PKCS8PrivateKey(b, key.get(), EVP_aes_128_cbc(), pass.c_str(),
                                         static_cast<int>(pass.size()), nullptr, nullptr);
  });
  LoadResult r = load(cert, write("k.pem", encrypted));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].key_path, "tls.files.key");
}

}  // namespace
}  // namespace sandboxd::config
