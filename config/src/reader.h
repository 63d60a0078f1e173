// The machinery that walks a YAML tree into a `Config` while collecting diagnostics.
//
// `Reader` holds the problems found so far, where each key was written (for cross-key
// checks that must point somewhere) and the schema: every key the walk declares, whether
// or not the file sets it. `Section` is one mapping being read: `take(key)` both declares the
// key and returns its value, and `finish()` reports whatever was written but never taken.
// The typed `read_*` helpers parse a value and store it only when it is valid, so a failed
// key keeps its default and later checks see sane values.
#pragma once

#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/load.h"
#include "config/values.h"
#include "text.h"
#include "yaml_tree.h"

namespace sandboxd::config::detail {

// A value in the file: its node, where to point at it, and its key path.
struct Value {
  const YamlNode* node = nullptr;  // never nullptr
  Pos pos;                         // the value, or its key when the value is empty
  std::string path;
};

struct Text {
  std::string text;
  bool from_env = false;  // interpolated: a secret, never echoed
};

class Reader {
 public:
  Reader(std::string file, const EnvLookup& env, Config& cfg);

  Config& cfg() { return cfg_; }

  // A problem with the value at `path`; later checks that depend on it are skipped.
  void error(Pos pos, const std::string& path, std::string message, std::string hint = {});
  // A problem between keys: it does not make the values involved unusable.
  void conflict(Pos pos, const std::string& path, std::string message, std::string hint = {});
  void warning(Pos pos, const std::string& path, std::string message, std::string hint = {});
  // A parse failure of `v`; the echo of an interpolated value is taken out.
  void value_error(const Value& v, const Text& t, const ValueError& e);

  void mark_present(const std::string& path, Pos pos);
  bool present(const std::string& path) const;
  // Where a problem about `path` should point: `path` if written, else the first written
  // fallback, else the closest written parent of `path`, else 1:1.
  Pos where(const std::string& path, std::initializer_list<std::string_view> fallbacks = {}) const;
  // True when a value error was reported at `path`: checks built on it would only add noise.
  bool failed(const std::string& path) const { return failed_.count(path) > 0; }

  void declare(const std::string& path, bool leaf);
  const std::vector<std::string>& leaves() const { return leaves_; }

  // The interpolated text of a scalar value; reports and gives nullopt for anything else.
  // `expected` completes "expected ..., got a list".
  std::optional<Text> scalar(const Value& v, std::string_view expected);

  void unknown_key(Pos pos, std::string parent, std::string key, std::vector<std::string> siblings);
  // Turns the unknown keys into errors; the suggestions need the whole schema.
  void resolve_unknown_keys();

  std::vector<Diagnostic> take_errors() { return std::move(errors_); }
  std::vector<Diagnostic> take_warnings() { return std::move(warnings_); }

 private:
  struct UnknownKey {
    Pos pos;
    std::string parent;
    std::string key;
    std::vector<std::string> siblings;
  };

  std::string file_;
  const EnvLookup& env_;
  Config& cfg_;
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
  std::vector<std::pair<std::string, Pos>> present_;
  std::set<std::string> failed_;
  std::vector<std::string> schema_;  // leaves and sections, without indices
  std::set<std::string> schema_set_;
  std::vector<std::string> leaves_;
  std::vector<UnknownKey> unknown_;
};

// "auth.tokens[3].name" -> "auth.tokens[].name"
std::string schema_path(std::string_view path);

// "", "log" + "level" -> "log.level"
std::string join_path(std::string_view parent, std::string_view key);

// Whether `typed` is a plausible typo of `candidate`: Damerau-Levenshtein distance of at
// most 2, and at most half the length of what was typed, after folding case and '-'/'_'.
std::optional<std::size_t> typo_distance(std::string_view typed, std::string_view candidate);

class Section {
 public:
  // `node` may be nullptr (not written) or anything; what is not a mapping is reported.
  Section(Reader& r, const YamlNode* node, Pos pos, std::string path);
  Section(Reader& r, const std::optional<Value>& v);

  Reader& reader() { return r_; }
  const std::string& path() const { return path_; }
  bool exists() const { return exists_; }
  Pos pos() const { return pos_; }

  // Declares `key` and returns its value when written.
  std::optional<Value> take(std::string_view key, bool leaf = true);
  // Reports the keys written here that no `take` asked for.
  void finish();

