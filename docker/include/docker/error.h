// Typed failures of Docker Engine API calls.
//
// Every call of docker::Client returns a plain `Result<T>` whose Error carries a base `Errc`
// that the rest of sandboxd understands, and a detail that starts with the Docker failure
// kind:  "docker <kind>[ <http status>]: <message>". The message is Docker's own (its JSON
// `message`, or the transport's reason), cut to 512 bytes. `docker_error_kind()` recovers
// the kind from such an Error; it returns nullopt for any other Error (for example
// invalid_argument for a bad socket URL, or cancelled).
//
//   kind          Errc          when
//   not_found     not_found     HTTP 404
//   conflict      conflict      HTTP 409
//   daemon        internal      any other 4xx or 5xx answer
//   unreachable   unavailable   no socket, connection refused, connection lost mid-call
//   timeout       timeout       the call's deadline passed (the connection is closed)
//   protocol      internal      a malformed HTTP answer, JSON document or exec stream
//
// Plain functions and values; safe from any thread.
#pragma once

#include "base/result.h"

#include <cstddef>
#include <optional>
#include <string_view>

namespace sandboxd::docker {

enum class DockerErrorKind { not_found, conflict, daemon, unreachable, timeout, protocol };

inline constexpr std::size_t kMaxErrorMessage = 512;

std::string_view kind_name(DockerErrorKind kind);
Errc errc_for(DockerErrorKind kind);

// Builds the Error for `kind`. `http_status` is 0 when there was no HTTP answer. The message
// is cut to kMaxErrorMessage bytes without splitting a UTF-8 sequence.
Error docker_error(DockerErrorKind kind, std::string_view message, int http_status = 0);

// The kind of an Error made by docker_error(), or nullopt.
std::optional<DockerErrorKind> docker_error_kind(const Error& error);

}  // namespace sandboxd::docker
