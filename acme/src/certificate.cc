#include "acme/certificate.h"

#include "crypto.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <memory>

namespace sandboxd::acme {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* g) const { GENERAL_NAMES_free(g); }
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

Result<Clock::WallTime> wall_of(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return Error{Errc::invalid_argument, "bad certificate time"};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string key_type_of(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      const int bits = EVP_PKEY_get_bits(key);
      if (bits == 256) return "ec256";
      if (bits == 384) return "ec384";
      return "other";
    }
    case EVP_PKEY_RSA: {
      const int bits = EVP_PKEY_get_bits(key);
      if (bits == 2048) return "rsa2048";
      if (bits == 4096) return "rsa4096";
      return "other";
    }
    default: return "other";
  }
}

}  // namespace

std::string_view to_string(KeyType type) {
  switch (type) {
    case KeyType::ec256: return "ec256";
    case KeyType::ec384: return "ec384";
    case KeyType::rsa2048: return "rsa2048";
    case KeyType::rsa4096: return "rsa4096";
  }
  return "ec256";
}

Result<CertificateBundle> inspect_certificate(std::string chain_pem, std::string key_pem) {
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())));
  if (!bio) return Error{Errc::internal, "BIO_new_mem_buf"};
  std::vector<std::unique_ptr<X509, X509Free>> chain;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) chain.emplace_back(x);
  openssl_errors();  // the read loop always ends with a "no start line" error
  if (chain.empty()) return Error{Errc::invalid_argument, "certificate chain holds no certificate"};
  X509* leaf = chain.front().get();

  auto key = load_private_key(key_pem);
  if (!key) return Error{Errc::invalid_argument, "certificate key does not parse"};
  if (X509_check_private_key(leaf, key->get()) != 1) {
    openssl_errors();
    return Error{Errc::invalid_argument, "certificate key does not match the leaf"};
  }

  CertificateBundle b;
  auto nb = wall_of(X509_get0_notBefore(leaf));
  auto na = wall_of(X509_get0_notAfter(leaf));
  if (!nb || !na) return Error{Errc::invalid_argument, "leaf has unreadable validity dates"};
  b.not_before = *nb;
  b.not_after = *na;

  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
      if (gn->type != GEN_DNS) continue;
      const ASN1_IA5STRING* s = gn->d.dNSName;
      b.names.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                          static_cast<std::size_t>(ASN1_STRING_length(s)))));
    }
  }

  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), nullptr);
  if (serial != nullptr) {
    char* hex = BN_bn2hex(serial);
    if (hex != nullptr) {
      b.serial = lower(hex);
      const auto first = b.serial.find_first_not_of('0');
      b.serial = first == std::string::npos ? "0" : b.serial.substr(first);
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }

  std::unique_ptr<BIO, BioFree> out(BIO_new(BIO_s_mem()));
  if (out && X509_NAME_print_ex(out.get(), X509_get_issuer_name(leaf), 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(out.get(), &data);
    b.issuer.assign(data, static_cast<std::size_t>(n));
  }
  b.key_type = key_type_of(key->get());
  b.chain_pem = std::move(chain_pem);
  b.key_pem = std::move(key_pem);
  return b;
}

bool covers_names(const CertificateBundle& bundle, const std::vector<std::string>& wanted) {
  for (const auto& w : wanted) {
    if (std::find(bundle.names.begin(), bundle.names.end(), lower(w)) == bundle.names.end()) {
      return false;
    }
  }
  return true;
}

}  // namespace sandboxd::acme
