#include "tls_check.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "text.h"

namespace sandboxd::config::detail {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};

// A certificate chain or key is small; a huge file is a mistake, not something to load.
constexpr std::size_t kMaxPemBytes = 1 << 20;

std::optional<std::string> read_small_file(const std::string& path, std::string& why) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    why = std::strerror(errno);
    return std::nullopt;
  }
  std::string data;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f.get())) {
    data.append(buf, n);
    if (data.size() > kMaxPemBytes) {
      why = "larger than 1MiB";
      return std::nullopt;
    }
  }
  if (std::ferror(f.get())) {
    why = std::strerror(errno);
    return std::nullopt;
  }
  return data;
}

// Refuses encrypted keys instead of letting OpenSSL prompt on the terminal.
int no_passphrase(char*, int, int, void*) { return 0; }

std::unique_ptr<BIO, BioFree> memory_bio(const std::string& data) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::vector<std::string> dns_names(X509* cert) {
  std::vector<std::string> out;
  std::unique_ptr<GENERAL_NAMES, NamesFree> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_DNS) continue;
    const ASN1_IA5STRING* s = gn->d.dNSName;
    out.push_back(lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                         static_cast<std::size_t>(ASN1_STRING_length(s)))));
  }
  return out;
}

}  // namespace

std::vector<TlsFileProblem> check_tls_files(const std::string& cert_path,
                                            const std::string& key_path,
                                            const std::string& suffix) {
  std::vector<TlsFileProblem> out;
  std::unique_ptr<X509, X509Free> cert;
  std::string why;
  if (cert_path.empty()) {
    // Reported by the caller as missing.
  } else if (auto pem = read_small_file(cert_path, why); !pem) {
    out.push_back({"tls.files.cert", "cannot read " + quote(cert_path) + ": " + why, ""});
  } else {
    auto bio = memory_bio(*pem);
    cert.reset(bio ? PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
    if (!cert) {
      out.push_back({"tls.files.cert", quote(cert_path) + " holds no PEM certificate",
                     "the file starts with -----BEGIN CERTIFICATE-----, leaf first"});
    } else {
      if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) < 0) {
        out.push_back(
            {"tls.files.cert", "the certificate in " + quote(cert_path) + " has expired", ""});
      }
      const std::string wanted = "*." + lower(suffix);
      std::vector<std::string> names = dns_names(cert.get());
      bool covered = false;
      for (const auto& n : names) covered = covered || n == wanted;
      if (!covered) {
        std::string hint = names.empty() ? "it has no DNS names" : "it covers " + join_or(names);
        out.push_back({"tls.files.cert", "the certificate does not cover " + wanted, hint});
      }
    }
  }
  if (key_path.empty()) {
    // Reported by the caller as missing.
  } else if (auto pem = read_small_file(key_path, why); !pem) {
    out.push_back({"tls.files.key", "cannot read " + quote(key_path) + ": " + why, ""});
  } else {
    auto bio = memory_bio(*pem);
    std::unique_ptr<EVP_PKEY, PkeyFree> key(
        bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
    if (!key) {
      out.push_back({"tls.files.key", quote(key_path) + " holds no PEM private key",
                     "expected -----BEGIN PRIVATE KEY----- (encrypted keys are not supported)"});
    } else if (cert && X509_check_private_key(cert.get(), key.get()) != 1) {
      out.push_back(
          {"tls.files.key", "the key does not match the certificate in tls.files.cert", ""});
    }
  }
  // Leave no failure behind in this thread's queue for unrelated OpenSSL callers.
  ERR_clear_error();
  return out;
}

}  // namespace sandboxd::config::detail
