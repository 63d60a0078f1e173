// The value syntaxes of sandboxd.yaml (SPEC §9.1), usable on their own.
//
// Each parser takes the text of one scalar (after interpolation) and returns the value or a
// `ValueError` whose message reads well after "KEY.PATH: " and whose hint, when set, says
// what was probably meant (`512m` → `did you mean 512MiB?`). Parsers are pure functions of
// their input: no I/O, no locale, no exceptions. The formatters give the canonical text that
// the parsers read back to the same value. `interpolate` is the `${NAME}` expansion of §9.1;
// it reads the environment only through the `EnvLookup` it is given.
#pragma once

#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace sandboxd::config {

struct ValueError {
  // Two arguments on purpose: a one-string constructor would make `ValueResult<std::string>`
  // ambiguous to build from a string.
  ValueError() = default;
  ValueError(std::string m, std::string h) : message(std::move(m)), hint(std::move(h)) {}

  std::string message;
  std::string hint;  // "" when there is nothing useful to add
};

// Lets `ValueResult<T>::value()` throw when a caller treats a bad value as fatal.
[[noreturn]] void throw_exception_from_error(const ValueError& e,
                                             const boost::source_location& loc);

template <class T>
using ValueResult = boost::system::result<T, ValueError>;

// One or more `<integer><unit>` with units ms s m h d, or a bare "0".
ValueResult<milliseconds> parse_duration(std::string_view text);
// An integer (bytes), or an integer or decimal with B KB MB GB (powers of 1000) or
// KiB MiB GiB TiB (powers of 1024). Fractions of a byte are dropped.
ValueResult<Bytes> parse_size(std::string_view text);
// A number from 0 to 100 followed by "%".
ValueResult<double> parse_percent(std::string_view text);
// `host:port`, `:port` or `[v6]:port`, port 0-65535. The host is lower-cased.
ValueResult<HostPort> parse_host_port(std::string_view text);
// "true" or "false" only.
ValueResult<bool> parse_bool(std::string_view text);
// A decimal integer in [min, max].
ValueResult<std::uint64_t> parse_integer(std::string_view text, std::uint64_t min,
                                         std::uint64_t max);
// A plain decimal number (digits, optionally a fraction) in [min, max].
ValueResult<double> parse_number(std::string_view text, double min, double max);
// `N` or `A-B`, inside 1-65535.
ValueResult<PortRange> parse_port_range(std::string_view text);
// `10.0.0.0/8`, `fd00::/8`, or a bare address.
ValueResult<Cidr> parse_cidr(std::string_view text);
// A DNS host name (letters, digits, hyphens, dots); lower-cased, one trailing dot dropped.
ValueResult<std::string> parse_hostname(std::string_view text);
// An absolute http(s) URL; https:// unless the host is loopback. "" is not a URL.
ValueResult<std::string> parse_url(std::string_view text);

// Canonical text in one unit: "0s", "25ms", "75s", "90m", "24h", "30d".
std::string format_duration(milliseconds d);
// Canonical text: "64KiB", "2GiB", "1MB", "1500".
std::string format_size(Bytes b);
// Canonical text: "10%", "2.5%".
std::string format_percent(double p);

// How the loader reads the environment; returns nullopt for an unset variable.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// getenv(3). Thread-compatible like getenv itself.
EnvLookup process_env();

struct Interpolated {
  std::string text;
  bool used_env = false;  // at least one ${NAME} was replaced: the value is a secret
};

// Expands `${NAME}` (NAME = [A-Za-z_][A-Za-z0-9_]*) once, without re-scanning the result.
// `$${` gives a literal `${`; any other `$` is literal. An unset variable or a malformed
// `${...` is an error.
ValueResult<Interpolated> interpolate(std::string_view text, const EnvLookup& env);

}  // namespace sandboxd::config
