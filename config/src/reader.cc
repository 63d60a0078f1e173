#include "reader.h"

#include <algorithm>

namespace sandboxd::config::detail {
namespace {

std::string fold(std::string_view s) {
  std::string out = lower(s);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

std::string last_component(std::string_view path) {
  std::size_t dot = path.rfind('.');
  return std::string(dot == std::string_view::npos ? path : path.substr(dot + 1));
}

std::string parent_of(std::string_view path) {
  std::size_t dot = path.rfind('.');
  return std::string(dot == std::string_view::npos ? std::string_view() : path.substr(0, dot));
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

}  // namespace

std::string schema_path(std::string_view path) {
  std::string out;
  bool in_index = false;
  for (char c : path) {
    if (c == '[') {
      in_index = true;
      out += "[]";
    } else if (c == ']') {
      in_index = false;
    } else if (!in_index) {
      out += c;
    }
  }
  return out;
}

std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return std::string(parent) + "." + std::string(key);
}

std::optional<std::size_t> typo_distance(std::string_view typed, std::string_view candidate) {
  std::string a = fold(typed);
  std::string b = fold(candidate);
  std::size_t d = edit_distance(a, b);
  if (d <= 2 && d <= a.size() / 2) return d;
  return std::nullopt;
}

Reader::Reader(std::string file, const EnvLookup& env, Config& cfg)
    : file_(std::move(file)), env_(env), cfg_(cfg) {}

void Reader::error(Pos pos, const std::string& path, std::string message, std::string hint) {
  errors_.push_back(
      Diagnostic{file_, pos.line, pos.col, path, std::move(message), std::move(hint), false});
  failed_.insert(path);
}

void Reader::conflict(Pos pos, const std::string& path, std::string message, std::string hint) {
  errors_.push_back(
      Diagnostic{file_, pos.line, pos.col, path, std::move(message), std::move(hint), false});
}

void Reader::warning(Pos pos, const std::string& path, std::string message, std::string hint) {
  warnings_.push_back(
      Diagnostic{file_, pos.line, pos.col, path, std::move(message), std::move(hint), true});
}

void Reader::value_error(const Value& v, const Text& t, const ValueError& e) {
  if (!t.from_env) {
    error(v.pos, v.path, e.message, e.hint);
    return;
  }
  // The value came from the environment and may be a secret: say what was wrong with it
  // without repeating it, here or in the hint.
  std::string message = e.message;
  replace_all(message, quote(t.text), "a value from the environment");
  bool hint_quotes = !t.text.empty() && e.hint.find(t.text) != std::string::npos;
  error(v.pos, v.path, message, hint_quotes ? std::string() : e.hint);
}

void Reader::mark_present(const std::string& path, Pos pos) { present_.emplace_back(path, pos); }

bool Reader::present(const std::string& path) const {
  return std::any_of(present_.begin(), present_.end(),
                     [&](const auto& p) { return p.first == path; });
}

Pos Reader::where(const std::string& path,
                  std::initializer_list<std::string_view> fallbacks) const {
  auto find = [&](std::string_view p) -> std::optional<Pos> {
    for (const auto& [written, pos] : present_) {
      if (written == p) return pos;
    }
    return std::nullopt;
  };
  if (auto pos = find(path)) return *pos;
  for (std::string_view f : fallbacks) {
    if (auto pos = find(f)) return *pos;
  }
  for (std::string p = parent_of(path); !p.empty(); p = parent_of(p)) {
    if (auto pos = find(p)) return *pos;
  }
  return Pos{1, 1};
}

void Reader::declare(const std::string& path, bool leaf) {
  std::string s = schema_path(path);
  if (!schema_set_.insert(s).second) return;
  schema_.push_back(s);
  if (leaf) leaves_.push_back(s);
}

std::optional<Text> Reader::scalar(const Value& v, std::string_view expected) {
  if (v.node->kind == YamlNode::Kind::mapping || v.node->kind == YamlNode::Kind::sequence) {
    error(v.pos, v.path,
          "expected " + std::string(expected) + ", got " + std::string(describe(v.node)));
    return std::nullopt;
  }
  const std::string raw = v.node->kind == YamlNode::Kind::scalar ? v.node->text : std::string();
  Text t;
  if (raw.find('$') != std::string::npos) {
    auto expanded = interpolate(raw, env_);
    if (!expanded) {
      error(v.pos, v.path, expanded.error().message, expanded.error().hint);
      return std::nullopt;
    }
    t.text = std::move(expanded->text);
    t.from_env = expanded->used_env;
    if (t.from_env) cfg_.interpolated.insert(v.path);
  } else {
    t.text = raw;
  }
  if (has_control(t.text)) {
    error(v.pos, v.path, "must not contain control characters (such as a newline or tab)");
    return std::nullopt;
  }
  return t;
}

void Reader::unknown_key(Pos pos, std::string parent, std::string key,
                         std::vector<std::string> siblings) {
  unknown_.push_back(UnknownKey{pos, std::move(parent), std::move(key), std::move(siblings)});
}

void Reader::resolve_unknown_keys() {
  for (const UnknownKey& u : unknown_) {
    const std::string full = join_path(u.parent, u.key);
    // 1. A typo of a key that belongs here.
    std::optional<std::string> best;
    std::size_t best_d = 100;
    for (const std::string& sibling : u.siblings) {
      if (auto d = typo_distance(u.key, sibling); d && *d < best_d) {
        best = sibling;
        best_d = *d;
      }
    }
    if (best) {
      error(u.pos, full, "unknown key (did you mean " + join_path(u.parent, *best) + "?)");
      continue;
    }
    // 2. The right name in the wrong section.
    const std::string folded = fold(u.key);
    const std::string here = schema_path(u.parent);
    std::vector<std::string> elsewhere;
    for (const std::string& s : schema_) {
      if (s.find("[]") != std::string::npos || parent_of(s) == here) continue;
      if (fold(last_component(s)) == folded && elsewhere.size() < 3) elsewhere.push_back(s);
    }
    if (!elsewhere.empty()) {
      error(u.pos, full, "unknown key (did you mean " + join_or(elsewhere) + "?)");
      continue;
    }
    // 3. A dotted path written as one key ("idle.threshold: 5m").
    const std::string dotted = join_path(here, u.key);
    if (u.key.find('.') != std::string::npos && schema_set_.count(dotted) > 0) {
      std::string first = u.key.substr(0, u.key.find('.'));
      error(u.pos, full, "unknown key (did you mean " + dotted + "?)",
            "keys are nested: write \"" + first + ":\" and the rest indented under it");
      continue;
    }
    std::string hint;
    if (!u.siblings.empty()) {
      hint = "known keys here: ";
      for (std::size_t i = 0; i < u.siblings.size(); ++i) {
        if (i > 0) hint += ", ";
        hint += u.siblings[i];
      }
    }
    error(u.pos, full, "unknown key", hint);
  }
  unknown_.clear();
}

Section::Section(Reader& r, const YamlNode* node, Pos pos, std::string path)
    : r_(r), path_(std::move(path)), pos_(pos) {
  if (node == nullptr || node->kind == YamlNode::Kind::null) return;
  if (node->kind != YamlNode::Kind::mapping) {
    r_.error(pos_, path_, "expected a mapping of keys, got " + std::string(describe(node)));
    return;
  }
  exists_ = true;
  std::vector<std::pair<std::string, Pos>> seen;
  for (const auto& [key, value] : node->entries) {
    if (key->kind != YamlNode::Kind::scalar) {
      r_.error(key->pos, path_, "keys must be plain strings, got " + std::string(describe(key)));
      continue;
    }
    auto first =
        std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == key->text; });
    std::string child = join_path(path_, key->text);
    if (first != seen.end()) {
      r_.error(key->pos, child,
               "duplicate key (first set on line " + std::to_string(first->second.line) + ")");
      continue;
    }
    seen.emplace_back(key->text, key->pos);
    entries_.emplace_back(key, value);
    r_.mark_present(child, key->pos);
  }
  taken_.assign(entries_.size(), false);
}

