// Preview host names (SPEC §1.4 and §3.4): which sandbox and port a request's host names.
//
// `classify_host` takes a host exactly as the client sent it (the Host value or an
// absolute-form authority, `:port` included) and the preview suffix (`preview.suffix`, or
// `preview.<preview.domain>`), and says whether it is a preview host, something shaped like
// one with a bad id or port (§3.4 answers `404 no_such_sandbox`, like an unknown id), or any
// other name (§3.4: `/healthz` or `404 unknown_host`). Matching is ASCII case-insensitive on
// the whole name, one trailing dot is dropped, and the `:port` suffix is checked and then
// ignored. The id comes back canonical (upper case) through `Ulid::parse`, the one id
// parser. Pure functions: no allocation on the success path, safe from any thread.
#pragma once

#include "base/ulid.h"

#include <cstdint>
#include <optional>
#include <string_view>

namespace sandboxd::edge {

struct PreviewTarget {
  Ulid id;
  std::uint16_t port = 0;

  friend bool operator==(const PreviewTarget&, const PreviewTarget&) = default;
};

enum class HostKind : std::uint8_t {
  preview,      // "s-<id>-<port>.<suffix>": route lookup (§3.5)
  bad_preview,  // "s-*-*.<suffix>" with a bad id or port: 404 no_such_sandbox
  other,        // the bare suffix, IP literals, other names, deeper names under the suffix
};

struct HostMatch {
  HostKind kind = HostKind::other;
  PreviewTarget target;  // set when kind == preview
};

HostMatch classify_host(std::string_view host, std::string_view suffix);

// The target of a preview host, or nullopt for anything else (bad_preview included).
std::optional<PreviewTarget> parse_preview_host(std::string_view host, std::string_view suffix);

// The name part of a host for matching: without a valid `:port` and without one trailing
// dot; nullopt when the port suffix is not 1..65535 or the host is empty. Brackets of an IP
// literal stay. Case is kept; compare with `host_name_equals`.
std::optional<std::string_view> host_name(std::string_view host);

// `host` (as sent, with an optional port and trailing dot) names `name` (e.g.
// control.public_host), ASCII case-insensitively.
bool host_name_equals(std::string_view host, std::string_view name);

}  // namespace sandboxd::edge
