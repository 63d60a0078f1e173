#include "tar_reader.h"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tar_writer.h"

namespace sandboxd::control {
namespace {

using testing::fix_checksum;
using testing::header_block;
using testing::pad;
using testing::pax_record;
using testing::TarHeader;
using testing::TarWriter;

struct ReadAll {
  std::vector<TarEntry> entries;
  std::optional<Error> error;
};

// Reads to the end or the first error, checking that every data view lies in the archive.
ReadAll read_all(std::string_view archive) {
  TarReader reader(archive);
  ReadAll out;
  for (int i = 0; i < 100000; ++i) {
    auto next = reader.next();
    if (!next) {
      out.error = next.error();
      return out;
    }
    if (!*next) return out;
    const TarEntry& entry = **next;
    if (!entry.data.empty()) {
      EXPECT_GE(entry.data.data(), archive.data());
      EXPECT_LE(entry.data.data() + entry.data.size(), archive.data() + archive.size());
    }
    EXPECT_EQ(entry.data.size(), entry.size);
    EXPECT_EQ(entry.path.find('\0'), std::string::npos);
    EXPECT_EQ(entry.link_target.find('\0'), std::string::npos);
    out.entries.push_back(std::move(**next));
  }
  ADD_FAILURE() << "the reader did not reach an end";
  return out;
}

// Overwrites bytes of the header at `offset` and, unless told not to, fixes its checksum.
std::string patch(std::string archive, std::size_t offset, std::string_view bytes, bool fix = true,
                  std::size_t header = 0) {
  archive.replace(offset, bytes.size(), bytes);
  if (fix) fix_checksum(archive, header);
  return archive;
}

struct Expected {
  std::string path;
  TarEntryType type;
  std::uint32_t mode;
  std::string data;
  std::string link;
};

void expect_entries(const ReadAll& got, const std::vector<Expected>& want) {
  ASSERT_FALSE(got.error) << got.error->message();
  ASSERT_EQ(got.entries.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].path);
    EXPECT_EQ(got.entries[i].path, want[i].path);
    EXPECT_EQ(tar_entry_type_name(got.entries[i].type), tar_entry_type_name(want[i].type));
    EXPECT_EQ(got.entries[i].mode, want[i].mode);
    EXPECT_EQ(got.entries[i].data, want[i].data);
    EXPECT_EQ(got.entries[i].link_target, want[i].link);
  }
}

TEST(TarReader, ReadsEveryEntryType) {
  TarWriter w;
  w.dir("skel/", 0755)
      .file("skel/a.txt", "hello", 0640, 1234)
      .file("skel/tool", "#!/bin/sh\n", 04755)
      .file("skel/empty", "")
      .file("skel/big", std::string(1500, 'x'))
      .symlink("skel/l", "../../etc")
      .hardlink("skel/h", "skel/a.txt")
      .special("skel/fifo", '6')
      .special("skel/chr", '3')
      .special("skel/contig", '7');
  const std::string archive = w.finish();  // entry data views point into it
  auto got = read_all(archive);
  expect_entries(got, {
                          {"skel/", TarEntryType::dir, 0755, "", ""},
                          {"skel/a.txt", TarEntryType::file, 0640, "hello", ""},
                          {"skel/tool", TarEntryType::file, 04755, "#!/bin/sh\n", ""},
                          {"skel/empty", TarEntryType::file, 0644, "", ""},
                          {"skel/big", TarEntryType::file, 0644, std::string(1500, 'x'), ""},
                          {"skel/l", TarEntryType::symlink, 0777, "", "../../etc"},
                          {"skel/h", TarEntryType::hardlink, 0644, "", "skel/a.txt"},
                          {"skel/fifo", TarEntryType::other, 0644, "", ""},
                          {"skel/chr", TarEntryType::other, 0644, "", ""},
                          {"skel/contig", TarEntryType::file, 0644, "", ""},
                      });
  EXPECT_EQ(got.entries[1].mtime, 1234);
}

TEST(TarReader, JoinsTheUstarPrefixButNotForGnu) {
  TarWriter w;
  w.entry(TarHeader::of("file.txt").with_prefix("a/very/long/prefix"), "x");
  // GNU headers keep other data where ustar has its prefix.
  w.entry(TarHeader::of("gnu.txt").with_prefix("ignored").with_gnu_magic(), "y");
  const std::string archive = w.finish();  // entry data views point into it
  auto got = read_all(archive);
  expect_entries(got, {{"a/very/long/prefix/file.txt", TarEntryType::file, 0644, "x", ""},
                       {"gnu.txt", TarEntryType::file, 0644, "y", ""}});
}

