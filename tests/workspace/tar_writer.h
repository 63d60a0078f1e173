// A tiny tar writer for tests: ustar headers, pax `x` records, GNU `L`/`K` long names and
// raw headers with any field value, so tests can build both good and malformed archives.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandboxd::control::testing {

struct TarHeader {
  std::string name;
  char type = '0';
  std::uint32_t mode = 0644;
  std::uint64_t size = 0;
  std::int64_t mtime = 1700000000;
  std::string link;
  std::string prefix;  // ustar prefix field
  bool gnu_magic = false;

  static TarHeader of(std::string name, char type = '0', std::uint32_t mode = 0644) {
    TarHeader h;
    h.name = std::move(name);
    h.type = type;
    h.mode = mode;
    return h;
  }
  TarHeader& with_size(std::uint64_t v) {
    size = v;
    return *this;
  }
  TarHeader& with_mtime(std::int64_t v) {
    mtime = v;
    return *this;
  }
  TarHeader& with_link(std::string v) {
    link = std::move(v);
    return *this;
  }
  TarHeader& with_prefix(std::string v) {
    prefix = std::move(v);
    return *this;
  }
  TarHeader& with_gnu_magic() {
    gnu_magic = true;
    return *this;
  }
};

// Sets the checksum field of the 512-byte header at `offset` to match its bytes.
inline void fix_checksum(std::string& archive, std::size_t offset) {
  unsigned sum = 0;
  for (std::size_t i = 0; i < 512; ++i) {
    const bool in_field = i >= 148 && i < 156;
    sum += in_field ? ' ' : static_cast<unsigned char>(archive[offset + i]);
  }
  char text[8];
  std::snprintf(text, sizeof text, "%06o", sum & 0777777);
  archive.replace(offset + 148, 6, text, 6);
  archive[offset + 154] = '\0';
  archive[offset + 155] = ' ';
}

inline std::string octal(std::uint64_t value, std::size_t width) {
  std::string text(width - 1, '0');
  for (std::size_t i = width - 1; i-- > 0 && value != 0; value >>= 3) {
    text[i] = static_cast<char>('0' + (value & 7));
  }
  return text;  // the caller's field keeps a NUL after it
}

inline std::string header_block(const TarHeader& h) {
  std::string b(512, '\0');
  auto put = [&b](std::size_t offset, std::size_t length, std::string_view text) {
    b.replace(offset, std::min(length, text.size()), text.substr(0, length));
  };
  put(0, 100, h.name);
  put(100, 8, octal(h.mode, 8));
  put(108, 8, octal(1000, 8));
  put(116, 8, octal(1000, 8));
  put(124, 12, octal(h.size, 12));
  put(136, 12, octal(static_cast<std::uint64_t>(h.mtime), 12));
  b[156] = h.type;
  put(157, 100, h.link);
  if (h.gnu_magic) {
    put(257, 8, std::string_view("ustar  \0", 8));
  } else {
    put(257, 6, std::string_view("ustar\0", 6));
    put(263, 2, "00");
  }
  put(265, 32, "user");
  put(297, 32, "group");
  put(345, 155, h.prefix);  // GNU headers keep other data here; readers must ignore it
  fix_checksum(b, 0);
  return b;
}

inline std::string pad(std::string_view data) {
  std::string out(data);
  out.resize((data.size() + 511) / 512 * 512, '\0');
  return out;
}

// One pax record, "<len> key=value\n", where len counts the whole record.
inline std::string pax_record(std::string_view key, std::string_view value) {
  const std::size_t body = key.size() + value.size() + 3;  // space, '=', newline
  std::size_t length = body + 1;
  while (std::to_string(length).size() + body != length) ++length;
  return std::to_string(length) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

class TarWriter {
 public:
  TarWriter& entry(TarHeader h, std::string_view data = {}) {
    if (h.size == 0) h.size = data.size();
    bytes_ += header_block(h);
    bytes_ += pad(data);
    return *this;
  }
  TarWriter& file(std::string name, std::string_view data, std::uint32_t mode = 0644,
                  std::int64_t mtime = 1700000000) {
    return entry(TarHeader::of(std::move(name), '0', mode).with_mtime(mtime), data);
  }
  TarWriter& dir(std::string name, std::uint32_t mode = 0755) {
    return entry(TarHeader::of(std::move(name), '5', mode));
  }
  TarWriter& symlink(std::string name, std::string target) {
    return entry(TarHeader::of(std::move(name), '2', 0777).with_link(std::move(target)));
  }
  TarWriter& hardlink(std::string name, std::string target) {
    return entry(TarHeader::of(std::move(name), '1').with_link(std::move(target)));
  }
  TarWriter& special(std::string name, char type) {
    return entry(TarHeader::of(std::move(name), type));
  }
  // A pax extended header for the next entry.
  TarWriter& pax(const std::vector<std::pair<std::string, std::string>>& records) {
    std::string data;
    for (const auto& [key, value] : records) data += pax_record(key, value);
    return entry(TarHeader::of("PaxHeaders/x", 'x'), data);
  }
  TarWriter& gnu_long(char type, std::string_view name) {
    std::string data(name);
    data.push_back('\0');
    return entry(TarHeader::of("././@LongLink", type).with_gnu_magic(), data);
  }
  TarWriter& raw(std::string_view bytes) {
    bytes_ += bytes;
    return *this;
  }
  // The archive with its two-block end marker.
  std::string finish() const { return bytes_ + std::string(1024, '\0'); }
  const std::string& body() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace sandboxd::control::testing
