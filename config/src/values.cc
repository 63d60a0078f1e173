#include "config/values.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <utility>

#include "text.h"

namespace sandboxd::config {

using detail::is_alpha;
using detail::is_digit;
using detail::lower;
using detail::quote;

namespace {

// Exact arithmetic for "1.5GiB" and "1h30m": 64 bits overflow on valid-looking input.
__extension__ typedef unsigned __int128 U128;

constexpr std::uint64_t kMaxMs =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

// "12" or "12.5": the digits before and after the dot. Fails on anything else.
struct Decimal {
  U128 whole = 0;
  U128 frac = 0;
  U128 frac_scale = 1;  // 10^(number of fraction digits)
  bool has_dot = false;
  bool overflow = false;
};

// Reads a decimal at `text[pos]`, advancing pos. Returns false when there is no digit.
bool read_decimal(std::string_view text, std::size_t& pos, bool allow_dot, Decimal& out) {
  std::size_t start = pos;
  constexpr U128 kLimit = static_cast<U128>(1) << 100;
  while (pos < text.size() && is_digit(text[pos])) {
    if (out.whole < kLimit) {
      out.whole = out.whole * 10 + static_cast<unsigned>(text[pos] - '0');
    } else {
      out.overflow = true;
    }
    ++pos;
  }
  if (pos == start) return false;
  if (allow_dot && pos + 1 < text.size() && text[pos] == '.' && is_digit(text[pos + 1])) {
    out.has_dot = true;
    ++pos;
    while (pos < text.size() && is_digit(text[pos])) {
      // Digits past the 18th cannot change a whole byte or millisecond count we accept.
      if (out.frac_scale < static_cast<U128>(1000000000000000000ULL)) {
        out.frac = out.frac * 10 + static_cast<unsigned>(text[pos] - '0');
        out.frac_scale *= 10;
      }
      ++pos;
    }
  }
  return true;
}

// A duration unit at text[pos]; returns its length in ms and advances, or 0.
std::uint64_t read_duration_unit(std::string_view text, std::size_t& pos) {
  std::string_view rest = text.substr(pos);
  if (rest.starts_with("ms")) {
    pos += 2;
    return 1;
  }
  if (rest.empty()) return 0;
  switch (rest[0]) {
    case 's':
      pos += 1;
      return 1000;
    case 'm':
      pos += 1;
      return 60 * 1000;
    case 'h':
      pos += 1;
      return 3600 * 1000;
    case 'd':
      pos += 1;
      return 24ULL * 3600 * 1000;
    default:
      return 0;
  }
}

enum class Scan { ok, syntax, overflow };

Scan scan_duration(std::string_view text, std::uint64_t& total) {
  total = 0;
  std::size_t pos = 0;
  bool overflow = false;
  if (text.empty()) return Scan::syntax;
  while (pos < text.size()) {
    Decimal num;
    if (!read_decimal(text, pos, false, num)) return Scan::syntax;
    std::uint64_t unit = read_duration_unit(text, pos);
    if (unit == 0) return Scan::syntax;
    U128 add = num.whole * unit;
    if (num.overflow || add > kMaxMs || total + add > kMaxMs) {
      overflow = true;
    } else {
      total += static_cast<std::uint64_t>(add);
    }
  }
  return overflow ? Scan::overflow : Scan::ok;
}

// What people write instead of our units.
std::uint64_t loose_duration_unit(std::string_view word) {
  std::string w = lower(word);
  if (w == "ms" || w == "msec" || w == "msecs" || w == "millisecond" || w == "milliseconds")
    return 1;
  if (w == "s" || w == "sec" || w == "secs" || w == "second" || w == "seconds") return 1000;
  if (w == "m" || w == "min" || w == "mins" || w == "minute" || w == "minutes") return 60000;
  if (w == "h" || w == "hr" || w == "hrs" || w == "hour" || w == "hours") return 3600000;
  if (w == "d" || w == "day" || w == "days") return 86400000;
  return 0;
}

// Reads "1.5h", "90 seconds", "2 Hours 5 min": the value for a did-you-mean, if exact.
std::optional<std::uint64_t> loose_duration(std::string_view text) {
  std::size_t pos = 0;
  U128 total = 0;
  bool any = false;
  auto skip_space = [&] {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
  };
  skip_space();
  while (pos < text.size()) {
    Decimal num;
    if (!read_decimal(text, pos, true, num) || num.overflow) return std::nullopt;
    skip_space();
    std::size_t word_start = pos;
    while (pos < text.size() && is_alpha(text[pos])) ++pos;
    std::uint64_t unit = loose_duration_unit(text.substr(word_start, pos - word_start));
    if (unit == 0) return std::nullopt;
    U128 scaled = (num.whole * num.frac_scale + num.frac) * unit;
    if (scaled % num.frac_scale != 0) return std::nullopt;
    total += scaled / num.frac_scale;
    if (total > kMaxMs) return std::nullopt;
    any = true;
    skip_space();
    if (pos < text.size() && text[pos] == ',') {
      ++pos;
      skip_space();
    }
  }
  if (!any) return std::nullopt;
  return static_cast<std::uint64_t>(total);
}

struct SizeUnit {
  std::string_view name;
  std::uint64_t mult;
};
constexpr SizeUnit kSizeUnits[] = {
    {"B", 1},      {"KB", 1000},  {"MB", 1000000}, {"GB", 1000000000},
    {"KiB", kKiB}, {"MiB", kMiB}, {"GiB", kGiB},   {"TiB", kTiB},
};

const SizeUnit* find_size_unit(std::string_view name) {
  for (const auto& u : kSizeUnits) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

// The unit someone who wrote `typed` most likely meant: a case slip ("mib", "kb"), or the
// one-letter Docker style ("512m"), which means binary units there.
std::string_view guess_size_unit(std::string_view typed) {
  std::string l = lower(typed);
  for (const auto& u : kSizeUnits) {
    if (lower(u.name) == l) return u.name;
  }
  if (l == "k" || l == "kib" || l == "kbytes") return "KiB";
  if (l == "m" || l == "mbytes") return "MiB";
  if (l == "g" || l == "gbytes") return "GiB";
  if (l == "t" || l == "tb" || l == "tbytes") return "TiB";
  if (l == "bytes" || l == "byte") return "B";
  return {};
}

// Strict "12" / "12.5" / "-3" for numbers and percents; from_chars does the conversion.
std::optional<double> strict_number(std::string_view text) {
  std::size_t pos = 0;
  if (pos < text.size() && text[pos] == '-') ++pos;
  Decimal d;
  if (!read_decimal(text, pos, true, d) || pos != text.size()) return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

bool valid_port(std::string_view text, std::uint64_t& port) {
  if (text.empty() || text.size() > 6) return false;
  port = 0;
  for (char c : text) {
    if (!is_digit(c)) return false;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  return true;
}

// Letters, digits, '-', '_' and dots, with no empty label: a name or an IPv4 address.
bool plausible_host(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  bool label_empty = true;
  for (char c : host) {
    if (c == '.') {
      if (label_empty) return false;
      label_empty = true;
    } else if (is_alpha(c) || is_digit(c) || c == '-' || c == '_') {
      label_empty = false;
    } else {
      return false;
    }
  }
  return !label_empty;
}

std::string format_ms_number(std::uint64_t v) { return std::to_string(v); }

}  // namespace

void throw_exception_from_error(const ValueError& e, const boost::source_location&) {
  throw std::invalid_argument(e.message);
}

ValueResult<milliseconds> parse_duration(std::string_view text) {
  auto bad = [&](std::string hint) -> ValueError {
    return {"expected a duration like 30s, got " + quote(text), std::move(hint)};
  };
  if (text == "0") return milliseconds(0);
  std::uint64_t total = 0;
  switch (scan_duration(text, total)) {
    case Scan::ok:
      return milliseconds(static_cast<std::int64_t>(total));
    case Scan::overflow:
      return ValueError{"duration " + quote(text) + " is too large", ""};
    case Scan::syntax:
      break;
  }
  if (!text.empty() && text[0] == '-') return bad("durations cannot be negative");
  bool all_digits = !text.empty();
  for (char c : text) all_digits = all_digits && is_digit(c);
  if (all_digits) return bad("did you mean " + std::string(text) + "s?");
  if (auto loose = loose_duration(text)) {
    return bad("did you mean " + format_duration(milliseconds(static_cast<std::int64_t>(*loose))) +
               "?");
  }
  return bad("");
}

ValueResult<Bytes> parse_size(std::string_view text) {
  auto bad = [&](std::string hint) -> ValueError {
    return {"expected a size like 64KiB, got " + quote(text), std::move(hint)};
  };
  std::size_t pos = 0;
  Decimal num;
  if (!read_decimal(text, pos, true, num)) {
    if (!text.empty() && text[0] == '-') return bad("sizes cannot be negative");
    return bad("");
  }
  std::string_view number_text = text.substr(0, pos);
  std::string_view unit_text = text.substr(pos);
  if (num.overflow) return ValueError{"size " + quote(text) + " is too large", ""};
  std::uint64_t mult = 1;
  if (unit_text.empty()) {
    if (num.has_dot) return bad("give a unit with a fraction, like " + std::string(text) + "MiB");
  } else if (const SizeUnit* unit = find_size_unit(unit_text)) {
    mult = unit->mult;
  } else {
    std::string_view trimmed = unit_text;
    while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
    std::string_view guess = guess_size_unit(trimmed);
    if (guess.empty()) return bad("");
    return bad("did you mean " + std::string(number_text) + std::string(guess) + "?");
  }
  U128 bytes = (num.whole * num.frac_scale + num.frac) * mult / num.frac_scale;
  if (bytes > std::numeric_limits<Bytes>::max()) {
    return ValueError{"size " + quote(text) + " is too large", ""};
  }
  return static_cast<Bytes>(bytes);
}

ValueResult<double> parse_percent(std::string_view text) {
  auto bad = [&](std::string hint) -> ValueError {
    return {"expected a percentage like 10%, got " + quote(text), std::move(hint)};
  };
  if (text.empty() || text.back() != '%') {
    if (auto n = strict_number(text); n && *n >= 0 && *n <= 100) {
      return bad("did you mean " + std::string(text) + "%?");
    }
    return bad("");
  }
  std::string_view num = text.substr(0, text.size() - 1);
  auto n = strict_number(num);
  if (!n) {
    std::string_view trimmed = num;
    while (!trimmed.empty() && trimmed.back() == ' ') trimmed.remove_suffix(1);
    if (trimmed.size() != num.size() && strict_number(trimmed)) {
      return bad("did you mean " + std::string(trimmed) + "%?");
    }
    return bad("");
  }
  if (*n < 0 || *n > 100) {
    return ValueError{"a percentage must be from 0% to 100%, got " + quote(text), ""};
  }
  return *n;
}

ValueResult<HostPort> parse_host_port(std::string_view text) {
  auto bad = [&](std::string hint) -> ValueError {
    return {"expected host:port like 127.0.0.1:9090, got " + quote(text), std::move(hint)};
  };
  HostPort out;
  std::string_view port_text;
  if (!text.empty() && text[0] == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("");
    std::string host(text.substr(1, close - 1));
    unsigned char buf[16];
    if (inet_pton(AF_INET6, host.c_str(), buf) != 1) {
      return bad("only IPv6 addresses go in brackets");
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("add a port, like " + std::string(text.substr(0, close + 1)) + ":9090");
    }
    out.host = lower(host);
    port_text = text.substr(close + 2);
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      std::uint64_t port = 0;
      if (valid_port(text, port) && port <= 65535) {
        return bad("did you mean \":" + std::string(text) + "\"?");
      }
      if (plausible_host(text)) return bad("add a port, like " + std::string(text) + ":9090");
      return bad("");
    }
    std::string_view host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      return bad("write IPv6 addresses in brackets, like [::1]:9090");
    }
    if (!host.empty() && !plausible_host(host)) return bad("");
    out.host = lower(host);
    port_text = text.substr(colon + 1);
  }
  std::uint64_t port = 0;
  if (!valid_port(port_text, port)) return bad("");
  if (port > 65535) {
    return ValueError{"port " + std::string(port_text) + " is out of range (0-65535)", ""};
  }
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

ValueResult<bool> parse_bool(std::string_view text) {
  if (text == "true") return true;
  if (text == "false") return false;
  std::string l = lower(text);
  std::string hint;
  if (l == "true" || l == "yes" || l == "y" || l == "on" || l == "1") hint = "did you mean true?";
  if (l == "false" || l == "no" || l == "n" || l == "off" || l == "0") hint = "did you mean false?";
  return ValueError{"expected true or false, got " + quote(text), hint};
}

ValueResult<std::uint64_t> parse_integer(std::string_view text, std::uint64_t min,
                                         std::uint64_t max) {
  // Keys with a real upper bound say so; for the others only the floor is interesting,
  // unless the number does not even fit the type.
  bool bounded = max < std::numeric_limits<std::uint32_t>::max();
  auto range = [&](std::string_view got, bool too_big) -> ValueError {
    std::string want;
    if (bounded && min > 0) {
      want = "must be between " + std::to_string(min) + " and " + std::to_string(max);
    } else if (bounded || too_big) {
      want = "must be at most " + std::to_string(max);
    } else {
      want = "must be at least " + std::to_string(min);
    }
    return {want + ", got " + std::string(got), ""};
  };
  std::size_t pos = 0;
  bool negative = !text.empty() && text[0] == '-';
  if (negative) pos = 1;
  Decimal d;
  if (!read_decimal(text, pos, false, d) || pos != text.size()) {
    return ValueError{"expected an integer, got " + quote(text), ""};
  }
  if (negative) {
    if (d.whole == 0 && min == 0) return std::uint64_t{0};
    return range(text, false);
  }
  if (d.overflow || d.whole > max) return range(text, true);
  if (d.whole < min) return range(text, false);
  return static_cast<std::uint64_t>(d.whole);
}

ValueResult<double> parse_number(std::string_view text, double min, double max) {
  auto n = strict_number(text);
  if (!n) return ValueError{"expected a number, got " + quote(text), ""};
  if (*n < min || *n > max) {
    std::string want;
    if (max == std::numeric_limits<double>::max()) {
      want = "must be at least " + detail::format_number(min);
    } else {
      want = "must be between " + detail::format_number(min) + " and " + detail::format_number(max);
    }
    return ValueError{want + ", got " + std::string(text), ""};
  }
  return *n;
}

ValueResult<PortRange> parse_port_range(std::string_view text) {
  auto bad = [&]() -> ValueError {
    return {"expected a port like 3000 or a range like 1024-65535, got " + quote(text), ""};
  };
  std::size_t dash = text.find('-');
  std::string_view first = dash == std::string_view::npos ? text : text.substr(0, dash);
  std::string_view last = dash == std::string_view::npos ? text : text.substr(dash + 1);
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  if (!valid_port(first, a) || !valid_port(last, b)) return bad();
  for (std::uint64_t p : {a, b}) {
    if (p < 1 || p > 65535) {
      return ValueError{"port " + std::to_string(p) + " is out of range (1-65535)", ""};
    }
  }
  if (a > b) {
    return ValueError{"range " + std::string(text) + " ends before it starts",
                      "did you mean " + std::to_string(b) + "-" + std::to_string(a) + "?"};
  }
  return PortRange{static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(b)};
}

ValueResult<Cidr> parse_cidr(std::string_view text) {
  auto bad = [&]() -> ValueError {
    return {"expected a CIDR like 10.0.0.0/8, got " + quote(text), ""};
  };
  std::size_t slash = text.find('/');
  std::string addr(text.substr(0, slash));
  Cidr out;
  if (inet_pton(AF_INET, addr.c_str(), out.address.data()) == 1) {
    out.v6 = false;
  } else if (inet_pton(AF_INET6, addr.c_str(), out.address.data()) == 1) {
    out.v6 = true;
  } else {
    return bad();
  }
  int bits = out.v6 ? 128 : 32;
  out.prefix_len = bits;
  if (slash != std::string_view::npos) {
    std::uint64_t len = 0;
    if (!valid_port(text.substr(slash + 1), len)) return bad();
    if (len > static_cast<std::uint64_t>(bits)) {
      return ValueError{"prefix /" + std::to_string(len) + " is too long for an " +
                            (out.v6 ? "IPv6" : "IPv4") + " address",
                        ""};
    }
    out.prefix_len = static_cast<int>(len);
  }
  // Clear host bits so that equal networks compare equal.
  for (int i = 0; i < 16; ++i) {
    int keep = std::max(0, std::min(8, out.prefix_len - i * 8));
    auto mask = static_cast<std::uint8_t>(keep == 0 ? 0 : (0xff << (8 - keep)) & 0xff);
    out.address[static_cast<std::size_t>(i)] &= mask;
  }
  return out;
}

ValueResult<std::string> parse_hostname(std::string_view text) {
  auto bad = [&](std::string hint) -> ValueError {
    return {"expected a host name like example.com, got " + quote(text), std::move(hint)};
  };
  if (text.find("://") != std::string_view::npos) {
    return bad("give only the host name, without a scheme");
  }
  if (text.find(':') != std::string_view::npos)
    return bad("give only the host name, without a port");
  std::string name = lower(text);
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (name.empty() || name.size() > 253) return bad("");
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    std::string_view label(name.data() + start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return bad("");
    }
    for (char c : label) {
      if (!(is_alpha(c) || is_digit(c) || c == '-')) return bad("");
    }
    start = dot + 1;
  }
  return name;
}

ValueResult<std::string> parse_url(std::string_view text) {
  auto bad = [&]() -> ValueError {
    return {"expected an absolute URL like https://example.com/, got " + quote(text), ""};
  };
  std::size_t sep = text.find("://");
  if (sep == std::string_view::npos || detail::has_control(text) ||
      text.find(' ') != std::string_view::npos) {
    return bad();
  }
  std::string scheme = lower(text.substr(0, sep));
  if (scheme != "http" && scheme != "https") return bad();
  std::string_view rest = text.substr(sep + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) {
    return ValueError{"URLs with credentials are not accepted, got " + quote(text), ""};
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad();
    host = authority.substr(1, close - 1);
    std::string h(host);
    unsigned char buf[16];
    if (inet_pton(AF_INET6, h.c_str(), buf) != 1) return bad();
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad();
      port = authority.substr(close + 2);
    }
  } else if (std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (!plausible_host(host)) return bad();
  } else if (!plausible_host(host)) {
    return bad();
  }
  if (!port.empty() || (authority.size() > 0 && authority.back() == ':')) {
    std::uint64_t p = 0;
    if (!valid_port(port, p) || p < 1 || p > 65535) return bad();
  }
  if (scheme == "http" && !is_loopback_host(host)) {
    return ValueError{"must use https:// unless the host is loopback, got " + quote(text), ""};
  }
  return std::string(text);
}

std::string format_duration(milliseconds d) {
  auto ms = static_cast<std::uint64_t>(std::max<std::int64_t>(0, d.count()));
  if (ms == 0) return "0s";
  constexpr std::uint64_t kDay = 24ULL * 3600 * 1000;
  // Whole days read better than hours only from two days up ("24h", "30d").
  if (ms % kDay == 0 && ms >= 2 * kDay) return format_ms_number(ms / kDay) + "d";
  // One unit, the largest that divides exactly: "75s", "35m", "24h", "1500ms".
  for (auto [len, unit] : {std::pair<std::uint64_t, const char*>{3600000, "h"},
                           {60000, "m"},
                           {1000, "s"},
                           {1, "ms"}}) {
    if (ms % len == 0) return format_ms_number(ms / len) + unit;
  }
  return format_ms_number(ms) + "ms";
}

std::string format_size(Bytes b) {
  if (b == 0) return "0";
  for (auto unit : {"TiB", "GiB", "MiB", "KiB", "GB", "MB", "KB"}) {
    const SizeUnit* u = find_size_unit(unit);
    if (b % u->mult == 0) return std::to_string(b / u->mult) + u->name.data();
  }
  return std::to_string(b);
}

std::string format_percent(double p) { return detail::format_number(p) + "%"; }

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

ValueResult<Interpolated> interpolate(std::string_view text, const EnvLookup& env) {
  Interpolated out;
  std::size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c != '$') {
      out.text += c;
      ++i;
      continue;
    }
    if (text.substr(i).starts_with("$${")) {
      out.text += "${";
      i += 3;
      continue;
    }
    if (!text.substr(i).starts_with("${")) {
      out.text += '$';
      ++i;
      continue;
    }
    std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      return ValueError{"malformed variable reference: \"${\" without a closing \"}\"",
                        "write $${ for a literal ${"};
    }
    std::string_view name = text.substr(i + 2, close - i - 2);
    bool valid = !name.empty() && !is_digit(name[0]);
    for (char n : name) valid = valid && (is_alpha(n) || is_digit(n) || n == '_');
    if (!valid) {
      return ValueError{"malformed variable reference " + quote(text.substr(i, close - i + 1)) +
                            ": a name matches [A-Za-z_][A-Za-z0-9_]*",
                        "write $${ for a literal ${"};
    }
    std::optional<std::string> value = env ? env(std::string(name)) : std::nullopt;
    if (!value) {
      return ValueError{"environment variable " + std::string(name) + " is not set", ""};
    }
    out.text += *value;
    out.used_env = true;
    i = close + 1;
  }
  return out;
}

}  // namespace sandboxd::config
