// The OpenSSL 3 pieces of ACME: keys, JWS ES256 (RFC 7515/7518) with the raw r‖s
// signature, JWK thumbprints (RFC 7638), External Account Binding (RFC 8555 §7.3.4), the
// dns-01 TXT value and the PKCS#10 CSR. Private to the module; pure functions over keys.
#pragma once

#include "acme/certificate.h"
#include "base/result.h"

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::acme {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The text of OpenSSL's error queue (emptied), for error details.
std::string openssl_errors();

Result<PkeyPtr> generate_key(KeyType type);
Result<PkeyPtr> load_private_key(std::string_view pem);
Result<std::string> private_key_pem(EVP_PKEY* key);  // PKCS#8, unencrypted

std::string sha256(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);

// {"crv":"P-256","kty":"EC","x":…,"y":…}: RFC 7638 member order, no whitespace. The key must
// be an EC P-256 key.
Result<std::string> ec_jwk_json(EVP_PKEY* key);
// base64url(SHA-256(ec_jwk_json)).
Result<std::string> jwk_thumbprint(EVP_PKEY* key);

// ECDSA P-256 over SHA-256, as 64 bytes: r and s, each 32 bytes big-endian, left-padded.
Result<std::string> es256_sign(EVP_PKEY* key, std::string_view data);

// A flattened JWS JSON serialization: {"protected":…,"payload":…,"signature":…}.
// `protected_json` and `payload` are the exact bytes to encode; payload "" is POST-as-GET.
Result<std::string> jws_es256(EVP_PKEY* key, std::string_view protected_json,
                              std::string_view payload);

// The externalAccountBinding object: protected {"alg":"HS256","kid","url"}, the account's JWK
// as payload, HMAC-SHA256 with `mac_key` (raw bytes).
std::string eab_jws(std::string_view account_jwk_json, std::string_view kid,
                    std::string_view mac_key, std::string_view url);

// base64url(SHA-256(token "." thumbprint)).
std::string dns01_txt_value(std::string_view token, std::string_view thumbprint);

// PKCS#10, DER: empty subject, every name as a dNSName SAN, signed with SHA-256.
Result<std::string> make_csr_der(EVP_PKEY* key, const std::vector<std::string>& names);

}  // namespace sandboxd::acme
