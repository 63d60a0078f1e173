#include "runtimed/paths.h"

#include <vector>

namespace sandboxd::runtimed {

namespace {

constexpr std::size_t kMaxPath = 4096;
constexpr std::size_t kMaxComponent = 255;

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// Joins components, resolving `.` and `..` lexically; false when `..` climbs above the
// start.
bool lexical_join(std::vector<std::string>& out, std::string_view path) {
  for (std::string_view part : split(path)) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (out.empty()) return false;
      out.pop_back();
      continue;
    }
    out.emplace_back(part);
  }
  return true;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out.empty() ? "." : out;
}

}  // namespace

Result<std::string> normalize_relative_path(std::string_view path, std::string_view field) {
  auto fail = [&](std::string_view rule) {
    return Error{Errc::invalid_argument, std::string(field) + ": " + std::string(rule)};
  };
  if (path.empty()) return fail("must not be empty");
  if (path.size() > kMaxPath) return fail("longer than 4096 bytes");
  if (path.find('\0') != std::string_view::npos) return fail("contains a NUL byte");
  if (path.front() == '/') return fail("must be relative to the workspace, not absolute");
  std::vector<std::string> parts;
  for (std::string_view part : split(path)) {
    if (part.size() > kMaxComponent) return fail("has a component longer than 255 bytes");
    if (part == "..") return fail("must not contain a '..' component");
    if (part.empty() || part == ".") continue;
    parts.emplace_back(part);
  }
  return join(parts);
}

std::string workspace_relative(std::string_view path, std::string_view workspace_root,
                               std::string_view cwd) {
  std::vector<std::string> parts;
  if (!path.empty() && path.front() == '/') {
    std::string root(workspace_root);
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    if (path.size() <= root.size() || path.substr(0, root.size()) != root ||
        path[root.size()] != '/') {
      return std::string(path);
    }
    if (!lexical_join(parts, path.substr(root.size() + 1))) return std::string(path);
    return join(parts);
  }
  if (cwd != "." && !lexical_join(parts, cwd)) return std::string(path);
  if (!lexical_join(parts, path)) return std::string(path);
  return join(parts);
}

}  // namespace sandboxd::runtimed
