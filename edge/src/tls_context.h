// The OpenSSL side of the https listener (SPEC §3.15): one SSL_CTX per certificate, SNI
// choosing between them, ALPN, protocol and cipher policy, and session-ticket keys that
// rotate every 12 h and outlive certificate swaps.
//
// A `TlsContexts` is immutable once built and shared (shared_ptr) by the server, the workers
// and every connection that handshook with it, so a swap never pulls a context from under a
// handshake in progress. Every SSL it makes starts on the preview context; the servername
// callback moves it to the control context when only that one covers the name.
#pragma once

#include "base/result.h"
#include "edge/tls.h"

#include <openssl/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::edge::detail {

// Whether `name` (lower-case, no port) is one of `names` or under one of its one-label
// wildcards ("*.example.com" covers "a.example.com", not "a.b.example.com" nor itself).
bool names_cover(const std::vector<std::string>& names, std::string_view name);

// Session-ticket keys shared by every context of a server: the current key encrypts, the
// previous one still decrypts for one more period. Thread-safe.
class TicketKeys {
 public:
  struct Key {
    std::array<unsigned char, 16> name{};
    std::array<unsigned char, 32> aes{};
    std::array<unsigned char, 32> hmac{};
  };
  explicit TicketKeys(std::chrono::seconds period = std::chrono::hours(12));

  // The key to encrypt a new ticket with (rotating first when the period is over).
  Key current();
  // The key named `name`, and whether it is the current one; false when unknown.
  bool find(const unsigned char* name, Key* out, bool* is_current);

 private:
  void rotate_if_due_locked();
  std::mutex mu_;
  std::chrono::seconds period_;
  std::chrono::steady_clock::time_point made_;
  Key current_;
  Key previous_;
  bool has_previous_ = false;
};

class TlsContexts {
 public:
  // Checks and loads `certs`. `tls13_only` is tls.min_version "1.3".
  static Result<std::shared_ptr<const TlsContexts>> build(const TlsCertificates& certs,
                                                          bool tls13_only,
                                                          std::shared_ptr<TicketKeys> tickets);
  ~TlsContexts();
  TlsContexts(const TlsContexts&) = delete;
  TlsContexts& operator=(const TlsContexts&) = delete;

  // A fresh server-side SSL on the preview context; null when OpenSSL is out of memory.
  SSL* new_ssl() const;
  // Whether the certificate this (finished) handshake used covers `host` (lower-case).
  bool covers(const SSL* ssl, std::string_view host) const;
  bool placeholder() const { return placeholder_; }
  const TlsCertificateInfo& preview_info() const { return preview_.info; }

 private:
  struct Entry {
    SSL_CTX* ctx = nullptr;
    TlsCertificateInfo info;
  };
  TlsContexts() = default;
  static int on_servername(SSL* ssl, int* alert, void* arg);

  Entry preview_;
  Entry control_;  // ctx null when there is none
  bool placeholder_ = false;
  std::shared_ptr<TicketKeys> tickets_;
};

// "TLSv1.3", "TLSv1.2", … of a finished handshake.
std::string_view tls_version_name(const SSL* ssl);

}  // namespace sandboxd::edge::detail
