#include "edge/chunked.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace sandboxd::edge {
namespace {

using namespace std::string_literals;

struct Decoded {
  ChunkStatus status = ChunkStatus::need_more;
  std::string body;
  std::size_t consumed = 0;  // over the whole input
  int code = 0;
  std::string reason;

  bool operator==(const Decoded& o) const {
    if (status != o.status || body != o.body) return false;
    if (status == ChunkStatus::error) return code == o.code && reason == o.reason;
    return status != ChunkStatus::done || consumed == o.consumed;
  }
};

std::ostream& operator<<(std::ostream& os, const Decoded& d) {
  return os << "status=" << static_cast<int>(d.status) << " body=" << d.body.size()
            << " consumed=" << d.consumed << " " << d.code << " " << d.reason;
}

Decoded decode_pieces(ChunkedDecoder& decoder, std::string_view input,
                      const std::vector<std::size_t>& cuts) {
  Decoded d;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  std::size_t offset = 0;
  for (std::size_t end : ends) {
    const std::string piece(input.substr(offset, end - offset));  // ASan sees overreads
    std::string_view rest = piece;
    while (true) {
      std::size_t used = 0;
      std::string_view data;
      d.status = decoder.decode(rest, &used, &data);
      EXPECT_LE(used, rest.size());
      d.consumed = offset + static_cast<std::size_t>(rest.data() - piece.data()) + used;
      rest.remove_prefix(used);
      if (d.status == ChunkStatus::data) {
        EXPECT_GE(data.data(), piece.data());
        EXPECT_LE(data.data() + data.size(), piece.data() + piece.size());
        d.body.append(data);
        continue;
      }
      break;
    }
    if (d.status == ChunkStatus::error) {
      d.code = decoder.error().status;
      d.reason = std::string(decoder.error().reason);
    }
    if (d.status != ChunkStatus::need_more) return d;
    offset = end;
  }
  return d;
}

Decoded decode(std::string_view input, const ChunkedLimits& limits = {}) {
  ChunkedDecoder decoder(limits);
  return decode_pieces(decoder, input, {});
}

void expect_split_invariant(std::string_view input, const ChunkedLimits& limits = {}) {
  const Decoded whole = decode(input, limits);
  ChunkedDecoder decoder(limits);
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    decoder.reset();
    EXPECT_EQ(decode_pieces(decoder, input, {cut}), whole) << "split at " << cut;
  }
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < input.size(); ++i) every.push_back(i);
  decoder.reset();
  EXPECT_EQ(decode_pieces(decoder, input, every), whole) << "byte by byte";
}

struct Good {
  const char* name;
  std::string input;
  std::string body;
};

void PrintTo(const Good& g, std::ostream* os) { *os << g.name; }

class ChunkedAccepts : public ::testing::TestWithParam<Good> {};

TEST_P(ChunkedAccepts, AtEverySplitPoint) {
  const Good& g = GetParam();
  Decoded d = decode(g.input + "GET /next");
  ASSERT_EQ(d.status, ChunkStatus::done) << d;
  EXPECT_EQ(d.body, g.body);
  EXPECT_EQ(d.consumed, g.input.size());  // the pipelined request is left alone
  expect_split_invariant(g.input + "GET /next");
}

