#include "tls_context.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <ctime>

namespace sandboxd::edge {

namespace {

// Owning handles for the OpenSSL objects used here.
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

// The oldest queued OpenSSL error as text (and the queue emptied), or `fallback`.
std::string openssl_error(std::string_view fallback) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return std::string(fallback);
  char text[256];
  ERR_error_string_n(e, text, sizeof text);
  return std::string(fallback) + ": " + text;
}

BioPtr memory_bio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

struct Parsed {
  std::vector<X509Ptr> chain;  // leaf first
  KeyPtr key;
  TlsCertificateInfo info;
};

std::chrono::system_clock::time_point to_time_point(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::vector<std::string> dns_names(X509* leaf) {
  std::vector<std::string> out;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (sans == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    if (n->type != GEN_DNS) continue;
    const ASN1_STRING* s = n->d.dNSName;
    out.push_back(lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                         static_cast<std::size_t>(ASN1_STRING_length(s)))));
  }
  GENERAL_NAMES_free(sans);
  return out;
}

Result<Parsed> parse(const TlsCertificate& cert) {
  ERR_clear_error();
  Parsed p;
  BioPtr chain_bio = memory_bio(cert.chain_pem);
  if (!chain_bio) return Error{Errc::internal, "out of memory"};
  for (;;) {
    X509* x = PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr);
    if (x == nullptr) break;
    p.chain.emplace_back(x);
  }
  ERR_clear_error();  // the end of the PEM text reads as an error
  if (p.chain.empty()) {
    return Error{Errc::invalid_argument, "the certificate chain holds no PEM certificate"};
  }
  BioPtr key_bio = memory_bio(cert.key_pem);
  if (!key_bio) return Error{Errc::internal, "out of memory"};
  p.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!p.key) return Error{Errc::invalid_argument, openssl_error("the private key does not parse")};
  if (X509_check_private_key(p.chain.front().get(), p.key.get()) != 1) {
    ERR_clear_error();
    return Error{Errc::invalid_argument, "the private key does not match the certificate"};
  }
  X509* leaf = p.chain.front().get();
  p.info.names = dns_names(leaf);
  p.info.not_before = to_time_point(X509_get0_notBefore(leaf));
  p.info.not_after = to_time_point(X509_get0_notAfter(leaf));
  return p;
}

}  // namespace

Result<TlsCertificateInfo> inspect_tls_certificate(const TlsCertificate& cert) {
  auto p = parse(cert);
  if (!p) return p.error();
  return std::move(p->info);
}

