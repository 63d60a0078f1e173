#include "config/load.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "reader.h"
#include "schema.h"
#include "yaml_tree.h"

namespace sandboxd::config {
namespace {

// Far beyond any real config; keeps a mistaken -c /dev/zero or a log file from eating memory.
constexpr std::uintmax_t kMaxFileBytes = 16 * 1024 * 1024;

void sort_by_position(std::vector<Diagnostic>& d) {
  std::stable_sort(d.begin(), d.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.line < b.line || (a.line == b.line && a.col < b.col);
  });
}

Diagnostic file_error(const std::string& path, std::string message) {
  return Diagnostic{path, 0, 0, "", std::move(message), "", false};
}

}  // namespace

std::string Diagnostic::str() const {
  std::string out = file;
  if (line > 0) {
    if (!out.empty()) out += ":";
    out += std::to_string(line) + ":" + std::to_string(col);
  }
  if (!out.empty()) out += ": ";
  if (!key_path.empty()) out += key_path + ": ";
  out += message;
  if (!hint.empty()) out += "\n  hint: " + hint;
  return out;
}

LoadResult parse_config(std::string_view yaml_text, std::string file_name, const EnvLookup& env) {
  LoadResult out;
  out.file = file_name;
  Config cfg;
  detail::YamlParse parsed = detail::parse_yaml(yaml_text);
  if (parsed.error) {
    // The tree stops where the syntax broke; checking half a document would only report
    // problems that are not there.
    auto [pos, message] = *parsed.error;
    out.errors.push_back(Diagnostic{file_name, pos.line, pos.col, "", message, "", false});
    return out;
  }
  const detail::YamlNode* root = parsed.doc.root;
  if (root != nullptr && root->kind != detail::YamlNode::Kind::null &&
      root->kind != detail::YamlNode::Kind::mapping) {
    out.errors.push_back(Diagnostic{
        file_name, root->pos.line, root->pos.col, "",
        "the top level must be a mapping of keys, got " + std::string(detail::describe(root)),
        "start with a key such as \"preview:\"", false});
    return out;
  }
  detail::Reader reader(file_name, env, cfg);
  detail::read_document(reader, root);
  reader.resolve_unknown_keys();
  detail::check_document(reader);
  out.errors = reader.take_errors();
  out.warnings = reader.take_warnings();
  sort_by_position(out.errors);
  sort_by_position(out.warnings);
  if (out.errors.empty()) out.config = std::move(cfg);
  return out;
}

LoadResult load_config_file(const std::string& path, const EnvLookup& env) {
  LoadResult out;
  out.file = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    out.errors.push_back(file_error(path, "cannot read the config file: it is a directory"));
    out.unreadable = true;
    return out;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out.errors.push_back(
        file_error(path, std::string("cannot read the config file: ") + std::strerror(errno)));
    out.unreadable = true;
    return out;
  }
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) {
      out.errors.push_back(file_error(path, "the config file is larger than 16MiB"));
      return out;
    }
  }
  if (in.bad()) {
    out.errors.push_back(
        file_error(path, std::string("cannot read the config file: ") + std::strerror(errno)));
    out.unreadable = true;
    return out;
  }
  return parse_config(text, path, env);
}

std::vector<std::string> default_config_candidates() {
  return {"/etc/sandboxd/sandboxd.yaml", "sandboxd.yaml"};
}

std::string find_config_path(const std::optional<std::string>& flag, const EnvLookup& env,
                             const std::vector<std::string>& candidates) {
  if (flag) return *flag;
  if (env) {
    if (auto named = env("SANDBOXD_CONFIG"); named && !named->empty()) return *named;
  }
  for (const std::string& candidate : candidates) {
    std::error_code ec;
    if (std::filesystem::exists(candidate, ec)) return candidate;
  }
  return "";
}

std::vector<std::string> known_key_paths() {
  Config cfg;
  EnvLookup none = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  detail::Reader reader("", none, cfg);
  detail::read_document(reader, nullptr);
  return reader.leaves();
}

}  // namespace sandboxd::config
