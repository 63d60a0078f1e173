// The export's encodings (SPEC §2.7.10, §7): tar headers read back by the project's
// TarReader and by GNU tar, pax records for what ustar cannot hold, and gzip read back by
// zlib.
#include "tar_encoder.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gzip.h"
#include "tar_reader.h"

namespace sandboxd::control {
namespace {

std::string member_bytes(const TarMember& m, const std::string& data = "") {
  std::string out = tar_header(m);
  out += data;
  out += tar_padding(data.size());
  return out;
}

TarMember file(std::string path, std::uint64_t size, std::uint32_t mode = 0644) {
  TarMember m;
  m.path = std::move(path);
  m.size = size;
  m.mode = mode;
  m.mtime = 1700000000;
  m.uid = 1000;
  m.gid = 1000;
  return m;
}

TEST(PaxRecord, LengthCountsTheWholeRecord) {
  for (std::size_t n = 0; n < 1200; ++n) {
    const std::string record = pax_record("path", std::string(n, 'x'));
    const std::size_t space = record.find(' ');
    ASSERT_NE(space, std::string::npos);
    EXPECT_EQ(std::stoul(record.substr(0, space)), record.size()) << n;
    EXPECT_EQ(record.back(), '\n');
  }
}

TEST(TarEncoder, PaddingAndEndMarker) {
  EXPECT_EQ(tar_padding(0).size(), 0u);
  EXPECT_EQ(tar_padding(1).size(), 511u);
  EXPECT_EQ(tar_padding(512).size(), 0u);
  EXPECT_EQ(tar_padding(513).size(), 511u);
  EXPECT_EQ(tar_end().size(), 1024u);
  EXPECT_EQ(tar_end().find_first_not_of('\0'), std::string_view::npos);
}

TEST(TarEncoder, HeadersReadBackExactly) {
  const std::string split_path = std::string(80, 'd') + "/" + std::string(90, 'f');  // ustar prefix
  const std::string pax_path = std::string(300, 'p');  // no slash fits
  const std::string deep_path =
      std::string(150, 'a') + "/" + std::string(150, 'b');  // name too long
  TarMember dir;
  dir.path = "src";
  dir.type = TarMemberType::dir;
  dir.mode = 0755;
  dir.mtime = 1700000001;
  TarMember link;
  link.path = "link";
  link.type = TarMemberType::symlink;
  link.mode = 0777;
  link.link_target = "/" + std::string(200, 't');  // over ustar's 100 bytes
  TarMember exec = file("src/run.sh", 5, 04755);

  std::string archive = member_bytes(dir);
  archive += member_bytes(exec, "echo\n");
  archive += member_bytes(file(split_path, 3), "abc");
  archive += member_bytes(file(pax_path, 1), "x");
  archive += member_bytes(file(deep_path, 0));
  archive += member_bytes(link);
  archive += tar_end();
  ASSERT_EQ(archive.size() % 512, 0u);

  TarReader reader(archive);
  struct Expected {
    std::string path;
    TarEntryType type;
    std::string data;
    std::uint32_t mode;
    std::string link;
  };
  const std::vector<Expected> expected = {
      {"src/", TarEntryType::dir, "", 0755, ""},
      {"src/run.sh", TarEntryType::file, "echo\n", 04755, ""},
      {split_path, TarEntryType::file, "abc", 0644, ""},
      {pax_path, TarEntryType::file, "x", 0644, ""},
      {deep_path, TarEntryType::file, "", 0644, ""},
      {"link", TarEntryType::symlink, "", 0777, link.link_target},
  };
  for (const auto& want : expected) {
    auto next = reader.next();
    ASSERT_TRUE(next.has_value()) << next.error().detail;
    ASSERT_TRUE(next->has_value()) << "archive ended before " << want.path;
    const TarEntry& got = **next;
    EXPECT_EQ(got.path, want.path);
    EXPECT_EQ(got.type, want.type) << want.path;
    EXPECT_EQ(std::string(got.data), want.data) << want.path;
    EXPECT_EQ(got.mode, want.mode) << want.path;
    EXPECT_EQ(got.link_target, want.link) << want.path;
  }
  EXPECT_EQ(reader.next()->has_value(), false);
  // The split path needs no pax header; the others do.
  EXPECT_EQ(tar_header(file(split_path, 3)).size(), 512u);
  EXPECT_GT(tar_header(file(pax_path, 1)).size(), 512u);
  EXPECT_EQ(tar_header(file("short", 1)).size(), 512u);
}

TEST(TarEncoder, LargeIdsAndSizesGoToPaxRecords) {
  TarMember m = file("huge", std::uint64_t{9} << 30);  // 9 GiB: over ustar's 8 GiB - 1
  m.uid = 100000000;                                   // over 7 octal digits
  const std::string header = tar_header(m);
  EXPECT_NE(header.find(pax_record("size", std::to_string(std::uint64_t{9} << 30))),
            std::string::npos);
  EXPECT_NE(header.find(pax_record("uid", "100000000")), std::string::npos);
  EXPECT_EQ(header.find("gid="), std::string::npos);
}

// GNU tar, a real reader: it lists what we wrote, long names and links included.
TEST(TarEncoder, GnuTarListsTheArchive) {
  const std::string long_name = "dir/" + std::string(150, 'L') + ".txt";
  TarMember dir;
  dir.path = "dir";
  dir.type = TarMemberType::dir;
  dir.mode = 0755;
  TarMember link;
  link.path = "dir/link";
  link.type = TarMemberType::symlink;
  link.mode = 0777;
  link.link_target = "../" + std::string(120, 'T');
  std::string archive =
      member_bytes(dir) + member_bytes(file(long_name, 4), "data") + member_bytes(link);
  archive += tar_end();

  char tmpl[] = "/tmp/sandboxd-tar-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, archive.data(), archive.size()), static_cast<ssize_t>(archive.size()));
  ::close(fd);
  const std::string command = std::string("tar -tvf ") + tmpl + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string listing;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    listing.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  ::unlink(tmpl);
  ASSERT_EQ(status, 0) << listing;
  EXPECT_NE(listing.find(" dir/\n"), std::string::npos) << listing;
  EXPECT_NE(listing.find(long_name), std::string::npos) << listing;
  EXPECT_NE(listing.find("dir/link -> " + link.link_target), std::string::npos) << listing;
  EXPECT_NE(listing.find("1000/1000"), std::string::npos) << listing;
}

std::string gunzip(const std::string& in) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  std::array<unsigned char, 16384> buffer;
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = buffer.data();
    zs.avail_out = static_cast<uInt>(buffer.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(reinterpret_cast<const char*>(buffer.data()), buffer.size() - zs.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&zs);
  return out;
}

TEST(GzipEncoder, RoundTripsInPieces) {
  std::string input;
  std::uint32_t x = 12345;
  for (int i = 0; i < 300000; ++i) {
    x = x * 1103515245 + 12345;
    input += (i % 1000 < 500) ? static_cast<char>('a' + i % 7) : static_cast<char>(x >> 24);
  }
  auto encoder = GzipEncoder::make();
  ASSERT_TRUE(encoder.has_value());
  std::string compressed;
  for (std::size_t at = 0; at < input.size(); at += 70001) {
    ASSERT_TRUE(encoder->add(std::string_view(input).substr(at, 70001), compressed).has_value());
  }
  ASSERT_TRUE(encoder->finish(compressed).has_value());
  EXPECT_FALSE(encoder->add("more", compressed).has_value());  // the stream is over
  ASSERT_GE(compressed.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(compressed[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(compressed[1]), 0x8b);
  EXPECT_EQ(gunzip(compressed), input);

  auto empty = GzipEncoder::make();
  std::string nothing;
  ASSERT_TRUE(empty->finish(nothing).has_value());
  EXPECT_EQ(gunzip(nothing), "");
}

}  // namespace
}  // namespace sandboxd::control
