#include "tar_reader.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace sandboxd::control {
namespace {

constexpr std::size_t kBlock = 512;
// Metadata (pax records, GNU long names) larger than this is refused: real archives carry a
// few hundred bytes, and the reader copies it.
constexpr std::uint64_t kMaxMetadata = 1 << 20;

// Header field offsets and lengths (POSIX ustar).
struct Field {
  std::size_t offset;
  std::size_t length;
};
constexpr Field kName{0, 100};
constexpr Field kMode{100, 8};
constexpr Field kSize{124, 12};
constexpr Field kMtime{136, 12};
constexpr Field kChecksum{148, 8};
constexpr std::size_t kTypeflag = 156;
constexpr Field kLinkname{157, 100};
constexpr Field kMagic{257, 6};
constexpr Field kPrefix{345, 155};
constexpr Field kStarPrefix{345, 131};
constexpr Field kStarTrailer{508, 4};

std::string_view field(std::string_view block, Field f) { return block.substr(f.offset, f.length); }

// A NUL-terminated string field (not necessarily terminated when it fills the field).
std::string_view c_string(std::string_view bytes) {
  return bytes.substr(0, std::min(bytes.size(), bytes.find('\0')));
}

bool is_zero_block(std::string_view block) {
  return std::all_of(block.begin(), block.end(), [](char c) { return c == '\0'; });
}

// A numeric header field: octal text padded with spaces or NULs, or the GNU base-256 form
// (high bit of the first byte set) that writers use for values octal cannot hold.
std::optional<std::int64_t> parse_numeric(std::string_view f) {
  if (!f.empty() && (static_cast<unsigned char>(f[0]) & 0x80) != 0) {
    const bool negative = (static_cast<unsigned char>(f[0]) & 0x40) != 0;
    const unsigned char flip = negative ? 0xff : 0x00;
    std::uint64_t magnitude = 0;
    for (std::size_t i = 0; i < f.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(static_cast<unsigned char>(f[i]) ^ flip);
      if (i == 0) c &= 0x7f;
      if ((magnitude >> 55) != 0) return std::nullopt;  // the shift would leave 63 bits
      magnitude = (magnitude << 8) | c;
    }
    if (magnitude > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    // Two's complement: a negative value is the complement of the flipped magnitude.
    const auto value = static_cast<std::int64_t>(magnitude);
    return negative ? -value - 1 : value;
  }
  auto is_pad = [](char c) { return c == ' ' || c == '\0'; };
  while (!f.empty() && is_pad(f.front())) f.remove_prefix(1);
  while (!f.empty() && is_pad(f.back())) f.remove_suffix(1);
  std::int64_t value = 0;
  for (char c : f) {
    if (c < '0' || c > '7') return std::nullopt;
    if (value > (std::numeric_limits<std::int64_t>::max() >> 3)) return std::nullopt;
    value = value * 8 + (c - '0');
  }
  return value;
}

// A non-negative decimal, as pax `size` and record lengths are written.
std::optional<std::uint64_t> parse_decimal(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

// pax `mtime`: seconds with an optional sign and fraction; the fraction is dropped.
std::optional<std::int64_t> parse_pax_time(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  const std::size_t dot = text.find('.');
  std::string_view fraction;
  if (dot != std::string_view::npos) {
    fraction = text.substr(dot + 1);
    text = text.substr(0, dot);
  }
  if (!std::all_of(fraction.begin(), fraction.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  auto seconds = parse_decimal(text);
  if (!seconds || *seconds > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return std::nullopt;
  }
  const auto value = static_cast<std::int64_t>(*seconds);
  return negative ? -value : value;
}

bool checksum_matches(std::string_view block) {
  auto stored = parse_numeric(field(block, kChecksum));
  if (!stored) return false;
  // Historic writers summed signed chars; accept either sum, as GNU tar and Go do.
  std::int64_t unsigned_sum = 0;
  std::int64_t signed_sum = 0;
  for (std::size_t i = 0; i < block.size(); ++i) {
    const bool in_checksum = i >= kChecksum.offset && i < kChecksum.offset + kChecksum.length;
    const char c = in_checksum ? ' ' : block[i];
    unsigned_sum += static_cast<unsigned char>(c);
    signed_sum += static_cast<signed char>(c);
  }
  return *stored == unsigned_sum || *stored == signed_sum;
}

// Metadata gathered from pax and GNU headers for the entry that follows them.
struct Pending {
  std::optional<std::string> pax_path;
  std::optional<std::string> pax_linkpath;
  std::optional<std::uint64_t> pax_size;
  std::optional<std::int64_t> pax_mtime;
  std::optional<std::string> gnu_name;
  std::optional<std::string> gnu_link;

  bool empty() const {
    return !pax_path && !pax_linkpath && !pax_size && !pax_mtime && !gnu_name && !gnu_link;
  }
};

// Parses "<len> <key>=<value>\n" records. Only the keys sandboxd uses are kept; the others
// are still checked for form. Returns an error detail, or an empty string.
std::string parse_pax(std::string_view records, Pending* out) {
  while (!records.empty()) {
    const std::size_t space = records.find(' ');
    if (space == std::string_view::npos) return "pax record without a length";
    auto length = parse_decimal(records.substr(0, space));
    if (!length || *length <= space + 1 || *length > records.size()) {
      return "pax record length is out of range";
    }
    const std::string_view record = records.substr(0, *length);
    records.remove_prefix(*length);
    if (record.back() != '\n') return "pax record does not end in a newline";
    const std::string_view body = record.substr(space + 1, record.size() - space - 2);
    const std::size_t eq = body.find('=');
    if (eq == std::string_view::npos || eq == 0) return "pax record without a key";
    const std::string_view key = body.substr(0, eq);
    const std::string_view value = body.substr(eq + 1);
    if (key == "path" || key == "linkpath") {
      if (value.find('\0') != std::string_view::npos) return "pax path contains a NUL byte";
      (key == "path" ? out->pax_path : out->pax_linkpath) = std::string(value);
    } else if (key == "size") {
      auto size = parse_decimal(value);
      if (!size || *size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return "pax size is not a valid number";
      }
      out->pax_size = *size;
    } else if (key == "mtime") {
      auto mtime = parse_pax_time(value);
      if (!mtime) return "pax mtime is not a valid number";
      out->pax_mtime = *mtime;
    }
  }
  return {};
}

}  // namespace

std::string_view tar_entry_type_name(TarEntryType type) {
  switch (type) {
    case TarEntryType::file:
      return "file";
    case TarEntryType::dir:
      return "dir";
    case TarEntryType::symlink:
      return "symlink";
    case TarEntryType::hardlink:
      return "hardlink";
    case TarEntryType::other:
      return "other";
  }
  return "other";
}

Error TarReader::fail(std::string detail) {
  failed_ = true;
  return Error{Errc::corrupt, "tar archive at byte " + std::to_string(pos_) + ": " + detail};
}

Result<std::optional<TarEntry>> TarReader::next() {
  if (failed_) return Error{Errc::corrupt, "tar archive: reader already failed"};
  if (done_) return std::optional<TarEntry>{};

  Pending pending;
  for (;;) {
    if (archive_.size() - pos_ < kBlock) {
      return fail("archive is truncated: no end-of-archive marker");
    }
    const std::string_view block = archive_.substr(pos_, kBlock);

    if (is_zero_block(block)) {
      // The end marker is two zero blocks; like GNU tar and Go, accept one at the very end.
      const std::size_t after = pos_ + kBlock;
      if (archive_.size() - after >= kBlock && !is_zero_block(archive_.substr(after, kBlock))) {
        return fail("a lone zero block in the middle of the archive");
      }
      if (!pending.empty()) return fail("metadata header without an entry after it");
      done_ = true;
      return std::optional<TarEntry>{};
    }
    if (!checksum_matches(block)) return fail("header checksum mismatch");

    const char typeflag = block[kTypeflag];
    auto header_size = parse_numeric(field(block, kSize));
    if (!header_size || *header_size < 0) return fail("header size is not a valid number");
    auto mode = parse_numeric(field(block, kMode));
    if (!mode || *mode < 0) return fail("header mode is not a valid number");
    auto mtime = parse_numeric(field(block, kMtime));
    if (!mtime) return fail("header mtime is not a valid number");

    const bool is_meta = typeflag == 'x' || typeflag == 'g' || typeflag == 'L' || typeflag == 'K';
    std::uint64_t size = static_cast<std::uint64_t>(*header_size);
    if (!is_meta && pending.pax_size) size = *pending.pax_size;

    TarEntry entry;
    bool has_data = true;
    switch (typeflag) {
      case '0':
      case '\0':
      case '7':
        entry.type = TarEntryType::file;
        break;
      case '1':
        entry.type = TarEntryType::hardlink;
        has_data = false;
        break;
      case '2':
        entry.type = TarEntryType::symlink;
        has_data = false;
        break;
      case '5':
        entry.type = TarEntryType::dir;
        has_data = false;
        break;
      case '3':
      case '4':
      case '6':
        entry.type = TarEntryType::other;
        has_data = false;
        break;
      case 'D':
        entry.type = TarEntryType::dir;
        break;  // GNU dump dir: the data is a listing
      default:
        entry.type = TarEntryType::other;
        break;
    }
    if (!has_data) size = 0;

    const std::size_t data_offset = pos_ + kBlock;
    const std::size_t remaining = archive_.size() - data_offset;
    if (size > remaining) return fail("entry data runs past the end of the archive");
    const std::size_t padded = (size + kBlock - 1) / kBlock * kBlock;
    if (padded > remaining) return fail("entry padding runs past the end of the archive");
    const std::string_view data = archive_.substr(data_offset, size);

    if (is_meta) {
      if (size > kMaxMetadata) return fail("metadata header is too large");
      pos_ = data_offset + padded;
      if (typeflag == 'x' || typeflag == 'g') {
        Pending parsed;
        if (auto problem = parse_pax(data, &parsed); !problem.empty()) return fail(problem);
        if (typeflag == 'g') continue;  // global defaults: nothing sandboxd needs
        if (parsed.pax_path) pending.pax_path = std::move(parsed.pax_path);
        if (parsed.pax_linkpath) pending.pax_linkpath = std::move(parsed.pax_linkpath);
        if (parsed.pax_size) pending.pax_size = parsed.pax_size;
        if (parsed.pax_mtime) pending.pax_mtime = parsed.pax_mtime;
      } else {
        (typeflag == 'L' ? pending.gnu_name : pending.gnu_link) = std::string(c_string(data));
      }
      continue;
    }

    // The header name, joined with the ustar (or star) prefix when the format has one.
    std::string path(c_string(field(block, kName)));
    if (field(block, kMagic) == std::string_view("ustar\0", 6)) {
      const bool star = field(block, kStarTrailer) == std::string_view("tar\0", 4);
      const std::string_view prefix = c_string(field(block, star ? kStarPrefix : kPrefix));
      if (!prefix.empty()) path = std::string(prefix) + "/" + path;
    }
    std::string link(c_string(field(block, kLinkname)));
    if (pending.pax_path) path = *pending.pax_path;
    if (pending.pax_linkpath) link = *pending.pax_linkpath;
    if (pending.gnu_name) path = *pending.gnu_name;
    if (pending.gnu_link) link = *pending.gnu_link;
    if (path.empty()) return fail("entry has an empty name");
    // Old tars mark directories with a trailing slash on a plain-file entry.
    if (typeflag == '\0' && path.back() == '/') entry.type = TarEntryType::dir;

    entry.path = std::move(path);
    if (entry.type == TarEntryType::symlink || entry.type == TarEntryType::hardlink) {
      entry.link_target = std::move(link);
    }
    entry.mode = static_cast<std::uint32_t>(*mode & 07777);
    entry.mtime = pending.pax_mtime ? *pending.pax_mtime : *mtime;
    if (entry.type == TarEntryType::file || entry.type == TarEntryType::other) {
      entry.size = size;
      entry.data = data;
    }
    pos_ = data_offset + padded;
    return std::optional<TarEntry>(std::move(entry));
  }
}

}  // namespace sandboxd::control
