// The value syntaxes of §9.1, table-driven: each row is an input and either the value it
// must give or the exact message (and hint) it must be refused with.
#include "config/values.h"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <sstream>

namespace sandboxd::config {
namespace {

using namespace std::chrono_literals;

struct Bad {
  std::string input;
  std::string message;
  std::string hint;
};

template <class T>
void expect_bad(const ValueResult<T>& got, const Bad& want) {
  ASSERT_FALSE(got.has_value()) << want.input;
  EXPECT_EQ(got.error().message, want.message) << want.input;
  EXPECT_EQ(got.error().hint, want.hint) << want.input;
}

TEST(ConfigDuration, Good) {
  const std::pair<std::string, milliseconds> cases[] = {
      {"0", 0ms},     {"0s", 0ms},  {"250ms", 250ms}, {"30s", 30s},      {"1h30m", 90min},
      {"35m", 35min}, {"2h", 2h},   {"1d", 24h},      {"90d", 90 * 24h}, {"1m1s1ms", 61001ms},
      {"5ms", 5ms},   {"0ms", 0ms}, {"30m1h", 90min}, {"000010s", 10s},
  };
  for (const auto& [in, want] : cases) {
    auto got = parse_duration(in);
    ASSERT_TRUE(got.has_value()) << in << ": " << got.error().message;
    EXPECT_EQ(*got, want) << in;
  }
}

TEST(ConfigDuration, Bad) {
  const Bad cases[] = {
      {"30", "expected a duration like 30s, got \"30\"", "did you mean 30s?"},
      {"", "expected a duration like 30s, got \"\"", ""},
      {"1.5h", "expected a duration like 30s, got \"1.5h\"", "did you mean 90m?"},
      {"90 seconds", "expected a duration like 30s, got \"90 seconds\"", "did you mean 90s?"},
      {"5 min", "expected a duration like 30s, got \"5 min\"", "did you mean 5m?"},
      {"10S", "expected a duration like 30s, got \"10S\"", "did you mean 10s?"},
      {"-5s", "expected a duration like 30s, got \"-5s\"", "durations cannot be negative"},
      {"s", "expected a duration like 30s, got \"s\"", ""},
      {"10x", "expected a duration like 30s, got \"10x\"", ""},
      {"1h 30m", "expected a duration like 30s, got \"1h 30m\"", "did you mean 90m?"},
      {"soon", "expected a duration like 30s, got \"soon\"", ""},
      {"1w", "expected a duration like 30s, got \"1w\"", ""},
      {"99999999999999999999d", "duration \"99999999999999999999d\" is too large", ""},
      {"200000000000d", "duration \"200000000000d\" is too large", ""},
  };
  for (const Bad& c : cases) expect_bad(parse_duration(c.input), c);
}

TEST(ConfigDuration, FormatReadsBack) {
  const std::pair<milliseconds, std::string> cases[] = {
      {0ms, "0s"},    {25ms, "25ms"}, {1500ms, "1500ms"}, {75s, "75s"}, {60s, "1m"},
      {90min, "90m"}, {2h, "2h"},     {24h, "24h"},       {48h, "2d"},  {30 * 24h, "30d"},
  };
  for (const auto& [d, text] : cases) {
    EXPECT_EQ(format_duration(d), text);
    EXPECT_EQ(*parse_duration(text), d) << text;
  }
}

TEST(ConfigSize, Good) {
  const std::pair<std::string, Bytes> cases[] = {
      {"0", 0},
      {"1500", 1500},
      {"1B", 1},
      {"64KiB", 64 * 1024},
      {"512MiB", 512ULL << 20},
      {"2GiB", 2ULL << 30},
      {"1TiB", 1ULL << 40},
      {"1KB", 1000},
      {"1MB", 1000000},
      {"1.5GB", 1500000000},
      {"1.5KiB", 1536},
      {"0.5MiB", 512 * 1024},
      {"2.0001KB", 2000},  // fractions of a byte are dropped
      {"18446744073709551615", std::numeric_limits<Bytes>::max()},
      {"16777215TiB", 16777215ULL << 40},
  };
  for (const auto& [in, want] : cases) {
    auto got = parse_size(in);
    ASSERT_TRUE(got.has_value()) << in << ": " << got.error().message;
    EXPECT_EQ(*got, want) << in;
  }
}

TEST(ConfigSize, Bad) {
  const Bad cases[] = {
      {"512m", "expected a size like 64KiB, got \"512m\"", "did you mean 512MiB?"},
      {"512M", "expected a size like 64KiB, got \"512M\"", "did you mean 512MiB?"},
      {"1g", "expected a size like 64KiB, got \"1g\"", "did you mean 1GiB?"},
      {"64kib", "expected a size like 64KiB, got \"64kib\"", "did you mean 64KiB?"},
      {"10kb", "expected a size like 64KiB, got \"10kb\"", "did you mean 10KB?"},
      {"1TB", "expected a size like 64KiB, got \"1TB\"", "did you mean 1TiB?"},
      {"512 MiB", "expected a size like 64KiB, got \"512 MiB\"", "did you mean 512MiB?"},
      {"1.5", "expected a size like 64KiB, got \"1.5\"",
       "give a unit with a fraction, like 1.5MiB"},
      {"lots", "expected a size like 64KiB, got \"lots\"", ""},
      {"", "expected a size like 64KiB, got \"\"", ""},
      {"-1KiB", "expected a size like 64KiB, got \"-1KiB\"", "sizes cannot be negative"},
      {"12XB", "expected a size like 64KiB, got \"12XB\"", ""},
      {"18446744073709551616", "size \"18446744073709551616\" is too large", ""},
      {"16777216TiB", "size \"16777216TiB\" is too large", ""},
      {"99999999999999999999999999999999999999GiB",
       "size \"99999999999999999999999999999999999999GiB\" is too large", ""},
  };
  for (const Bad& c : cases) expect_bad(parse_size(c.input), c);
}

TEST(ConfigSize, FormatReadsBack) {
  const std::pair<Bytes, std::string> cases[] = {
      {0, "0"},
      {1500, "1500"},
      {1024, "1KiB"},
      {64 * 1024, "64KiB"},
      {1ULL << 20, "1MiB"},
      {2ULL << 30, "2GiB"},
      {1ULL << 40, "1TiB"},
      {1000, "1KB"},
      {1000000, "1MB"},
      {3000000000, "3GB"},
  };
  for (const auto& [b, text] : cases) {
    EXPECT_EQ(format_size(b), text);
    EXPECT_EQ(*parse_size(text), b) << text;
  }
}

TEST(ConfigPercent, GoodAndBad) {
  const std::pair<std::string, double> good[] = {
      {"10%", 10}, {"2.5%", 2.5}, {"0%", 0}, {"100%", 100}, {"99.99%", 99.99}};
  for (const auto& [in, want] : good) {
    auto got = parse_percent(in);
    ASSERT_TRUE(got.has_value()) << in;
    EXPECT_DOUBLE_EQ(*got, want);
  }
  const Bad bad[] = {
      {"10", "expected a percentage like 10%, got \"10\"", "did you mean 10%?"},
      {"10 %", "expected a percentage like 10%, got \"10 %\"", "did you mean 10%?"},
      {"101%", "a percentage must be from 0% to 100%, got \"101%\"", ""},
      {"-1%", "a percentage must be from 0% to 100%, got \"-1%\"", ""},
      {"%", "expected a percentage like 10%, got \"%\"", ""},
      {"ten%", "expected a percentage like 10%, got \"ten%\"", ""},
      {"0.1", "expected a percentage like 10%, got \"0.1\"", "did you mean 0.1%?"},
      {"150", "expected a percentage like 10%, got \"150\"", ""},
  };
  for (const Bad& c : bad) expect_bad(parse_percent(c.input), c);
  EXPECT_EQ(format_percent(2.5), "2.5%");
  EXPECT_EQ(format_percent(15), "15%");
}

TEST(ConfigHostPort, Good) {
  struct Case {
    std::string in;
    std::string host;
    std::uint16_t port;
    std::string str;
  };
  const Case cases[] = {
      {"127.0.0.1:9090", "127.0.0.1", 9090, "127.0.0.1:9090"},
      {":80", "", 80, ":80"},
      {"[::1]:9090", "::1", 9090, "[::1]:9090"},
      {"[::]:443", "::", 443, "[::]:443"},
      {"localhost:0", "localhost", 0, "localhost:0"},
      {"Bind9.Example:53", "bind9.example", 53, "bind9.example:53"},
      {":65535", "", 65535, ":65535"},
  };
  for (const Case& c : cases) {
    auto got = parse_host_port(c.in);
    ASSERT_TRUE(got.has_value()) << c.in << ": " << got.error().message;
    EXPECT_EQ(got->host, c.host);
    EXPECT_EQ(got->port, c.port);
    EXPECT_EQ(got->str(), c.str);
  }
}

TEST(ConfigHostPort, Bad) {
  const Bad cases[] = {
      {"9090", "expected host:port like 127.0.0.1:9090, got \"9090\"", "did you mean \":9090\"?"},
      {":65536", "port 65536 is out of range (0-65535)", ""},
      {"127.0.0.1:99999", "port 99999 is out of range (0-65535)", ""},
      {"::1:9090", "expected host:port like 127.0.0.1:9090, got \"::1:9090\"",
       "write IPv6 addresses in brackets, like [::1]:9090"},
      {"[::1]", "expected host:port like 127.0.0.1:9090, got \"[::1]\"",
       "add a port, like [::1]:9090"},
      {"[1.2.3.4]:80", "expected host:port like 127.0.0.1:9090, got \"[1.2.3.4]:80\"",
       "only IPv6 addresses go in brackets"},
      {"localhost", "expected host:port like 127.0.0.1:9090, got \"localhost\"",
       "add a port, like localhost:9090"},
      {"host:", "expected host:port like 127.0.0.1:9090, got \"host:\"", ""},
      {"host:http", "expected host:port like 127.0.0.1:9090, got \"host:http\"", ""},
      {"bad host:80", "expected host:port like 127.0.0.1:9090, got \"bad host:80\"", ""},
      {"", "expected host:port like 127.0.0.1:9090, got \"\"", ""},
      {"[::1:80", "expected host:port like 127.0.0.1:9090, got \"[::1:80\"", ""},
  };
  for (const Bad& c : cases) expect_bad(parse_host_port(c.input), c);
}

TEST(ConfigHostPort, Loopback) {
  for (std::string h : {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST",
                        "localhost.", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(is_loopback_host(h)) << h;
  }
  for (std::string h :
       {"", "0.0.0.0", "::", "10.0.0.1", "example.com", "localhost.example", "128.0.0.1"}) {
    EXPECT_FALSE(is_loopback_host(h)) << h;
  }
}

TEST(ConfigBool, OnlyTrueAndFalse) {
  EXPECT_EQ(*parse_bool("true"), true);
  EXPECT_EQ(*parse_bool("false"), false);
  const Bad cases[] = {
      {"yes", "expected true or false, got \"yes\"", "did you mean true?"},
      {"on", "expected true or false, got \"on\"", "did you mean true?"},
      {"True", "expected true or false, got \"True\"", "did you mean true?"},
      {"no", "expected true or false, got \"no\"", "did you mean false?"},
      {"off", "expected true or false, got \"off\"", "did you mean false?"},
      {"0", "expected true or false, got \"0\"", "did you mean false?"},
      {"", "expected true or false, got \"\"", ""},
      {"maybe", "expected true or false, got \"maybe\"", ""},
  };
  for (const Bad& c : cases) expect_bad(parse_bool(c.input), c);
}

TEST(ConfigInteger, Ranges) {
  EXPECT_EQ(*parse_integer("42", 0, 100), 42u);
  EXPECT_EQ(*parse_integer("0", 0, 100), 0u);
  EXPECT_EQ(*parse_integer("4294967295", 0, 4294967295u), 4294967295u);
  const Bad cases[] = {
      {"101", "must be at most 100, got 101", ""},
      {"0", "must be between 1 and 64, got 0", ""},
      {"1e3", "expected an integer, got \"1e3\"", ""},
      {"0x10", "expected an integer, got \"0x10\"", ""},
      {"1_000", "expected an integer, got \"1_000\"", ""},
      {"", "expected an integer, got \"\"", ""},
      {"3.0", "expected an integer, got \"3.0\"", ""},
  };
  expect_bad(parse_integer("101", 0, 100), cases[0]);
  expect_bad(parse_integer("0", 1, 64), cases[1]);
  for (int i = 2; i < 7; ++i) expect_bad(parse_integer(cases[i].input, 0, 100), cases[i]);
  expect_bad(parse_integer("0", 1, 4294967295u), {"0", "must be at least 1, got 0", ""});
  expect_bad(parse_integer("-5", 1, 4294967295u), {"-5", "must be at least 1, got -5", ""});
  expect_bad(parse_integer("99999999999999999999999", 0, 4294967295u),
             {"", "must be at most 4294967295, got 99999999999999999999999", ""});
}

TEST(ConfigNumber, Ranges) {
  EXPECT_DOUBLE_EQ(*parse_number("0.6667", 0.5, 0.9), 0.6667);
  expect_bad(parse_number("1", 0.5, 0.9), {"", "must be between 0.5 and 0.9, got 1", ""});
  expect_bad(parse_number("nan", 0, 1), {"", "expected a number, got \"nan\"", ""});
  expect_bad(parse_number("inf", 0, 1), {"", "expected a number, got \"inf\"", ""});
  expect_bad(parse_number(".5", 0, 1), {"", "expected a number, got \".5\"", ""});
  expect_bad(parse_number("1e400", 0, 1), {"", "expected a number, got \"1e400\"", ""});
}

TEST(ConfigPortRange, GoodAndBad) {
  EXPECT_EQ(*parse_port_range("3000"), (PortRange{3000, 3000}));
  EXPECT_EQ(*parse_port_range("1024-65535"), (PortRange{1024, 65535}));
  EXPECT_EQ(*parse_port_range("1-1"), (PortRange{1, 1}));
  const Bad cases[] = {
      {"0", "port 0 is out of range (1-65535)", ""},
      {"1-65536", "port 65536 is out of range (1-65535)", ""},
      {"5000-4000", "range 5000-4000 ends before it starts", "did you mean 4000-5000?"},
      {"abc", "expected a port like 3000 or a range like 1024-65535, got \"abc\"", ""},
      {"1024-", "expected a port like 3000 or a range like 1024-65535, got \"1024-\"", ""},
      {"-5", "expected a port like 3000 or a range like 1024-65535, got \"-5\"", ""},
      {"1-2-3", "expected a port like 3000 or a range like 1024-65535, got \"1-2-3\"", ""},
  };
  for (const Bad& c : cases) expect_bad(parse_port_range(c.input), c);
}

TEST(ConfigCidr, GoodAndBad) {
  auto v4 = parse_cidr("10.1.2.3/8");
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->str(), "10.0.0.0/8");
  const std::uint8_t inside[4] = {10, 200, 0, 1};
  const std::uint8_t outside[4] = {11, 0, 0, 1};
  EXPECT_TRUE(v4->contains(false, inside));
  EXPECT_FALSE(v4->contains(false, outside));
  EXPECT_EQ(parse_cidr("fd00::/8")->str(), "fd00::/8");
  EXPECT_EQ(parse_cidr("192.0.2.7")->str(), "192.0.2.7/32");
  EXPECT_EQ(parse_cidr("::1")->str(), "::1/128");
  EXPECT_EQ(parse_cidr("172.16.0.0/12")->prefix_len, 12);
  expect_bad(parse_cidr("10.0.0.0/33"), {"", "prefix /33 is too long for an IPv4 address", ""});
  expect_bad(parse_cidr("example.com/8"),
             {"", "expected a CIDR like 10.0.0.0/8, got \"example.com/8\"", ""});
  expect_bad(parse_cidr("10.0.0.0/"),
             {"", "expected a CIDR like 10.0.0.0/8, got \"10.0.0.0/\"", ""});
}

TEST(ConfigHostname, GoodAndBad) {
  EXPECT_EQ(*parse_hostname("Example.COM."), "example.com");
  EXPECT_EQ(*parse_hostname("localhost"), "localhost");
  EXPECT_EQ(*parse_hostname("a-b.c1.example"), "a-b.c1.example");
  expect_bad(parse_hostname("https://example.com"),
             {"", "expected a host name like example.com, got \"https://example.com\"",
              "give only the host name, without a scheme"});
  expect_bad(parse_hostname("example.com:443"),
             {"", "expected a host name like example.com, got \"example.com:443\"",
              "give only the host name, without a port"});
  for (std::string bad :
       {std::string(), std::string("-a.com"), std::string("a-.com"), std::string("a..com"),
        std::string("*.example.com"), std::string("a_b.com"), std::string(64, 'a') + ".com"}) {
    EXPECT_FALSE(parse_hostname(bad).has_value()) << bad;
  }
}

TEST(ConfigUrl, GoodAndBad) {
  for (std::string good : {"https://acme-v02.api.letsencrypt.org/directory",
                           "http://127.0.0.1:14000/dir", "http://localhost/x", "http://[::1]:80/",
                           "https://example.com", "HTTPS://example.com:8443/a?b#c"}) {
    EXPECT_TRUE(parse_url(good).has_value()) << good;
  }
  expect_bad(
      parse_url("http://example.com/"),
      {"", "must use https:// unless the host is loopback, got \"http://example.com/\"", ""});
  expect_bad(parse_url("example.com/x"),
             {"", "expected an absolute URL like https://example.com/, got \"example.com/x\"", ""});
  expect_bad(
      parse_url("ftp://example.com/"),
      {"", "expected an absolute URL like https://example.com/, got \"ftp://example.com/\"", ""});
  expect_bad(
      parse_url("https://user:pw@example.com/"),
      {"", "URLs with credentials are not accepted, got \"https://user:pw@example.com/\"", ""});
  for (std::string bad : {"", "https://", "https://exa mple.com", "https://example.com:0/",
                          "https://example.com:99999/", "https://[::1/"}) {
    EXPECT_FALSE(parse_url(bad).has_value()) << bad;
  }
}

class ConfigInterpolate : public ::testing::Test {
 protected:
  std::map<std::string, std::string> vars_{
      {"TOKEN", "s3cr3t"}, {"EMPTY", ""}, {"NESTED", "${TOKEN}"}, {"_u9", "x"}};
  EnvLookup env_ = [this](const std::string& n) -> std::optional<std::string> {
    auto it = vars_.find(n);
    if (it == vars_.end()) return std::nullopt;
    return it->second;
  };
};

TEST_F(ConfigInterpolate, Expands) {
  struct Case {
    std::string in;
    std::string out;
    bool used_env;
  };
  const Case cases[] = {
      {"plain", "plain", false},
      {"${TOKEN}", "s3cr3t", true},
      {"a-${TOKEN}-b", "a-s3cr3t-b", true},
      {"${TOKEN}${TOKEN}", "s3cr3ts3cr3t", true},
      {"${EMPTY}", "", true},
      {"$${TOKEN}", "${TOKEN}", false},
      {"cost: $5", "cost: $5", false},
      {"$", "$", false},
      {"$$", "$$", false},
      {"a$b$", "a$b$", false},
      {"${NESTED}", "${TOKEN}", true},  // no re-scan
      {"${_u9}", "x", true},
      {"}{$}", "}{$}", false},
  };
  for (const Case& c : cases) {
    auto got = interpolate(c.in, env_);
    ASSERT_TRUE(got.has_value()) << c.in << ": " << got.error().message;
    EXPECT_EQ(got->text, c.out) << c.in;
    EXPECT_EQ(got->used_env, c.used_env) << c.in;
  }
}

TEST_F(ConfigInterpolate, Errors) {
  const Bad cases[] = {
      {"${SANDBOXD_TOKEN_CI}", "environment variable SANDBOXD_TOKEN_CI is not set", ""},
      {"x${TOKEN", "malformed variable reference: \"${\" without a closing \"}\"",
       "write $${ for a literal ${"},
      {"${}", "malformed variable reference \"${}\": a name matches [A-Za-z_][A-Za-z0-9_]*",
       "write $${ for a literal ${"},
      {"${1X}", "malformed variable reference \"${1X}\": a name matches [A-Za-z_][A-Za-z0-9_]*",
       "write $${ for a literal ${"},
      {"${A-B}", "malformed variable reference \"${A-B}\": a name matches [A-Za-z_][A-Za-z0-9_]*",
       "write $${ for a literal ${"},
      {"${TOKEN}${MISSING}", "environment variable MISSING is not set", ""},
  };
  for (const Bad& c : cases) expect_bad(interpolate(c.input, env_), c);
}

TEST(ConfigSecret, NeverPrints) {
  Secret s("hunter2hunter2hunter2");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "<redacted>");
  EXPECT_EQ(s.str(), "<redacted>");
  EXPECT_EQ(::testing::PrintToString(s), "<redacted>");
  EXPECT_EQ(s.reveal(), "hunter2hunter2hunter2");
}

}  // namespace
}  // namespace sandboxd::config
