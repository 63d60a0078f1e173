#include "crypto.h"

#include "base64.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <cstdio>

namespace sandboxd::acme {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct SigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct ReqFree {
  void operator()(X509_REQ* r) const { X509_REQ_free(r); }
};
struct NameFree {
  void operator()(X509_NAME* n) const { X509_NAME_free(n); }
};
struct ExtsFree {
  void operator()(STACK_OF(X509_EXTENSION) * s) const {
    sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
  }
};

Error crypto_error(std::string what) {
  std::string detail = std::move(what);
  const std::string queue = openssl_errors();
  if (!queue.empty()) detail += ": " + queue;
  return Error{Errc::internal, std::move(detail)};
}

std::string bytes_of(const unsigned char* p, std::size_t n) {
  return std::string(reinterpret_cast<const char*>(p), n);
}

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                     &len) != 1) {
    return false;
  }
  return std::string_view(group, len) == "prime256v1" || std::string_view(group, len) == "P-256";
}

Result<std::string> coordinate(EVP_PKEY* key, const char* param) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &raw) != 1) return crypto_error("EC public key");
  std::unique_ptr<BIGNUM, BnFree> bn(raw);
  unsigned char out[32];
  if (BN_bn2binpad(bn.get(), out, sizeof out) != 32) return crypto_error("EC coordinate");
  return bytes_of(out, sizeof out);
}

// Names that may go into an OpenSSL SAN config string unescaped.
bool plain_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '*';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string openssl_errors() {
  std::string out;
  unsigned long e = 0;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Result<PkeyPtr> generate_key(KeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
    case KeyType::ec256: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
    case KeyType::ec384: key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"); break;
    case KeyType::rsa2048:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
      break;
    case KeyType::rsa4096:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(4096));
      break;
  }
  if (key == nullptr) return crypto_error("key generation failed");
  return PkeyPtr(key);
}

Result<PkeyPtr> load_private_key(std::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return crypto_error("BIO_new_mem_buf");
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    openssl_errors();  // the queue may quote key material: drop it
    return Error{Errc::corrupt, "private key does not parse as PEM"};
  }
  return PkeyPtr(key);
}

Result<std::string> private_key_pem(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return crypto_error("PEM_write_bio_PrivateKey");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string sha256(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return bytes_of(out, sizeof out);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return bytes_of(out, len);
}

Result<std::string> ec_jwk_json(EVP_PKEY* key) {
  if (!is_p256(key)) return Error{Errc::invalid_argument, "the account key must be EC P-256"};
  auto x = coordinate(key, OSSL_PKEY_PARAM_EC_PUB_X);
  if (!x) return x.error();
  auto y = coordinate(key, OSSL_PKEY_PARAM_EC_PUB_Y);
  if (!y) return y.error();
  // base64url never needs JSON escaping, so the members can be written directly.
  return R"({"crv":"P-256","kty":"EC","x":")" + base64url_encode(*x) + R"(","y":")" +
         base64url_encode(*y) + "\"}";
}

Result<std::string> jwk_thumbprint(EVP_PKEY* key) {
  auto jwk = ec_jwk_json(key);
  if (!jwk) return jwk.error();
  return base64url_encode(sha256(*jwk));
}

Result<std::string> es256_sign(EVP_PKEY* key, std::string_view data) {
  if (!is_p256(key)) return Error{Errc::invalid_argument, "ES256 needs an EC P-256 key"};
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return crypto_error("EVP_DigestSignInit");
  }
  std::size_t der_len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &der_len, in, data.size()) != 1) {
    return crypto_error("EVP_DigestSign");
  }
  std::string der(der_len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &der_len, in,
                     data.size()) != 1) {
    return crypto_error("EVP_DigestSign");
  }
  // OpenSSL speaks DER (SEQUENCE of two INTEGERs); JOSE wants the fixed-width r‖s.
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, SigFree> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  if (!sig) return crypto_error("d2i_ECDSA_SIG");
  unsigned char raw[64];
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw, 32) != 32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw + 32, 32) != 32) {
    return crypto_error("ECDSA signature wider than 32 bytes");
  }
  return bytes_of(raw, sizeof raw);
}

Result<std::string> jws_es256(EVP_PKEY* key, std::string_view protected_json,
                              std::string_view payload) {
  const std::string protected_b64 = base64url_encode(protected_json);
  const std::string payload_b64 = base64url_encode(payload);
  auto sig = es256_sign(key, protected_b64 + "." + payload_b64);
  if (!sig) return sig.error();
  return R"({"protected":")" + protected_b64 + R"(","payload":")" + payload_b64 +
         R"(","signature":")" + base64url_encode(*sig) + "\"}";
}

std::string eab_jws(std::string_view account_jwk_json, std::string_view kid,
                    std::string_view mac_key, std::string_view url) {
  std::string header = R"({"alg":"HS256","kid":)";
  // kid and url come from config and the CA: escape them as JSON strings.
  auto quote = [](std::string_view s) {
    std::string q = "\"";
    for (const char c : s) {
      if (c == '"' || c == '\\') {
        q += '\\';
        q += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        q += buf;
      } else {
        q += c;
      }
    }
    return q + "\"";
  };
  header += quote(kid) + R"(,"url":)" + quote(url) + "}";
  const std::string protected_b64 = base64url_encode(header);
  const std::string payload_b64 = base64url_encode(account_jwk_json);
  const std::string mac = hmac_sha256(mac_key, protected_b64 + "." + payload_b64);
  return R"({"protected":")" + protected_b64 + R"(","payload":")" + payload_b64 +
         R"(","signature":")" + base64url_encode(mac) + "\"}";
}

std::string dns01_txt_value(std::string_view token, std::string_view thumbprint) {
  std::string key_authorization(token);
  key_authorization += '.';
  key_authorization += thumbprint;
  return base64url_encode(sha256(key_authorization));
}

Result<std::string> make_csr_der(EVP_PKEY* key, const std::vector<std::string>& names) {
  if (names.empty()) return Error{Errc::invalid_argument, "a CSR needs at least one name"};
  std::string san;
  for (const auto& n : names) {
    if (!plain_dns_name(n)) return Error{Errc::invalid_argument, "invalid DNS name: " + n};
    if (!san.empty()) san += ',';
    san += "DNS:" + n;
  }
  std::unique_ptr<X509_REQ, ReqFree> req(X509_REQ_new());
  std::unique_ptr<X509_NAME, NameFree> subject(X509_NAME_new());
  if (!req || !subject || X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_subject_name(req.get(), subject.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key) != 1) {
    return crypto_error("building the CSR");
  }
  std::unique_ptr<STACK_OF(X509_EXTENSION), ExtsFree> exts(sk_X509_EXTENSION_new_null());
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  if (!exts || ext == nullptr || sk_X509_EXTENSION_push(exts.get(), ext) == 0) {
    if (ext != nullptr) X509_EXTENSION_free(ext);
    return crypto_error("CSR subjectAltName");
  }
  if (X509_REQ_add_extensions(req.get(), exts.get()) != 1 ||
      X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) {
    return crypto_error("signing the CSR");
  }
  const int len = i2d_X509_REQ(req.get(), nullptr);
  if (len <= 0) return crypto_error("i2d_X509_REQ");
  std::string der(static_cast<std::size_t>(len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509_REQ(req.get(), &out);
  return der;
}

}  // namespace sandboxd::acme