Section::Section(Reader& r, const std::optional<Value>& v)
    : Section(r, v ? v->node : nullptr, v ? v->pos : Pos{}, v ? v->path : std::string()) {}

std::optional<Value> Section::take(std::string_view key, bool leaf) {
  std::string child = join_path(path_, key);
  r_.declare(child, leaf);
  if (std::find(declared_.begin(), declared_.end(), key) == declared_.end()) {
    declared_.emplace_back(key);
  }
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].first->text != key) continue;
    taken_[i] = true;
    const YamlNode* value = entries_[i].second;
    Pos pos = value->kind == YamlNode::Kind::null ? entries_[i].first->pos : value->pos;
    return Value{value, pos, child};
  }
  return std::nullopt;
}

void Section::finish() {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (taken_[i]) continue;
    const YamlNode* key = entries_[i].first;
    r_.unknown_key(key->pos, path_, key->text, declared_);
  }
}

void read_section(Section& parent, std::string_view key, const std::function<void(Section&)>& fn) {
  std::optional<Value> v = parent.take(key, false);
  Section s(parent.reader(), v ? v->node : nullptr, v ? v->pos : Pos{},
            join_path(parent.path(), key));
  fn(s);
  s.finish();
}

std::optional<std::vector<Value>> list_items(Reader& r, const Value& v) {
  std::vector<Value> out;
  if (v.node->kind == YamlNode::Kind::null) return out;
  if (v.node->kind != YamlNode::Kind::sequence) {
    r.error(v.pos, v.path, "expected a list, got " + std::string(describe(v.node)));
    return std::nullopt;
  }
  for (std::size_t i = 0; i < v.node->items.size(); ++i) {
    const YamlNode* item = v.node->items[i];
    Pos pos = item->kind == YamlNode::Kind::null ? v.pos : item->pos;
    out.push_back(Value{item, pos, v.path + "[" + std::to_string(i) + "]"});
  }
  return out;
}

