// Structured logging: one event per line, a constant message plus key=value fields.
//
//   constexpr log::Logger kLog{"store"};
//   kLog.info("migration applied", {{"version", 3}, {"ms", 12}});
//
// text:  2026-11-22T15:02:07.123Z info  store: migration applied version=3 ms=12
// json:  {"ts":"2026-11-22T15:02:07.123Z","level":"info","module":"store","msg":"...","version":3}
//
// The sink is process-wide and thread-safe; each event is written with one write(2), so
// lines from different threads never interleave. Messages are constants: anything that
// varies goes in a field. Never put a secret in a field. Level and format can change at any
// time (SIGHUP reload).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace sandboxd::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };
enum class Format { text, json };

// One key=value pair; numbers and booleans stay unquoted in JSON.
struct Field {
  enum class Kind { string, number, boolean };

  std::string_view key;
  std::string value;
  Kind kind = Kind::string;

  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), kind(Kind::boolean) {}
  template <class N>
    requires(std::is_arithmetic_v<N> && !std::is_same_v<N, bool>)
  Field(std::string_view k, N v) : key(k), value(std::to_string(v)), kind(Kind::number) {}
};

using Fields = std::initializer_list<Field>;

void set_level(Level level);
Level level();
void set_format(Format format);
// Where lines go; stderr (fd 2) by default. The fd is not owned.
void set_fd(int fd);

bool parse_level(std::string_view text, Level* out);

void write(Level level, std::string_view module, std::string_view message, Fields fields);

class Logger {
 public:
  constexpr explicit Logger(std::string_view module) : module_(module) {}

  void debug(std::string_view msg, Fields f = {}) const { write(Level::debug, module_, msg, f); }
  void info(std::string_view msg, Fields f = {}) const { write(Level::info, module_, msg, f); }
  void warn(std::string_view msg, Fields f = {}) const { write(Level::warn, module_, msg, f); }
  void error(std::string_view msg, Fields f = {}) const { write(Level::error, module_, msg, f); }

 private:
  std::string_view module_;
};

// Formats one event without writing it (for tests and for the access log's writer).
std::string format_line(Format format, Level level, std::string_view module,
                        std::string_view message, Fields fields, std::int64_t unix_ms);

}  // namespace sandboxd::log
