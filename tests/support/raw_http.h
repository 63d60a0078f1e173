// A blocking HTTP/1.1 client over a plain TCP socket, for tests: it sends exactly the bytes
// it is given (so tests can send malformed requests) and reads one response with a deadline.
// Bodies framed by Content-Length or chunked transfer coding are read whole (a chunked body
// is handed back decoded).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::testing {

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