Result<TlsCertificate> make_placeholder_certificate(const std::vector<std::string>& names,
                                                    std::chrono::seconds validity) {
  if (names.empty()) return Error{Errc::invalid_argument, "a placeholder needs a name"};
  ERR_clear_error();
  KeyPtr key(EVP_EC_gen("P-256"));
  X509Ptr x(X509_new());
  if (!key || !x) return Error{Errc::internal, openssl_error("cannot make a placeholder key")};
  X509_set_version(x.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), validity.count());
  X509_NAME* subject = X509_get_subject_name(x.get());
  const std::string cn = names.front().substr(0, 64);
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("sandboxd placeholder"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x.get(), subject);
  X509_set_pubkey(x.get(), key.get());
  std::string san;
  for (const std::string& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
  if (ext == nullptr) return Error{Errc::invalid_argument, openssl_error("bad placeholder names")};
  X509_add_ext(x.get(), ext, -1);
  X509_EXTENSION_free(ext);
  if (X509_sign(x.get(), key.get(), EVP_sha256()) == 0) {
    return Error{Errc::internal, openssl_error("cannot sign the placeholder")};
  }
  TlsCertificate out;
  BioPtr cert_out(BIO_new(BIO_s_mem()));
  BioPtr key_out(BIO_new(BIO_s_mem()));
  if (!cert_out || !key_out || PEM_write_bio_X509(cert_out.get(), x.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Error{Errc::internal, openssl_error("cannot write the placeholder")};
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(cert_out.get(), &data);
  out.chain_pem.assign(data, static_cast<std::size_t>(n));
  n = BIO_get_mem_data(key_out.get(), &data);
  out.key_pem.assign(data, static_cast<std::size_t>(n));
  return out;
}

namespace detail {

bool names_cover(const std::vector<std::string>& names, std::string_view name) {
  for (const std::string& n : names) {
    if (n == name) return true;
    if (n.size() > 2 && n[0] == '*' && n[1] == '.') {
      const std::string_view parent = std::string_view(n).substr(1);  // ".example.com"
      if (name.size() > parent.size() && name.ends_with(parent) &&
          name.substr(0, name.size() - parent.size()).find('.') == std::string_view::npos) {
        return true;
      }
    }
  }
  return false;
}

// ---- session tickets ----

TicketKeys::TicketKeys(std::chrono::seconds period) : period_(period) {
  made_ = std::chrono::steady_clock::now();
  RAND_bytes(reinterpret_cast<unsigned char*>(&current_), sizeof current_);
}

void TicketKeys::rotate_if_due_locked() {
  const auto now = std::chrono::steady_clock::now();
  if (now - made_ < period_) return;
  previous_ = current_;
  has_previous_ = true;
  RAND_bytes(reinterpret_cast<unsigned char*>(&current_), sizeof current_);
  made_ = now;
}

TicketKeys::Key TicketKeys::current() {
  std::lock_guard lock(mu_);
  rotate_if_due_locked();
  return current_;
}

bool TicketKeys::find(const unsigned char* name, Key* out, bool* is_current) {
  std::lock_guard lock(mu_);
  rotate_if_due_locked();
  if (std::memcmp(name, current_.name.data(), current_.name.size()) == 0) {
    *out = current_;
    *is_current = true;
    return true;
  }
  if (has_previous_ && std::memcmp(name, previous_.name.data(), previous_.name.size()) == 0) {
    *out = previous_;
    *is_current = false;
    return true;
  }
  return false;
}

namespace {

int ticket_keys_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int set_mac_key(EVP_MAC_CTX* hctx, const TicketKeys::Key& key) {
  char digest[] = "sha256";
  OSSL_PARAM params[3];
  params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                                const_cast<unsigned char*>(key.hmac.data()),
                                                key.hmac.size());
  params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
  params[2] = OSSL_PARAM_construct_end();
  return EVP_MAC_CTX_set_params(hctx, params);
}

// OpenSSL's ticket callback: 1 = use this key, 2 = valid but issue a new ticket, 0 = unknown
// key (a full handshake follows), -1 = error.
int on_ticket(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
              EVP_MAC_CTX* hctx, int enc) {
  auto* keys = static_cast<TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_keys_index()));
  if (keys == nullptr) return -1;
  if (enc == 1) {
    const TicketKeys::Key k = keys->current();
    if (RAND_bytes(iv, 16) != 1) return -1;
    std::memcpy(key_name, k.name.data(), k.name.size());
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes.data(), iv) != 1) return -1;
    return set_mac_key(hctx, k) == 1 ? 1 : -1;
  }
  TicketKeys::Key k;
  bool is_current = false;
  if (!keys->find(key_name, &k, &is_current)) return 0;
  if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes.data(), iv) != 1) return -1;
  if (set_mac_key(hctx, k) != 1) return -1;
  return is_current ? 1 : 2;
}

