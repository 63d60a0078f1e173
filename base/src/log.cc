#include "base/log.h"

#include "base/clock.h"
#include "base/json_escape.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>

namespace sandboxd::log {

namespace {

std::atomic<Level> g_level{Level::info};
std::atomic<Format> g_format{Format::text};
std::atomic<int> g_fd{2};

std::string_view level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

std::string timestamp(std::int64_t unix_ms) {
  std::time_t secs = unix_ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return buf;
}

// A text value is quoted when it would otherwise be ambiguous to split on spaces or '='.
bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
      return true;
  }
  return false;
}

}  // namespace

void set_level(Level l) { g_level = l; }
Level level() { return g_level; }
void set_format(Format f) { g_format = f; }
void set_fd(int fd) { g_fd = fd; }

bool parse_level(std::string_view text, Level* out) {
  for (Level l : {Level::debug, Level::info, Level::warn, Level::error}) {
    if (text == level_name(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

std::string format_line(Format format, Level lvl, std::string_view module,
                        std::string_view message, Fields fields, std::int64_t unix_ms) {
  std::string line;
  line.reserve(128);
  if (format == Format::json) {
    line += "{\"ts\":\"";
    line += timestamp(unix_ms);
    line += "\",\"level\":\"";
    line += level_name(lvl);
    line += "\",\"module\":";
    append_json_string(line, module);
    line += ",\"msg\":";
    append_json_string(line, message);
    for (const Field& f : fields) {
      line += ',';
      append_json_string(line, f.key);
      line += ':';
      if (f.kind == Field::Kind::string) {
        append_json_string(line, f.value);
      } else {
        line += f.value;
      }
    }
    line += "}\n";
    return line;
  }
  line += timestamp(unix_ms);
  line += ' ';
  line += level_name(lvl);
  line.append(6 - level_name(lvl).size(), ' ');
  line += module;
  line += ": ";
  line += message;
  for (const Field& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    if (f.kind == Field::Kind::string && needs_quotes(f.value)) {
      append_json_string(line, f.value);
    } else {
      line += f.value;
    }
  }
  line += '\n';
  return line;
}

void write(Level lvl, std::string_view module, std::string_view message, Fields fields) {
  if (lvl < g_level.load(std::memory_order_relaxed)) return;
  std::string line = format_line(g_format, lvl, module, message, fields, system_clock().unix_ms());
  const char* p = line.data();
  std::size_t left = line.size();
  int fd = g_fd;
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a log line that cannot be written is dropped, never fatal
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace sandboxd::log