void read_items(Section& s, std::string_view key,
                const std::function<void(Section& item, std::size_t index)>& fn) {
  std::optional<Value> v = s.take(key, false);
  std::vector<Value> items;
  if (v) {
    auto listed = list_items(s.reader(), *v);
    if (listed) items = std::move(*listed);
  }
  if (items.empty()) {
    // Declares the item keys for the schema; an absent item reads nothing.
    Section none(s.reader(), nullptr, Pos{}, join_path(s.path(), key) + "[0]");
    fn(none, 0);
    return;
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    Value& item = items[i];
    s.reader().mark_present(item.path, item.pos);
    Section one(s.reader(), item);
    if (item.node->kind == YamlNode::Kind::null) {
      s.reader().error(item.pos, item.path, "expected a mapping of keys, got an empty value");
    }
    fn(one, i);
    one.finish();
  }
}

void read_string(Section& s, std::string_view key, std::string& out) {
  read(s, key, out, "a string",
       [](std::string_view t) -> ValueResult<std::string> { return std::string(t); });
}

void read_bool(Section& s, std::string_view key, bool& out) {
  read(s, key, out, "true or false", parse_bool);
}

void read_duration(Section& s, std::string_view key, milliseconds& out, milliseconds min,
                   milliseconds max) {
  read(s, key, out, "a duration like 30s", [&](std::string_view t) -> ValueResult<milliseconds> {
    auto d = parse_duration(t);
    if (!d) return d;
    if (*d < min || *d > max) {
      std::string want;
      if (max == milliseconds::max()) {
        want = "must be at least " + format_duration(min);
      } else if (min == milliseconds(0)) {
        want = "must be at most " + format_duration(max);
      } else {
        want = "must be between " + format_duration(min) + " and " + format_duration(max);
      }
      return ValueError{want + ", got " + std::string(t), ""};
    }
    return d;
  });
}

void read_size(Section& s, std::string_view key, Bytes& out, Bytes max) {
  read(s, key, out, "a size like 64KiB", [&](std::string_view t) -> ValueResult<Bytes> {
    auto b = parse_size(t);
    if (b && *b > max) {
      return ValueError{"must be at most " + format_size(max) + ", got " + std::string(t), ""};
    }
    return b;
  });
}

void read_u32(Section& s, std::string_view key, std::uint32_t& out, std::uint32_t min,
              std::uint32_t max) {
  read(s, key, out, "an integer", [&](std::string_view t) -> ValueResult<std::uint32_t> {
    auto n = parse_integer(t, min, max);
    if (!n) return n.error();
    return static_cast<std::uint32_t>(*n);
  });
}

void read_host_port(Section& s, std::string_view key, HostPort& out) {
  if (read(s, key, out, "host:port like 127.0.0.1:9090", parse_host_port)) out.explicit_ = true;
}

void read_url(Section& s, std::string_view key, std::string& out, bool allow_empty) {
  read(s, key, out, "a URL", [&](std::string_view t) -> ValueResult<std::string> {
    if (t.empty() && allow_empty) return std::string();
    return parse_url(t);
  });
}

void read_hostname(Section& s, std::string_view key, std::string& out, bool allow_empty) {
  read(s, key, out, "a host name", [&](std::string_view t) -> ValueResult<std::string> {
    if (t.empty() && allow_empty) return std::string();
    return parse_hostname(t);
  });
}

void read_secret(Section& s, std::string_view key, Secret& out) {
  read(s, key, out, "a string",
       [](std::string_view t) -> ValueResult<Secret> { return Secret(std::string(t)); });
}

std::string unknown_enum_message(std::string_view noun, std::string_view got,
                                 const std::vector<std::string_view>& names) {
  std::string message = "unknown " + std::string(noun) + " " + quote(got);
  std::optional<std::string_view> best;
  std::size_t best_d = 100;
  for (std::string_view n : names) {
    if (n.empty()) continue;
    if (auto d = typo_distance(got, n); d && *d < best_d) {
      best = n;
      best_d = *d;
    }
  }
  if (best) return message + " (did you mean " + quote(*best) + "?)";
  message += " (expected one of ";
  bool first = true;
  for (std::string_view n : names) {
    if (n.empty()) continue;
    if (!first) message += ", ";
    message += n;
    first = false;
  }
  return message + ")";
}

}  // namespace sandboxd::config::detail
