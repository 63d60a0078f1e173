// Runs the real sandboxctl binary (SANDBOXCTL_BIN) as a user would: stdin from a pipe (never
// a terminal), SANDBOXD_URL and SANDBOXD_TOKEN removed from its environment unless the
// caller sets them, stdout and stderr captured, bounded by a deadline. SANDBOXCTL_TEST_BIN
// names another build of the binary to run (the ASan one, to diagnose a crash).
//
// `FakeServer` is a scripted HTTP peer on 127.0.0.1 for what a live sandboxd cannot be made
// to do on demand (drop an event stream, send a malformed answer): each accepted connection
// reads one request head (and a Content-Length body) and gets the bytes the script returns
// for it, then the connection is closed. Its thread ends with the object.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace sandboxd::testing {

struct Ctl {
  int status = -1;  // exit code; 128+N for a signal; -1 when it did not finish in time
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const Ctl& c);

// `env` entries are "K=V"; `input` is written to stdin, which is then closed.
Ctl ctl(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
        const std::string& input = "",
        std::chrono::milliseconds deadline = std::chrono::seconds(120));

// The lines of `text` without their '\n'.
std::vector<std::string> lines(const std::string& text);

class FakeServer {
 public:
  // `script(request, n)`: the raw answer to the n-th connection's request (head and body).
  explicit FakeServer(std::function<std::string(const std::string& request, int n)> script);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The requests received so far, in order.
  std::vector<std::string> requests();

 private:
  void serve();

  std::function<std::string(const std::string&, int)> script_;
  int listen_fd_ = -1;
  int stop_[2] = {-1, -1};
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

// An HTTP/1.1 chunk of `data` ("<hex>\r\n<data>\r\n").
std::string chunk(const std::string& data);

}  // namespace sandboxd::testing
