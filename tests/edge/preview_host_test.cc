#include "edge/preview_host.h"

#include <gtest/gtest.h>

#include <string>

namespace sandboxd::edge {
namespace {

constexpr std::string_view kSuffix = "preview.example.com";
constexpr std::string_view kId = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

struct HostCase {
  const char* name;
  std::string host;
  HostKind kind;
  std::uint16_t port = 0;  // for preview
};

void PrintTo(const HostCase& c, std::ostream* os) { *os << c.name; }

class ClassifyHost : public ::testing::TestWithParam<HostCase> {};

TEST_P(ClassifyHost, Table) {
  const HostCase& c = GetParam();
  HostMatch m = classify_host(c.host, kSuffix);
  EXPECT_EQ(m.kind, c.kind) << c.host;
  auto target = parse_preview_host(c.host, kSuffix);
  EXPECT_EQ(target.has_value(), c.kind == HostKind::preview);
  if (c.kind == HostKind::preview) {
    ASSERT_TRUE(target);
    EXPECT_EQ(target->id.str(), kId);  // canonical upper case whatever the case sent
    EXPECT_EQ(target->port, c.port);
    EXPECT_EQ(m.target, *target);
  }
}

std::string host(std::string_view id, std::string_view port, std::string_view rest = "") {
  return "s-" + std::string(id) + "-" + std::string(port) + "." + std::string(kSuffix) +
         std::string(rest);
}

INSTANTIATE_TEST_SUITE_P(
    Good, ClassifyHost,
    ::testing::Values(
        HostCase{"plain", host(kId, "3000"), HostKind::preview, 3000},
        HostCase{"lower_case_id", host("01arz3ndektsv4rrffq69g5fav", "3000"), HostKind::preview,
                 3000},
        HostCase{"mixed_case_everything", "S-01aRz3NdEkTsV4rRfFq69G5fAv-8080.PREVIEW.Example.COM",
                 HostKind::preview, 8080},
        HostCase{"trailing_dot", host(kId, "3000", "."), HostKind::preview, 3000},
        HostCase{"listener_port", host(kId, "3000", ":8443"), HostKind::preview, 3000},
        HostCase{"trailing_dot_and_listener_port", host(kId, "3000", ".:80"), HostKind::preview,
                 3000},
        HostCase{"port_1", host(kId, "1"), HostKind::preview, 1},
        HostCase{"port_65535", host(kId, "65535"), HostKind::preview, 65535}),
    [](const auto& p) { return std::string(p.param.name); });

INSTANTIATE_TEST_SUITE_P(
    BadPreview, ClassifyHost,
    ::testing::Values(
        HostCase{"short_id", host("abc", "3000"), HostKind::bad_preview},
        HostCase{"empty_id", host("", "3000"), HostKind::bad_preview},
        HostCase{"id_missing_a_char", host(kId.substr(1), "3000"), HostKind::bad_preview},
        HostCase{"id_with_extra_char", host(std::string(kId) + "0", "3000"), HostKind::bad_preview},
        HostCase{"id_with_I", host("01ARZ3NDEKTSV4RRFFQ69G5FAI", "3000"), HostKind::bad_preview},
        HostCase{"id_with_L", host("01ARZ3NDEKTSV4RRFFQ69G5FAL", "3000"), HostKind::bad_preview},
        HostCase{"id_with_O", host("01ARZ3NDEKTSV4RRFFQ69G5FAO", "3000"), HostKind::bad_preview},
        HostCase{"id_with_U", host("01ARZ3NDEKTSV4RRFFQ69G5FAU", "3000"), HostKind::bad_preview},
        HostCase{"id_first_char_8", host("81ARZ3NDEKTSV4RRFFQ69G5FAV", "3000"),
                 HostKind::bad_preview},
        HostCase{"id_with_dash", host("01ARZ3NDEK-SV4RRFFQ69G5FAV", "3000"), HostKind::bad_preview},
        HostCase{"port_0", host(kId, "0"), HostKind::bad_preview},
        HostCase{"port_65536", host(kId, "65536"), HostKind::bad_preview},
        HostCase{"port_leading_zero", host(kId, "03000"), HostKind::bad_preview},
        HostCase{"port_00", host(kId, "00"), HostKind::bad_preview},
        HostCase{"port_six_digits", host(kId, "100000"), HostKind::bad_preview},
        HostCase{"port_not_digits", host(kId, "30a0"), HostKind::bad_preview},
        HostCase{"port_empty", host(kId, ""), HostKind::bad_preview},
        HostCase{"port_sign", host(kId, "+3000"), HostKind::bad_preview}),
    [](const auto& p) { return std::string(p.param.name); });

INSTANTIATE_TEST_SUITE_P(
    Other, ClassifyHost,
    ::testing::Values(
        HostCase{"bare_suffix", std::string(kSuffix), HostKind::other},
        HostCase{"bare_suffix_dot_port", std::string(kSuffix) + ".:443", HostKind::other},
        HostCase{"label_before_preview_host", "x." + host(kId, "3000"), HostKind::other},
        HostCase{"other_label", "api." + std::string(kSuffix), HostKind::other},
        HostCase{"no_second_dash", "s-" + std::string(kId) + "." + std::string(kSuffix),
                 HostKind::other},
        HostCase{"no_s_prefix", std::string(kId) + "-3000." + std::string(kSuffix),
                 HostKind::other},
        HostCase{"other_suffix", "s-" + std::string(kId) + "-3000.preview.example.org",
                 HostKind::other},
        HostCase{"suffix_without_dot", "s-" + std::string(kId) + "-3000x" + std::string(kSuffix),
                 HostKind::other},
        HostCase{"suffix_as_label_part", "s-" + std::string(kId) + "-3000.xpreview.example.com",
                 HostKind::other},
        HostCase{"two_trailing_dots", host(kId, "3000", ".."), HostKind::other},
        HostCase{"bad_listener_port", host(kId, "3000", ":0"), HostKind::other},
        HostCase{"empty_listener_port", host(kId, "3000", ":"), HostKind::other},
        HostCase{"ipv4", "192.0.2.1:80", HostKind::other},
        HostCase{"ipv6", "[2001:db8::1]:80", HostKind::other},
        HostCase{"empty", "", HostKind::other}, HostCase{"dot_only", ".", HostKind::other}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(PreviewHost, SuffixMayCarryATrailingDotAndAnyCase) {
  auto t = parse_preview_host(host(kId, "3000"), "Preview.Example.Com.");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->port, 3000);
}

TEST(PreviewHost, EmptySuffixMatchesNothing) {
  EXPECT_EQ(classify_host(host(kId, "3000"), "").kind, HostKind::other);
}

TEST(PreviewHost, HostNameDropsPortAndTrailingDot) {
  EXPECT_EQ(host_name("Api.Example.com.:8443"), "Api.Example.com");
  EXPECT_EQ(host_name("[::1]:80"), "[::1]");
  EXPECT_EQ(host_name("[::1]"), "[::1]");
  EXPECT_EQ(host_name("a"), "a");
  EXPECT_FALSE(host_name("a:0"));
  EXPECT_FALSE(host_name("a:"));
  EXPECT_FALSE(host_name(":80"));
  EXPECT_FALSE(host_name(""));
  EXPECT_FALSE(host_name("[::1"));
  EXPECT_FALSE(host_name("[::1]x"));
}

TEST(PreviewHost, HostNameEqualsIsCaseInsensitive) {
  EXPECT_TRUE(host_name_equals("API.example.com:443", "api.example.com"));
  EXPECT_TRUE(host_name_equals("api.example.com.", "api.example.com"));
  EXPECT_TRUE(host_name_equals("api.example.com", "api.example.com."));
  EXPECT_FALSE(host_name_equals("x.api.example.com", "api.example.com"));
  EXPECT_FALSE(host_name_equals("api.example.com:0", "api.example.com"));
}

}  // namespace
}  // namespace sandboxd::edge
