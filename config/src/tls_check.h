// The tls.files checks of §9.3, done with OpenSSL so that a bad pair is refused before
// the edge starts: both files readable, a PEM certificate that has not expired and covers
// *.<suffix>, and a PEM private key that matches it.
#pragma once

#include <string>
#include <vector>

namespace sandboxd::config::detail {

struct TlsFileProblem {
  std::string key;  // "tls.files.cert" or "tls.files.key"
  std::string message;
  std::string hint;
};

// Reads the files that are named (an empty path is skipped); never throws. Encrypted keys
// are reported, never prompted for.
std::vector<TlsFileProblem> check_tls_files(const std::string& cert_path,
                                            const std::string& key_path, const std::string& suffix);

}  // namespace sandboxd::config::detail
