// Peers for the edge's socket tests, all on 127.0.0.1 with blocking sockets and deadlines:
//  - `TestUpstream`: a small HTTP/1.1 app server (a thread per connection) with routes that
//    echo the request, stream bodies without keeping them, answer chunked and SSE
//    responses piece by piece (the test says when the rest may come), and switch to an
//    echoing tunnel after a 101 (/ws, which it closes after echoing "quit") or send
//    WebSocket frames, one cut in two until
//    released (/ws-frames). It counts the connections it accepts.
//  - `Client`: one client connection that sends exact bytes and reads responses (Content-
//    Length, chunked or close-delimited), optionally counting a body instead of keeping it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sandboxd::edge::testing {

using namespace std::chrono_literals;

class TestUpstream {
 public:
  // Listens on 127.0.0.1:port (0: a free port).
  explicit TestUpstream(std::uint16_t port = 0);
  ~TestUpstream();
  TestUpstream(const TestUpstream&) = delete;
  TestUpstream& operator=(const TestUpstream&) = delete;

  std::uint16_t port() const { return port_; }
  int accepts() const { return accepts_.load(); }
  // Lets every /sse, /sse-close and /ws-frames response send the rest of its body.
  void release();

 private:
  void accept_loop();
  void serve(int fd);
  bool wait_released(std::chrono::milliseconds limit);

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepts_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

struct Response {
  int status = 0;
  std::string reason;
  std::map<std::string, std::string> headers;  // lower-case names; repeats joined by ", "
  std::string body;
  std::uint64_t body_bytes = 0;  // also counted when the body is not kept
  std::uint64_t body_sum = 0;    // FNV-1a of the body
  bool chunked = false;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class Client {
 public:
  explicit Client(std::uint16_t port);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool send(const std::string& bytes, std::chrono::milliseconds limit = 20s);
  // One response. `head_request`: no body. `keep_body`: false counts the body only.
  std::optional<Response> read(bool head_request = false, bool keep_body = true,
                               std::chrono::milliseconds limit = 20s);
  // Raw bytes until `needle` has arrived (kept for a later read); false on EOF or deadline.
  bool read_until(const std::string& needle, std::chrono::milliseconds limit = 10s);
  // True when the edge closes the connection (EOF or reset) within `limit`; unread bytes
  // that arrive first are kept in `received()`.
  bool wait_closed(std::chrono::milliseconds limit = 10s);
  const std::string& received() const { return buffer_; }
  void shutdown_write();

 private:
  bool fill(std::chrono::steady_clock::time_point until);
  int fd_ = -1;
  std::string buffer_;
};

std::uint64_t fnv1a(std::uint64_t h, const char* data, std::size_t n);
constexpr std::uint64_t kFnvBasis = 1469598103934665603ull;

// The byte at `offset` of every generated body (uploads and /download).
inline char pattern_byte(std::uint64_t offset) {
  return static_cast<char>('a' + (offset * 7 + offset / 251) % 26);
}

// The peak resident set size of this process (VmHWM), in bytes, and its reset to the
// current size (Linux: "5" into /proc/self/clear_refs).
std::uint64_t peak_rss_bytes();
void reset_peak_rss();

}  // namespace sandboxd::edge::testing
