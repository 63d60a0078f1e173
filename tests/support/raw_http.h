// A blocking HTTP/1.1 client over a plain TCP socket, for tests: it sends exactly the bytes
// it is given (so tests can send malformed requests) and reads one response with a deadline.
// Bodies framed by Content-Length or chunked transfer coding are read whole (a chunked body
// is handed back decoded). `start_tls` turns the connection into a TLS client (OpenSSL) that
// reports what the handshake chose.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

struct ssl_st;
struct ssl_session_st;

namespace sandboxd::testing {

struct TlsClientOptions {
  std::string sni{};                  // "" sends no SNI
  std::string trust_pem{};            // the roots to verify against; "" verifies nothing
  std::string verify_host{};          // checked against the certificate when set
  std::vector<std::string> alpn{"http/1.1"};
  int min_version = 0;              // TLS1_2_VERSION …; 0 = library default
  int max_version = 0;
  std::string tls12_ciphers{};        // "" = library default
  ssl_session_st* session = nullptr;  // offered for resumption (not owned)
};

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class RawConnection {
 public:
  // Connects to 127.0.0.1:port; throws on failure.
  explicit RawConnection(std::uint16_t port);
  // Connects to an IPv4 address in dotted form; throws on failure.
  RawConnection(const std::string& ipv4, std::uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Handshakes as a TLS client over this connection; the error text on failure.
  std::optional<std::string> start_tls(const TlsClientOptions& options,
                                       std::chrono::milliseconds deadline =
                                           std::chrono::seconds(10));
  std::string tls_version() const;        // "TLSv1.3", …
  std::string alpn() const;               // "" when none was selected
  std::vector<std::string> peer_names() const;  // the server certificate's DNS SANs
  std::string peer_serial() const;        // hex
  bool session_reused() const;
  // The session to offer on a later connection; free it with SSL_SESSION_free.
  ssl_session_st* session() const;

  void send(const std::string& bytes);
  // Reads one response (Content-Length framed; HEAD answers have no body). nullopt when the
  // peer closed first or the deadline passed.
  std::optional<RawResponse> read_response(bool head = false,
                                           std::chrono::milliseconds deadline =
                                               std::chrono::seconds(10));
  // Reads raw bytes, unparsed, until they contain `needle`; false on EOF or at the deadline.
  // For watching a streamed answer arrive piece by piece.
  bool read_until(const std::string& needle, std::chrono::milliseconds deadline);
  // Bytes received and not yet consumed by read_response.
  const std::string& received() const { return buffer_; }
  // True when the peer closes the connection (EOF) before the deadline.
  bool wait_closed(std::chrono::milliseconds deadline = std::chrono::seconds(10));

 private:
  bool fill(std::chrono::steady_clock::time_point until);
  bool read_chunked(std::string& body, std::chrono::steady_clock::time_point until);
  int fd_ = -1;
  ssl_st* ssl_ = nullptr;
  std::string buffer_;
};

// One request on a new connection: "GET <target>" with Host and Connection: close.
std::optional<RawResponse> http_get(std::uint16_t port, const std::string& target,
                                    const std::string& method = "GET");

// One request with a body on a new connection (Content-Length set from `body`, plus
// Connection: close). `headers` are extra "Name: value" lines without CRLF.
std::optional<RawResponse> http_request(std::uint16_t port, const std::string& method,
                                        const std::string& target, const std::string& body,
                                        const std::vector<std::string>& headers = {},
                                        std::chrono::milliseconds deadline =
                                            std::chrono::seconds(30));

}  // namespace sandboxd::testing
