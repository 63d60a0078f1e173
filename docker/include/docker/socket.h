// Where the Docker Engine listens.
//
// sandboxd talks to Docker only over a unix socket, named by a `unix://` URL (the
// `docker.host` setting, default unix:///var/run/docker.sock). A non-empty DOCKER_HOST in
// sandboxd's environment overrides the configured URL, as it does for the docker CLI; the
// result says so, so the caller can log it. Any other scheme (tcp://, ssh://, npipe://) is
// an invalid_argument error. Plain functions; safe from any thread (getenv is read once per
// call).
#pragma once

#include "base/result.h"

#include <string>
#include <string_view>

namespace sandboxd::docker {

inline constexpr std::string_view kDefaultDockerHost = "unix:///var/run/docker.sock";

struct DockerSocket {
  std::string path;                 // absolute file system path of the socket
  bool from_docker_host = false;    // DOCKER_HOST overrode the configured URL
};

// The socket path of a `unix://` URL. The path must be absolute.
Result<std::string> parse_docker_host(std::string_view url);

// DOCKER_HOST if set and non-empty, else `configured`.
Result<DockerSocket> resolve_docker_socket(std::string_view configured);

// The same with the environment value passed in (nullptr: unset); for tests.
Result<DockerSocket> resolve_docker_socket(std::string_view configured, const char* docker_host);

}  // namespace sandboxd::docker
