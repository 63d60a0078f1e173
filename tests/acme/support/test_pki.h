// Certificates made at test time with OpenSSL: a throwaway CA and leaves signed by it, as
// PEM text. Every function throws std::runtime_error on failure (tests only).
#pragma once

#include <string>
#include <vector>

namespace sandboxd::acme::testing {

struct Pem {
  std::string cert;
  std::string key;
};

// A self-signed P-256 CA valid for `days`.
Pem make_ca(const std::string& common_name, int days = 30);
// A P-256 leaf signed by `ca`, with DNS and IP SANs ("DNS:localhost", "IP:127.0.0.1").
Pem make_leaf(const Pem& ca, const std::vector<std::string>& sans, int days = 30);

void write_file(const std::string& path, const std::string& data);
std::string read_file(const std::string& path);

// Verifies `chain_pem` (leaf then intermediates) against `root_pem` and, when `host` is not
// empty, the host name. Returns "" when it verifies, else OpenSSL's reason.
std::string verify_chain(const std::string& chain_pem, const std::string& root_pem,
                         const std::string& host);

}  // namespace sandboxd::acme::testing
