// A YAML document as a tree that remembers where everything was written.
//
// yaml-cpp's `YAML::Node` merges duplicate keys silently and drops the marks of scalars we
// need for diagnostics, so the loader builds its own tree from parser events instead. Nodes
// live in one arena owned by `YamlDocument` and point at each other with raw pointers: an
// alias is just a second pointer to its anchor (even from inside it), and freeing a deeply
// nested tree needs no recursion.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandboxd::config::detail {

struct Pos {
  int line = 0;  // 1-based; 0 = unknown
  int col = 0;   // 1-based
};

struct YamlNode {
  enum class Kind { null, scalar, sequence, mapping };

  Kind kind = Kind::null;
  Pos pos;
  std::string text;                                                  // scalar
  std::vector<const YamlNode*> items;                                // sequence
  std::vector<std::pair<const YamlNode*, const YamlNode*>> entries;  // mapping, in file order
};

struct YamlDocument {
  std::vector<std::unique_ptr<YamlNode>> arena;
  const YamlNode* root = nullptr;  // nullptr for an empty document
};

struct YamlParse {
  YamlDocument doc;
  std::optional<std::pair<Pos, std::string>> error;  // a syntax error; doc is then partial
};

// Never throws.
YamlParse parse_yaml(std::string_view text);

// "a mapping", "a list", "a scalar", "nothing": for "expected X, got Y" messages.
std::string_view describe(const YamlNode* node);

}  // namespace sandboxd::config::detail