TEST(TarReader, PaxRecordsOverrideTheHeader) {
  const std::string long_path = "skel/" + std::string(300, 'p') + "/ünïcode";
  TarWriter w;
  w.pax({{"path", long_path}, {"mtime", "1700000001.25"}, {"comment", "ignored"}})
      .file("short", "data");
  w.pax({{"linkpath", std::string(200, 't')}}).symlink("skel/link", "short-target");
  // A size in pax beats the header's (writers put 0 there when it does not fit).
  w.pax({{"size", "5"}});
  w.raw(header_block(TarHeader::of("sized")) + pad("12345"));
  w.file("after", "z");
  const std::string archive = w.finish();  // entry data views point into it
  auto got = read_all(archive);
  expect_entries(got, {{long_path, TarEntryType::file, 0644, "data", ""},
                       {"skel/link", TarEntryType::symlink, 0777, "", std::string(200, 't')},
                       {"sized", TarEntryType::file, 0644, "12345", ""},
                       {"after", TarEntryType::file, 0644, "z", ""}});
  EXPECT_EQ(got.entries[0].mtime, 1700000001);
  EXPECT_EQ(got.entries[3].mtime, 1700000000);  // pax records apply to one entry only
}

TEST(TarReader, GlobalPaxHeadersAreSkipped) {
  TarWriter w;
  w.entry(TarHeader::of("global", 'g'), pax_record("path", "nope"));
  w.file("real", "r");
  expect_entries(read_all(w.finish()), {{"real", TarEntryType::file, 0644, "r", ""}});
}

TEST(TarReader, GnuLongNamesAndLinks) {
  const std::string name = "skel/" + std::string(250, 'n');
  const std::string target = std::string(180, 'k');
  TarWriter w;
  w.gnu_long('L', name).gnu_long('K', target).symlink("truncated-name", "truncated-target");
  w.gnu_long('L', name + "2").pax({{"path", "pax-loses"}}).file("x", "d");
  expect_entries(read_all(w.finish()), {{name, TarEntryType::symlink, 0777, "", target},
                                        {name + "2", TarEntryType::file, 0644, "d", ""}});
}

TEST(TarReader, OldStyleDirectoryHasATrailingSlash) {
  TarWriter w;
  w.entry(TarHeader::of("olddir/", '\0', 0700));
  w.entry(TarHeader::of("oldfile", '\0'), "f");
  expect_entries(read_all(w.finish()), {{"olddir/", TarEntryType::dir, 0700, "", ""},
                                        {"oldfile", TarEntryType::file, 0644, "f", ""}});
}

TEST(TarReader, Base256Numbers) {
  std::string header = header_block(TarHeader::of("b256"));
  // size = 3 in base-256: 0x80 marker, then big-endian bytes.
  std::string size(12, '\0');
  size[0] = '\x80';
  size[11] = '\x03';
  header.replace(124, 12, size);
  // mtime = -2: all ones but the last byte (two's complement).
  std::string mtime(12, '\xff');
  mtime[11] = '\xfe';
  header.replace(136, 12, mtime);
  fix_checksum(header, 0);
  TarWriter w;
  w.raw(header + pad("abc"));
  const std::string archive = w.finish();  // entry data views point into it
  auto got = read_all(archive);
  expect_entries(got, {{"b256", TarEntryType::file, 0644, "abc", ""}});
  EXPECT_EQ(got.entries[0].mtime, -2);
}

TEST(TarReader, SignedChecksumsAreAccepted) {
  std::string header = header_block(TarHeader::of("caf\xc3\xa9"));
  long sum = 0;
  for (std::size_t i = 0; i < 512; ++i) {
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<signed char>(header[i]);
  }
  char text[8];
  std::snprintf(text, sizeof text, "%06lo", static_cast<unsigned long>(sum));
  header.replace(148, 6, text, 6);
  TarWriter w;
  w.raw(header);
  expect_entries(read_all(w.finish()), {{"caf\xc3\xa9", TarEntryType::file, 0644, "", ""}});
}

TEST(TarReader, EndMarkers) {
  expect_entries(read_all(std::string(1024, '\0')), {});
  // GNU tar and Go accept a single zero block at the very end.
  TarWriter w;
  w.file("a", "1");
  expect_entries(read_all(w.body() + std::string(512, '\0')),
                 {{"a", TarEntryType::file, 0644, "1", ""}});
  // Records are often padded past the marker; what follows it is not read.
  expect_entries(read_all(w.finish() + std::string(9000, '\x5a')),
                 {{"a", TarEntryType::file, 0644, "1", ""}});

  const std::string archive = w.finish();
  TarReader reader(archive);
  ASSERT_TRUE(reader.next().value().has_value());
  EXPECT_FALSE(reader.next().value().has_value());
  EXPECT_FALSE(reader.next().value().has_value());  // stays at the end
}

