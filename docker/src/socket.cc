#include "docker/socket.h"

#include <cstdlib>

namespace sandboxd::docker {

Result<std::string> parse_docker_host(std::string_view url) {
  constexpr std::string_view kScheme = "unix://";
  if (!url.starts_with(kScheme)) {
    const auto colon = url.find("://");
    std::string scheme(colon == std::string_view::npos ? url : url.substr(0, colon));
    return Error{Errc::invalid_argument,
                 "docker host must be a unix:// socket URL, got scheme \"" + scheme + "\""};
  }
  std::string path(url.substr(kScheme.size()));
  if (path.empty() || path.front() != '/') {
    return Error{Errc::invalid_argument, "docker host socket path must be absolute"};
  }
  return path;
}

Result<DockerSocket> resolve_docker_socket(std::string_view configured, const char* docker_host) {
  const bool from_env = docker_host != nullptr && *docker_host != '\0';
  auto path = parse_docker_host(from_env ? std::string_view(docker_host) : configured);
  if (!path) {
    if (from_env) return Error{path.error().code, "DOCKER_HOST: " + path.error().detail};
    return path.error();
  }
  return DockerSocket{std::move(*path), from_env};
}

Result<DockerSocket> resolve_docker_socket(std::string_view configured) {
  return resolve_docker_socket(configured, std::getenv("DOCKER_HOST"));
}

}  // namespace sandboxd::docker