INSTANTIATE_TEST_SUITE_P(
    Table, ChunkedAccepts,
    ::testing::Values(
        Good{"empty_body", "0\r\n\r\n", ""}, Good{"one_chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
        Good{"two_chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
        Good{"hex_any_case", "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n",
             "01234567890123456789"},
        Good{"sixteen_digits", "000000000000000A\r\n0123456789\r\n0000000000000000\r\n\r\n",
             "0123456789"},
        Good{"extensions", "5;name=value;q=\"a b\"\r\nhello\r\n0;last\r\n\r\n", "hello"},
        Good{"extension_with_tab", "1;a\tb\r\nx\r\n0\r\n\r\n", "x"},
        Good{"trailers", "1\r\nx\r\n0\r\nChecksum: abc\r\nX-T:\r\n\r\n", "x"},
        Good{"binary_data", "4\r\n\r\n\0\xff\r\n0\r\n\r\n"s, "\r\n\0\xff"s}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(Chunked, ExtensionOfExactly4KiBIsAccepted) {
  const std::string ext = ";" + std::string(4095, 'e');
  Decoded d = decode("1" + ext + "\r\nx\r\n0\r\n\r\n");
  EXPECT_EQ(d.status, ChunkStatus::done) << d;
}

TEST(Chunked, ReportsAnnouncedBodyBytes) {
  ChunkedDecoder decoder;
  std::size_t used = 0;
  std::string_view data;
  ASSERT_EQ(decoder.decode("3\r\nab", &used, &data), ChunkStatus::data);
  EXPECT_EQ(data, "ab");
  EXPECT_EQ(decoder.body_bytes(), 3u);
}

struct BadChunk {
  const char* name;
  std::string input;
  int status;
  std::string reason;
  ChunkedLimits limits = {};
};

void PrintTo(const BadChunk& b, std::ostream* os) { *os << b.name; }

class ChunkedRejects : public ::testing::TestWithParam<BadChunk> {};

TEST_P(ChunkedRejects, WithStatusAndReasonAtEverySplitPoint) {
  const BadChunk& b = GetParam();
  Decoded d = decode(b.input, b.limits);
  ASSERT_EQ(d.status, ChunkStatus::error) << d;
  EXPECT_EQ(d.code, b.status);
  EXPECT_EQ(d.reason, b.reason);
  expect_split_invariant(b.input, b.limits);
}

ChunkedLimits max_body(std::uint64_t n) {
  ChunkedLimits l;
  l.max_body_bytes = n;
  return l;
}

ChunkedLimits max_trailer(std::size_t n) {
  ChunkedLimits l;
  l.max_trailer_bytes = n;
  return l;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ChunkedRejects,
    ::testing::Values(
        BadChunk{"not_hex", "g\r\n", 400, "bad chunk size"},
        BadChunk{"empty_size", "\r\n", 400, "bad chunk size"},
        BadChunk{"minus", "-5\r\nhello\r\n0\r\n\r\n", 400, "bad chunk size"},
        BadChunk{"plus", "+5\r\nhello\r\n0\r\n\r\n", 400, "bad chunk size"},
        BadChunk{"leading_space", " 5\r\nhello\r\n0\r\n\r\n", 400, "bad chunk size"},
        BadChunk{"trailing_space", "5 \r\nhello\r\n0\r\n\r\n", 400, "bad chunk size"},
        BadChunk{"space_before_extension", "5 ;a\r\nhello\r\n0\r\n\r\n", 400, "bad chunk size"},
        BadChunk{"hex_prefix", "0x5\r\nhello\r\n0\r\n\r\n", 400, "bad chunk size"},
        BadChunk{"bare_lf_after_size", "5\nhello\r\n0\r\n\r\n", 400, "bad chunk size"},
        BadChunk{"cr_without_lf_after_size", "5\rhello\r\n0\r\n\r\n", 400, "CR without LF"},
        BadChunk{"seventeen_digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", 400,
                 "chunk size over 16 digits"},
        BadChunk{"huge_size", "FFFFFFFFFFFFFFFFF\r\n", 400, "chunk size over 16 digits"},
        BadChunk{"data_longer_than_size", "5\r\nhello!\r\n0\r\n\r\n", 400,
                 "missing CRLF after chunk data"},
        BadChunk{"lf_only_after_data", "5\r\nhello\n0\r\n\r\n", 400,
                 "missing CRLF after chunk data"},
        BadChunk{"cr_only_after_data", "5\r\nhello\r0\r\n\r\n", 400,
                 "missing CRLF after chunk data"},
        BadChunk{"extension_over_4k", "1;" + std::string(4096, 'e') + "\r\nx\r\n0\r\n\r\n", 400,
                 "chunk extension over 4 KiB"},
        BadChunk{"bare_lf_in_extension", "1;a\nx\r\n0\r\n\r\n", 400, "bare LF"},
        BadChunk{"ctl_in_extension", "1;a\x01\r\nx\r\n0\r\n\r\n", 400, "bad chunk extension"},
        BadChunk{"trailer_obs_fold", "0\r\nA: b\r\n c\r\n\r\n", 400, "obs-fold"},
        BadChunk{"trailer_without_colon", "0\r\nAb\r\n\r\n", 400, "bad trailer field"},
        BadChunk{"trailer_space_before_colon", "0\r\nA : b\r\n\r\n", 400, "bad trailer field"},
        BadChunk{"trailer_empty_name", "0\r\n: b\r\n\r\n", 400, "empty field name"},
        BadChunk{"trailer_nul", "0\r\nA: \0\r\n\r\n"s, 400, "bad trailer field"},
        BadChunk{"trailer_bare_lf", "0\r\nA: b\n\r\n", 400, "bare LF"},
        BadChunk{"final_cr_without_lf", "0\r\n\rx", 400, "CR without LF"},
        BadChunk{"body_over_limit", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 413,
                 "body over max_request_body", max_body(10)},
        BadChunk{"trailers_over_limit", "0\r\nA: 0123456789\r\n\r\n", 431,
                 "trailer section too large", max_trailer(10)}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(Chunked, BodyAtTheLimitIsAccepted) {
  EXPECT_EQ(decode("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", max_body(10)).status,
            ChunkStatus::done);
}

TEST(Chunked, StaysDoneOrFailedUntilReset) {
  ChunkedDecoder decoder;
  std::size_t used = 0;
  std::string_view data;
  ASSERT_EQ(decoder.decode("0\r\n\r\nrest", &used, &data), ChunkStatus::done);
  EXPECT_EQ(used, 5u);
  EXPECT_EQ(decoder.decode("1\r\n", &used, &data), ChunkStatus::done);
  EXPECT_EQ(used, 0u);
  decoder.reset();
  ASSERT_EQ(decoder.decode("x", &used, &data), ChunkStatus::error);
  EXPECT_EQ(decoder.decode("0\r\n\r\n", &used, &data), ChunkStatus::error);
  EXPECT_EQ(used, 0u);
  decoder.reset();
  EXPECT_EQ(decoder.decode("0\r\n\r\n", &used, &data), ChunkStatus::done);
}

TEST(Chunked, SurvivesMutatedInputAndStaysSplitInvariant) {
  const std::vector<std::string> corpus = {
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
      "1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\n",
      "0000F\r\n0123456789abcde\r\n0;x\r\n\r\n",
  };
  const std::string alphabet = "\r\n \t:;=\0\x7f-0123456789aAfFgG"s;
  std::mt19937 rng(77);
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n)(rng); };
  ChunkedLimits limits;
  limits.max_extension_bytes = 16;
  limits.max_trailer_bytes = 32;
  limits.max_body_bytes = 100;
  ChunkedDecoder a(limits);
  ChunkedDecoder b(limits);
  int done = 0;
  int errors = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string in = corpus[pick(corpus.size() - 1)];
    for (std::size_t e = 0, edits = 1 + pick(2); e < edits && !in.empty(); ++e) {
      const std::size_t at = pick(in.size() - 1);
      switch (pick(3)) {
        case 0:
          in[at] = alphabet[pick(alphabet.size() - 1)];
          break;
        case 1:
          in.insert(in.begin() + static_cast<std::ptrdiff_t>(at),
                    alphabet[pick(alphabet.size() - 1)]);
          break;
        case 2:
          in.erase(at, 1 + pick(2));
          break;
        default:
          in.resize(at);
          break;
      }
    }
    a.reset();
    const Decoded whole = decode_pieces(a, in, {});
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < in.size(); ++i) {
      if (pick(5) == 0) cuts.push_back(i);
    }
    b.reset();
    const Decoded split = decode_pieces(b, in, cuts);
    ASSERT_EQ(whole, split) << "iteration " << iter << ": " << testing::PrintToString(in);
    done += whole.status == ChunkStatus::done;
    errors += whole.status == ChunkStatus::error;
  }
  EXPECT_GT(done, 1000);
  EXPECT_GT(errors, 1000);
}

}  // namespace
}  // namespace sandboxd::edge
