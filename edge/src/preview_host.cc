#include "edge/preview_host.h"

#include "http_syntax.h"

namespace sandboxd::edge {

namespace {

using detail::iequals;

std::string_view drop_trailing_dot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return name;
}

// port = %x31-39 0*4DIGIT, 1..65535 (no leading zero, unlike a Host port).
std::optional<std::uint16_t> parse_preview_port(std::string_view text) {
  if (text.empty() || text.size() > 5 || text.front() == '0') return std::nullopt;
  return detail::parse_port(text);
}

}  // namespace

std::optional<std::string_view> host_name(std::string_view host) {
  std::string_view name = host;
  std::size_t colon = std::string_view::npos;
  if (!host.empty() && host.front() == '[') {
    std::size_t close = host.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') return std::nullopt;
      colon = close + 1;
    }
  } else {
    colon = host.rfind(':');
  }
  if (colon != std::string_view::npos) {
    if (!detail::parse_port(host.substr(colon + 1))) return std::nullopt;
    name = host.substr(0, colon);
  }
  name = drop_trailing_dot(name);
  if (name.empty()) return std::nullopt;
  return name;
}

bool host_name_equals(std::string_view host, std::string_view name) {
  auto h = host_name(host);
  return h && iequals(*h, drop_trailing_dot(name));
}

HostMatch classify_host(std::string_view host, std::string_view suffix) {
  HostMatch match;
  suffix = drop_trailing_dot(suffix);
  auto name = host_name(host);
  if (!name || suffix.empty() || name->size() < suffix.size() + 2) return match;
  const std::string_view tail = name->substr(name->size() - suffix.size());
  if (!iequals(tail, suffix) || (*name)[name->size() - suffix.size() - 1] != '.') return match;
  const std::string_view label = name->substr(0, name->size() - suffix.size() - 1);
  // Exactly one label before the suffix: "x.s-<id>-3000.<suffix>" is no preview host.
  if (label.find('.') != std::string_view::npos) return match;
  if (!detail::istarts_with(label, "s-")) return match;
  const std::size_t dash = label.rfind('-');
  if (dash < 2) return match;  // "s-" then no second dash: not even preview-shaped
  match.kind = HostKind::bad_preview;
  auto port = parse_preview_port(label.substr(dash + 1));
  if (!port) return match;
  auto id = Ulid::parse(label.substr(2, dash - 2));
  if (!id) return match;
  match.kind = HostKind::preview;
  match.target = PreviewTarget{*id, *port};
  return match;
}

std::optional<PreviewTarget> parse_preview_host(std::string_view host, std::string_view suffix) {
  HostMatch match = classify_host(host, suffix);
  if (match.kind != HostKind::preview) return std::nullopt;
  return match.target;
}

}  // namespace sandboxd::edge