TEST(TarReader, MalformedArchivesAreErrors) {
  TarWriter one;
  one.file("file", "hello");
  const std::string good = one.finish();
  const std::string header = header_block(TarHeader::of("file").with_size(5));
  auto with_pax = [](std::string records) {
    TarWriter w;
    w.entry(TarHeader::of("pax", 'x'), records).file("f", "");
    return w.finish();
  };
  std::string negative_size(12, '\xff');
  std::string overflow_size(12, '\xff');
  overflow_size[0] = '\x80';

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty input", ""},
      {"half a block", good.substr(0, 100)},
      {"no end marker", one.body()},
      {"half an end marker", one.body() + std::string(300, '\0')},
      {"bad checksum", patch(good, 0, "X", false)},
      {"checksum not octal", patch(good, 148, "99999", false)},
      {"size past the end", patch(good, 124, "00000077777", true)},
      {"padding past the end", header + "hello"},
      {"size not octal", patch(good, 124, "0000000008x", true)},
      {"size with an inner space", patch(good, 124, "000 0000005", true)},
      {"negative base-256 size", patch(good, 124, negative_size, true)},
      {"base-256 size overflow", patch(good, 124, overflow_size, true)},
      {"mode not octal", patch(good, 100, "0abc", true)},
      {"mtime not octal", patch(good, 136, "zzz", true)},
      {"lone zero block before a header", std::string(512, '\0') + good},
      {"pax length past the data", with_pax("50 path=x\n")},
      {"pax zero length", with_pax("0 path=x\n")},
      {"pax length not a number", with_pax("1x path=x\n")},
      {"pax without a length", with_pax("path=x\n")},
      {"pax without a newline", with_pax("10 path=xyz")},
      {"pax without an equals sign", with_pax("8 pathx\n")},
      {"pax with an empty key", with_pax("7 =abc\n")},
      {"pax size not a number", with_pax(pax_record("size", "12a"))},
      {"pax size negative", with_pax(pax_record("size", "-1"))},
      {"pax size too large", with_pax(pax_record("size", "99999999999999999999"))},
      {"pax size past the end", with_pax(pax_record("size", "4096"))},
      {"pax path with a NUL", with_pax(pax_record("path", std::string("a\0b", 3)))},
      {"pax mtime malformed", with_pax(pax_record("mtime", "1.2.3"))},
      {"metadata without an entry", TarWriter().pax({{"path", "x"}}).finish()},
      {"GNU long name without an entry", TarWriter().gnu_long('L', "name").finish()},
      {"GNU long name too large",
       TarWriter().gnu_long('L', std::string(1 << 20, 'n')).file("f", "").finish()},
      {"empty name", TarWriter().file("", "x").finish()},
  };
  for (const auto& [name, archive] : cases) {
    SCOPED_TRACE(name);
    auto got = read_all(archive);
    ASSERT_TRUE(got.error.has_value());
    EXPECT_EQ(got.error->code, Errc::corrupt);
  }
}

TEST(TarReader, StaysFailedAfterAnError) {
  TarWriter w;
  w.file("a", "1").raw(std::string(512, 'x'));
  const std::string archive = w.finish();
  TarReader reader(archive);
  ASSERT_TRUE(reader.next().value().has_value());
  EXPECT_FALSE(reader.next());
  EXPECT_FALSE(reader.next());
}

TarWriter rich_archive() {
  TarWriter w;
  w.dir("sandbox-skel/")
      .file("sandbox-skel/.bashrc", "export PS1='$ '\n")
      .pax({{"path", "sandbox-skel/" + std::string(150, 'p')}, {"mtime", "12.5"}})
      .file("x", std::string(700, 'q'))
      .gnu_long('L', "sandbox-skel/" + std::string(120, 'g'))
      .gnu_long('K', std::string(110, 't'))
      .symlink("s", "t")
      .entry(TarHeader::of("n").with_prefix("sandbox-skel/pre"), "prefixed")
      .hardlink("sandbox-skel/hl", "sandbox-skel/.bashrc")
      .special("sandbox-skel/fifo", '6')
      .file("sandbox-skel/last", "end");
  return w;
}

TEST(TarReader, EveryTruncationIsAnError) {
  const TarWriter w = rich_archive();
  const std::string archive = w.finish();
  ASSERT_EQ(read_all(archive).entries.size(), 8u);
  for (std::size_t length = 0; length < archive.size(); ++length) {
    auto got = read_all(std::string_view(archive).substr(0, length));
    if (length < w.body().size() + 512) {
      EXPECT_TRUE(got.error.has_value()) << "length " << length;
    } else {
      EXPECT_FALSE(got.error.has_value()) << "length " << length;
    }
  }
}

TEST(TarReader, SurvivesRandomMutations) {
  const std::string archive = rich_archive().finish();
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<std::size_t> position(0, archive.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> coin(0, 3);
  // Bytes that mean something to a tar parser.
  const std::string interesting("07 \0\x80\xff/.x5LKx21g", 16);
  std::uniform_int_distribution<std::size_t> pick(0, interesting.size() - 1);
  int errors = 0;
  int clean = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string mutated = archive;
    const int flips = 1 + coin(rng);
    for (int i = 0; i < flips; ++i) {
      const std::size_t at = position(rng);
      // Mostly hit header fields, where the parsing is.
      mutated[at] = coin(rng) == 0 ? static_cast<char>(byte(rng)) : interesting[pick(rng)];
      // Fix the checksum half of the time, so the damage reaches the field parsers.
      if (coin(rng) < 2) fix_checksum(mutated, at / 512 * 512);
    }
    if (coin(rng) == 0) mutated.resize(position(rng));
    auto got = read_all(mutated);
    (got.error ? errors : clean)++;
  }
  // Both outcomes happen; the point is that neither crashes nor reads out of bounds.
  EXPECT_GT(errors, 0);
  EXPECT_GT(clean, 0);
}

}  // namespace
}  // namespace sandboxd::control