 private:
  Reader& r_;
  std::string path_;
  Pos pos_;
  bool exists_ = false;
  std::vector<std::pair<const YamlNode*, const YamlNode*>> entries_;  // first of each key
  std::vector<bool> taken_;
  std::vector<std::string> declared_;
};

// Reads a sub-section: declares it, runs `fn` on it (also when absent, so that its keys are
// declared) and reports its unknown keys.
void read_section(Section& parent, std::string_view key, const std::function<void(Section&)>& fn);

// Parses one scalar with `parse` (a `ValueResult<T>(std::string_view)`) into `out`.
template <class T, class Parse>
bool read_value(Reader& r, const Value& v, T& out, std::string_view expected, Parse parse) {
  std::optional<Text> t = r.scalar(v, expected);
  if (!t) return false;
  auto res = parse(std::string_view(t->text));
  if (!res) {
    r.value_error(v, *t, res.error());
    return false;
  }
  out = std::move(*res);
  return true;
}

template <class T, class Parse>
bool read(Section& s, std::string_view key, T& out, std::string_view expected, Parse parse) {
  std::optional<Value> v = s.take(key);
  if (!v) return false;
  return read_value(s.reader(), *v, out, expected, parse);
}

// The items of a list value; nullopt (after reporting) when it is not a list. An empty
// value is an empty list.
std::optional<std::vector<Value>> list_items(Reader& r, const Value& v);

// A list of scalars, each parsed with `parse`.
template <class T, class Parse>
void read_list(Section& s, std::string_view key, std::vector<T>& out, std::string_view expected,
               Parse parse) {
  std::optional<Value> v = s.take(key);
  if (!v) return;
  auto items = list_items(s.reader(), *v);
  if (!items) return;
  std::vector<T> parsed;
  bool ok = true;
  for (const Value& item : *items) {
    T one{};
    if (read_value(s.reader(), item, one, expected, parse)) {
      parsed.push_back(std::move(one));
    } else {
      ok = false;
    }
  }
  if (ok) out = std::move(parsed);
}

// A list of mappings; `fn` reads item i. When the list is empty or absent, `fn` still runs
// once on an absent item so that the item keys are declared.
void read_items(Section& s, std::string_view key,
                const std::function<void(Section& item, std::size_t index)>& fn);

void read_string(Section& s, std::string_view key, std::string& out);
void read_bool(Section& s, std::string_view key, bool& out);
void read_duration(Section& s, std::string_view key, milliseconds& out,
                   milliseconds min = milliseconds(0), milliseconds max = milliseconds::max());
void read_size(Section& s, std::string_view key, Bytes& out,
               Bytes max = std::numeric_limits<Bytes>::max());
void read_u32(Section& s, std::string_view key, std::uint32_t& out, std::uint32_t min = 0,
              std::uint32_t max = std::numeric_limits<std::uint32_t>::max());
void read_host_port(Section& s, std::string_view key, HostPort& out);
void read_url(Section& s, std::string_view key, std::string& out, bool allow_empty);
// A host name, lower-cased; "" allowed when `allow_empty`.
void read_hostname(Section& s, std::string_view key, std::string& out, bool allow_empty);
void read_secret(Section& s, std::string_view key, Secret& out);

// An enum from its table; `noun` names the thing in "unknown provider "x"".
template <class E, std::size_t N>
void read_enum(Section& s, std::string_view key, E& out,
               const std::pair<std::string_view, E> (&table)[N], std::string_view noun);

// The message for an enum value not in `names` (names may include "" which is never
// suggested).
std::string unknown_enum_message(std::string_view noun, std::string_view got,
                                 const std::vector<std::string_view>& names);

template <class E, std::size_t N>
void read_enum(Section& s, std::string_view key, E& out,
               const std::pair<std::string_view, E> (&table)[N], std::string_view noun) {
  std::vector<std::string_view> names;
  for (const auto& entry : table) names.push_back(entry.first);
  std::string expected = "one of ";
  for (std::string_view n : names) {
    if (n.empty()) continue;
    if (expected.size() > 7) expected += ", ";
    expected += n;
  }
  read(s, key, out, expected, [&](std::string_view text) -> ValueResult<E> {
    for (const auto& [name, value] : table) {
      if (name == text) return value;
    }
    return ValueError{unknown_enum_message(noun, text, names), ""};
  });
}

}  // namespace sandboxd::config::detail