// §3.15: http/1.1 when offered, otherwise no ALPN at all.
int on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
            unsigned int inlen, void*) {
  static constexpr unsigned char kHttp11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned int i = 0;
  while (i < inlen) {
    const unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == sizeof kHttp11 && std::memcmp(in + i + 1, kHttp11, len) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// §3.15 TLS 1.2 suites: ECDHE with AES-GCM or ChaCha20-Poly1305 only.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

Result<SSL_CTX*> make_ctx(const TlsCertificate& cert, bool tls13_only, TicketKeys* tickets,
                          TlsCertificateInfo* info) {
  auto parsed = parse(cert);
  if (!parsed) return parsed.error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return Error{Errc::internal, openssl_error("cannot make a TLS context")};
  auto fail = [ctx](std::string_view what) -> Error {
    SSL_CTX_free(ctx);
    return Error{Errc::invalid_argument, openssl_error(what)};
  };
  SSL_CTX_set_min_proto_version(ctx, tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) return fail("cannot set the TLS 1.2 ciphers");
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // stateless tickets only
  SSL_CTX_set_num_tickets(ctx, 1);
  SSL_CTX_set_ex_data(ctx, ticket_keys_index(), tickets);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket);
  SSL_CTX_set_alpn_select_cb(ctx, on_alpn, nullptr);
  if (SSL_CTX_use_certificate(ctx, parsed->chain.front().get()) != 1) return fail("cannot use the certificate");
  for (std::size_t i = 1; i < parsed->chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, parsed->chain[i].get()) != 1) return fail("cannot add a chain certificate");
  }
  if (SSL_CTX_use_PrivateKey(ctx, parsed->key.get()) != 1) return fail("cannot use the private key");
  *info = std::move(parsed->info);
  return ctx;
}

}  // namespace

Result<std::shared_ptr<const TlsContexts>> TlsContexts::build(const TlsCertificates& certs,
                                                              bool tls13_only,
                                                              std::shared_ptr<TicketKeys> tickets) {
  std::shared_ptr<TlsContexts> out(new TlsContexts());
  out->tickets_ = std::move(tickets);
  out->placeholder_ = certs.placeholder;
  auto preview = make_ctx(certs.preview, tls13_only, out->tickets_.get(), &out->preview_.info);
  if (!preview) return Error{preview.error().code, "preview certificate: " + preview.error().detail};
  out->preview_.ctx = *preview;
  if (certs.control) {
    auto control = make_ctx(*certs.control, tls13_only, out->tickets_.get(), &out->control_.info);
    if (!control) return Error{control.error().code, "control certificate: " + control.error().detail};
    out->control_.ctx = *control;
  }
  // The macro spelling of this call casts in the C style.
  SSL_CTX_callback_ctrl(out->preview_.ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                        reinterpret_cast<void (*)()>(on_servername));
  SSL_CTX_set_tlsext_servername_arg(out->preview_.ctx, out.get());
  return std::shared_ptr<const TlsContexts>(std::move(out));
}

TlsContexts::~TlsContexts() {
  SSL_CTX_free(preview_.ctx);
  SSL_CTX_free(control_.ctx);
}

int TlsContexts::on_servername(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const TlsContexts*>(arg);
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sni == nullptr || self->control_.ctx == nullptr) return SSL_TLSEXT_ERR_OK;
  const std::string name = lower(sni);
  // An exact SAN beats a one-label wildcard; the preview certificate is the default.
  const auto& p = self->preview_.info.names;
  const auto& c = self->control_.info.names;
  const bool preview_exact = std::find(p.begin(), p.end(), name) != p.end();
  const bool control_exact = std::find(c.begin(), c.end(), name) != c.end();
  const bool use_control = !preview_exact && (control_exact || (names_cover(c, name) && !names_cover(p, name)));
  if (use_control) SSL_set_SSL_CTX(ssl, self->control_.ctx);
  return SSL_TLSEXT_ERR_OK;
}

SSL* TlsContexts::new_ssl() const { return SSL_new(preview_.ctx); }

bool TlsContexts::covers(const SSL* ssl, std::string_view host) const {
  const SSL_CTX* used = SSL_get_SSL_CTX(ssl);
  const Entry& e = (control_.ctx != nullptr && used == control_.ctx) ? control_ : preview_;
  return names_cover(e.info.names, host);
}

std::string_view tls_version_name(const SSL* ssl) {
  switch (SSL_version(ssl)) {
    case TLS1_3_VERSION: return "TLSv1.3";
    case TLS1_2_VERSION: return "TLSv1.2";
    default: return "other";
  }
}

}  // namespace detail
}  // namespace sandboxd::edge
