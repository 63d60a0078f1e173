#include "docker/error.h"

#include <array>
#include <string>

namespace sandboxd::docker {

namespace {

constexpr std::array kKinds = {DockerErrorKind::not_found, DockerErrorKind::conflict,
                               DockerErrorKind::daemon,    DockerErrorKind::unreachable,
                               DockerErrorKind::timeout,   DockerErrorKind::protocol};

constexpr std::string_view kPrefix = "docker ";

// Cuts `text` to at most `limit` bytes, backing off to the start of a UTF-8 sequence.
std::string_view cut_utf8(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

}  // namespace

std::string_view kind_name(DockerErrorKind kind) {
  switch (kind) {
    case DockerErrorKind::not_found: return "not_found";
    case DockerErrorKind::conflict: return "conflict";
    case DockerErrorKind::daemon: return "daemon";
    case DockerErrorKind::unreachable: return "unreachable";
    case DockerErrorKind::timeout: return "timeout";
    case DockerErrorKind::protocol: return "protocol";
  }
  return "daemon";
}

Errc errc_for(DockerErrorKind kind) {
  switch (kind) {
    case DockerErrorKind::not_found: return Errc::not_found;
    case DockerErrorKind::conflict: return Errc::conflict;
    case DockerErrorKind::daemon: return Errc::internal;
    case DockerErrorKind::unreachable: return Errc::unavailable;
    case DockerErrorKind::timeout: return Errc::timeout;
    case DockerErrorKind::protocol: return Errc::internal;
  }
  return Errc::internal;
}

Error docker_error(DockerErrorKind kind, std::string_view message, int http_status) {
  std::string detail(kPrefix);
  detail += kind_name(kind);
  if (http_status > 0) {
    detail += ' ';
    detail += std::to_string(http_status);
  }
  detail += ": ";
  detail += cut_utf8(message, kMaxErrorMessage);
  return Error{errc_for(kind), std::move(detail)};
}

std::optional<DockerErrorKind> docker_error_kind(const Error& error) {
  std::string_view d = error.detail;
  if (!d.starts_with(kPrefix)) return std::nullopt;
  d.remove_prefix(kPrefix.size());
  const auto end = d.find_first_of(" :");
  if (end == std::string_view::npos) return std::nullopt;
  const auto word = d.substr(0, end);
  for (auto kind : kKinds) {
    if (word == kind_name(kind) && error.code == errc_for(kind)) return kind;
  }
  return std::nullopt;
}

}  // namespace sandboxd::docker
