#include "base/json.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>

#include <charconv>
#include <optional>
#include <cstdint>
#include <string>

namespace sandboxd {

namespace json = boost::json;

namespace {

class Parser {
 public:
  Parser(std::string_view text, const JsonLimits& limits) : s_(text), limits_(limits) {}

  Result<json::value> run() {
    skip_ws();
    json::value v;
    if (!value(v, 1)) return fail();
    skip_ws();
    if (pos_ != s_.size()) {
      error_ = "unexpected data after the JSON value";
      return fail();
    }
    return v;
  }

 private:
  Error fail() const {
    return Error{Errc::invalid_argument,
                 "invalid JSON at byte " + std::to_string(error_pos()) + ": " + error_};
  }
  std::size_t error_pos() const { return error_at_ ? *error_at_ : pos_; }

  bool err(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }
  bool err_at(std::size_t at, std::string message) {
    if (error_.empty()) {
      error_at_ = at;
      error_ = std::move(message);
    }
    return false;
  }

  bool eof() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }

  void skip_ws() {
    while (!eof() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) {
      ++pos_;
    }
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return err("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool value(json::value& out, std::size_t depth) {
    if (eof()) return err("unexpected end of input");
    switch (peek()) {
      case '{': return object(out, depth);
      case '[': return array(out, depth);
      case '"': {
        std::string str;
        if (!string(str)) return false;
        out = json::string(str);
        return true;
      }
      case 't': out = true; return literal("true");
      case 'f': out = false; return literal("false");
      case 'n': out = nullptr; return literal("null");
      default: return number(out);
    }
  }

  bool object(json::value& out, std::size_t depth) {
    if (depth > limits_.max_depth) {
      return err("nesting deeper than " + std::to_string(limits_.max_depth));
    }
    ++pos_;  // '{'
    json::object obj;
    skip_ws();
    if (!eof() && peek() == '}') {
      ++pos_;
      out = std::move(obj);
      return true;
    }
    for (;;) {
      skip_ws();
      if (eof()) return err("unexpected end of input");
      if (peek() != '"') return err("expected a string key");
      std::size_t key_at = pos_;
      std::string key;
      if (!string(key)) return false;
      if (obj.contains(key)) return err_at(key_at, "duplicate key \"" + key + "\"");
      skip_ws();
      if (eof() || peek() != ':') return err("expected ':'");
      ++pos_;
      skip_ws();
      json::value v;
      if (!value(v, depth + 1)) return false;
      obj.emplace(key, std::move(v));
      skip_ws();
      if (eof()) return err("unexpected end of input");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        out = std::move(obj);
        return true;
      }
      return err("expected ',' or '}'");
    }
  }

  bool array(json::value& out, std::size_t depth) {
    if (depth > limits_.max_depth) {
      return err("nesting deeper than " + std::to_string(limits_.max_depth));
    }
    ++pos_;  // '['
    json::array arr;
    skip_ws();
    if (!eof() && peek() == ']') {
      ++pos_;
      out = std::move(arr);
      return true;
    }
    for (;;) {
      skip_ws();
      json::value v;
      if (!value(v, depth + 1)) return false;
      arr.push_back(std::move(v));
      skip_ws();
      if (eof()) return err("unexpected end of input");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        out = std::move(arr);
        return true;
      }
      return err("expected ',' or ']'");
    }
  }

  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool hex4(std::uint32_t& out) {
    if (s_.size() - pos_ < 4) return err("truncated \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      int d = hex_digit(s_[pos_ + static_cast<std::size_t>(i)]);
      if (d < 0) return err("invalid \\u escape");
      out = (out << 4) | static_cast<std::uint32_t>(d);
    }
    pos_ += 4;
    return true;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // One raw UTF-8 sequence starting at pos_, validated (no overlongs, no surrogates).
  bool utf8(std::string& out) {
    auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s_[pos_ + k]); };
    std::uint8_t c = byte(0);
    std::size_t n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1Fu; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0Fu; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07u; }
    else return err("invalid UTF-8");
    if (s_.size() - pos_ < n) return err("invalid UTF-8");
    for (std::size_t k = 1; k < n; ++k) {
      if ((byte(k) & 0xC0) != 0x80) return err("invalid UTF-8");
      cp = (cp << 6) | (byte(k) & 0x3Fu);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return err("invalid UTF-8");
    }
    out.append(s_.substr(pos_, n));
    pos_ += n;
    return true;
  }

  bool string(std::string& out) {
    ++pos_;  // opening quote
    for (;;) {
      if (eof()) return err("unterminated string");
      char c = peek();
      auto u = static_cast<std::uint8_t>(c);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (u < 0x20) return err("control character in string");
      if (u >= 0x80) {
        if (!utf8(out)) return false;
        continue;
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (eof()) return err("unterminated string");
      char e = peek();
      ++pos_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            std::uint32_t low;
            if (s_.substr(pos_, 2) != "\\u") return err("unpaired surrogate");
            pos_ += 2;
            if (!hex4(low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return err("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return err("unpaired surrogate");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          return err("invalid escape");
      }
    }
  }

  bool number(json::value& out) {
    std::size_t start = pos_;
    auto digits = [&] {
      std::size_t from = pos_;
      while (!eof() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ > from;
    };
    if (!eof() && peek() == '-') ++pos_;
    if (eof()) return err("unexpected end of input");
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      digits();
    } else {
      return err_at(start, "unexpected character");
    }
    bool integral = true;
    if (!eof() && peek() == '.') {
      integral = false;
      ++pos_;
      if (!digits()) return err("expected digits after '.'");
    }
    if (!eof() && (peek() == 'e' || peek() == 'E')) {
      integral = false;
      ++pos_;
      if (!eof() && (peek() == '+' || peek() == '-')) ++pos_;
      if (!digits()) return err("expected digits in the exponent");
    }
    std::string_view text = s_.substr(start, pos_ - start);
    const char* first = text.data();
    const char* last = first + text.size();
    if (integral) {
      std::int64_t i;
      if (auto r = std::from_chars(first, last, i); r.ec == std::errc() && r.ptr == last) {
        out = i;
        return true;
      }
      std::uint64_t u;
      if (auto r = std::from_chars(first, last, u); r.ec == std::errc() && r.ptr == last) {
        out = u;
        return true;
      }
    }
    double d;
    auto r = std::from_chars(first, last, d);
    if (r.ec != std::errc() || r.ptr != last) return err_at(start, "number out of range");
    out = d;
    return true;
  }

  std::string_view s_;
  JsonLimits limits_;
  std::size_t pos_ = 0;
  std::string error_;
  std::optional<std::size_t> error_at_;
};

}  // namespace

Result<json::value> parse_json(std::string_view text, const JsonLimits& limits) {
  return Parser(text, limits).run();
}

Result<json::object> parse_json_object(std::string_view text, const JsonLimits& limits) {
  auto v = parse_json(text, limits);
  if (!v) return v.error();
  if (!v->is_object()) {
    return Error{Errc::invalid_argument, "request body must be a JSON object"};
  }
  return std::move(v->get_object());
}

}  // namespace sandboxd
