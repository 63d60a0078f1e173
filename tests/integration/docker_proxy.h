// A unix-socket proxy in front of the real Docker Engine, for fault injection: it relays
// bytes both ways and, on the first request whose bytes match `hold` (a regex searched in
// each chunk the client sends), stops relaying that connection's requests: the matching
// request never reaches the engine and its caller waits for an answer forever. The test then
// knows exactly which step of an operation sandboxd is in (for example: the container exists
// but was not started) and can kill sandboxd there.
//
// One background thread serves every connection; the destructor stops it and closes all
// sockets. Not for large transfers: writes are blocking.
#pragma once

#include <atomic>
#include <chrono>
#include <regex>
#include <string>
#include <thread>

namespace sandboxd::testing {

class DockerProxy {
 public:
  // Listens on `listen_path` (a new unix socket) and relays to `engine_path`.
  DockerProxy(std::string listen_path, std::string engine_path, const std::string& hold);
  ~DockerProxy();
  DockerProxy(const DockerProxy&) = delete;
  DockerProxy& operator=(const DockerProxy&) = delete;

  const std::string& path() const { return listen_path_; }
  // Waits until a request was held.
  bool wait_held(std::chrono::milliseconds deadline) const;
  // The chunk that matched.
  std::string held_request() const;

 private:
  void serve();

  std::string listen_path_;
  std::string engine_path_;
  std::regex hold_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::atomic<bool> held_{false};
  std::string held_request_;  // written once, before held_ is set
  std::thread thread_;
};

}  // namespace sandboxd::testing
