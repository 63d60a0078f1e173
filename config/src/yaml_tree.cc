#include "yaml_tree.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <map>
#include <sstream>

namespace sandboxd::config::detail {
namespace {

Pos to_pos(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0 || m.column < 0) return Pos{1, 1};
  return Pos{m.line + 1, m.column + 1};
}

// yaml-cpp quotes the offending byte in some messages; keep the report printable.
std::string printable(const std::string& msg) {
  std::string out;
  for (char ch : msg) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

class TreeBuilder final : public YAML::EventHandler {
 public:
  explicit TreeBuilder(YamlDocument& doc) : doc_(doc) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add(make(YamlNode::Kind::null, mark, anchor));
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    add(it != anchors_.end() ? it->second : make(YamlNode::Kind::null, mark, 0));
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    YamlNode* n = make(YamlNode::Kind::scalar, mark, anchor);
    n->text = value;
    add(n);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(make(YamlNode::Kind::sequence, mark, anchor));
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(make(YamlNode::Kind::mapping, mark, anchor));
  }
  void OnMapEnd() override { close(); }

 private:
  struct Open {
    YamlNode* node;
    const YamlNode* pending_key;
  };

  YamlNode* make(YamlNode::Kind kind, const YAML::Mark& mark, YAML::anchor_t anchor) {
    doc_.arena.push_back(std::make_unique<YamlNode>());
    YamlNode* n = doc_.arena.back().get();
    n->kind = kind;
    n->pos = to_pos(mark);
    if (anchor != 0) anchors_[anchor] = n;
    return n;
  }

  void add(const YamlNode* n) {
    if (open_.empty()) {
      if (doc_.root == nullptr) doc_.root = n;
      return;
    }
    Open& top = open_.back();
    if (top.node->kind == YamlNode::Kind::sequence) {
      top.node->items.push_back(n);
    } else if (top.pending_key == nullptr) {
      top.pending_key = n;
    } else {
      top.node->entries.emplace_back(top.pending_key, n);
      top.pending_key = nullptr;
    }
  }

  void open(YamlNode* n) {
    add(n);
    open_.push_back(Open{n, nullptr});
  }

  void close() {
    if (!open_.empty()) open_.pop_back();
  }

  YamlDocument& doc_;
  std::vector<Open> open_;
  std::map<YAML::anchor_t, const YamlNode*> anchors_;
};

}  // namespace

YamlParse parse_yaml(std::string_view text) {
  YamlParse out;
  std::istringstream in{std::string(text)};
  try {
    YAML::Parser parser(in);
    TreeBuilder builder(out.doc);
    if (!parser.HandleNextDocument(builder)) return out;
    YamlDocument second;
    TreeBuilder second_builder(second);
    if (parser.HandleNextDocument(second_builder)) {
      Pos pos = second.root != nullptr ? second.root->pos : Pos{1, 1};
      out.error = {pos, "only one YAML document is allowed"};
    }
  } catch (const YAML::DeepRecursion& e) {
    out.error = {to_pos(e.mark), "the document is nested too deeply"};
  } catch (const YAML::Exception& e) {
    out.error = {to_pos(e.mark), "YAML syntax error: " + printable(e.msg)};
  } catch (const std::exception& e) {
    out.error = {Pos{1, 1}, "YAML syntax error: " + printable(e.what())};
  }
  return out;
}

std::string_view describe(const YamlNode* node) {
  if (node == nullptr) return "nothing";
  switch (node->kind) {
    case YamlNode::Kind::null:
      return "an empty value";
    case YamlNode::Kind::scalar:
      return "a scalar";
    case YamlNode::Kind::sequence:
      return "a list";
    case YamlNode::Kind::mapping:
      return "a mapping";
  }
  return "?";
}

}  // namespace sandboxd::config::detail
