// The v1 files routes (SPEC §2.7.6-2.7.10): list, read, write/append and export of a
// sandbox's workspace on the host, in every state that has a workspace, with no container
// needed. Queries are validated here; the file-system work (files.h) runs on a blocking
// pool under the workspace owner's fsuid/fsgid, never on the control thread.
//
// Handlers run on the control thread, like the rest of the API. A PUT body arrives whole:
// the server has already capped it at files.write_max (413, SPEC §7); the Api checks a
// declared Content-Length before reading. The SandboxService and Config must outlive this
// object; destroying it waits for file work that is running.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>

#include "http.h"

namespace sandboxd::config {
struct Config;
}

namespace sandboxd::control {

class BlockingPool;
class SandboxService;

class FilesApi {
 public:
  FilesApi(SandboxService& service, const config::Config& config);
  ~FilesApi();
  FilesApi(const FilesApi&) = delete;
  FilesApi& operator=(const FilesApi&) = delete;

  // GET /v1/sandboxes/{id}/files
  boost::asio::awaitable<Response> list(Request& r);
  // GET /v1/sandboxes/{id}/files/content
  boost::asio::awaitable<Response> read(Request& r);
  // PUT /v1/sandboxes/{id}/files
  boost::asio::awaitable<Response> write(Request& r);
  // GET /v1/sandboxes/{id}/export
  boost::asio::awaitable<Response> export_tar(Request& r);

 private:
  SandboxService& service_;
  const config::Config& config_;
  std::string workspaces_dir_;
  std::unique_ptr<BlockingPool> pool_;  // last: destroyed (joined) first
};

}  // namespace sandboxd::control
