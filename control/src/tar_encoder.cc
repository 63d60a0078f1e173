#include "tar_encoder.h"

#include <algorithm>
#include <array>

namespace sandboxd::control {
namespace {

// Offsets and widths of the ustar header fields (POSIX.1-1988 as extended by pax).
constexpr std::size_t kName = 0, kNameLen = 100;
constexpr std::size_t kMode = 100, kUid = 108, kGid = 116, kIdLen = 8;
constexpr std::size_t kSize = 124, kMtime = 136, kNumLen = 12;
constexpr std::size_t kChecksum = 148;
constexpr std::size_t kType = 156;
constexpr std::size_t kLink = 157, kLinkLen = 100;
constexpr std::size_t kMagic = 257;
constexpr std::size_t kPrefix = 345, kPrefixLen = 155;

constexpr std::uint64_t kMaxId = 07777777;             // 7 octal digits
constexpr std::uint64_t kMaxNumber = 077777777777ULL;  // 11 octal digits

constexpr std::array<char, 2 * kTarBlock> kZeros{};

// Writes `value` as `width - 1` zero-padded octal digits and a NUL.
void put_octal(std::string& block, std::size_t offset, std::size_t width, std::uint64_t value) {
  for (std::size_t i = width - 1; i-- > 0;) {
    block[offset + i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  block[offset + width - 1] = '\0';
}

void put_text(std::string& block, std::size_t offset, std::size_t width, std::string_view text) {
  block.replace(offset, std::min(width, text.size()), text.substr(0, width));
}

void put_checksum(std::string& block) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < kTarBlock; ++i) {
    const bool in_field = i >= kChecksum && i < kChecksum + 8;
    sum += in_field ? static_cast<std::uint32_t>(' ') : static_cast<unsigned char>(block[i]);
  }
  put_octal(block, kChecksum, 7, sum);  // six digits and a NUL
  block[kChecksum + 7] = ' ';
}

struct UstarFields {
  std::string_view name;
  std::string_view prefix;
  char type = '0';
  std::uint32_t mode = 0;
  std::uint64_t size = 0;
  std::uint64_t mtime = 0;
  std::uint64_t uid = 0;
  std::uint64_t gid = 0;
  std::string_view link;
};

std::string ustar_block(const UstarFields& f) {
  std::string block(kTarBlock, '\0');
  put_text(block, kName, kNameLen, f.name);
  put_octal(block, kMode, kIdLen, f.mode & 07777);
  put_octal(block, kUid, kIdLen, std::min(f.uid, kMaxId));
  put_octal(block, kGid, kIdLen, std::min(f.gid, kMaxId));
  put_octal(block, kSize, kNumLen, std::min(f.size, kMaxNumber));
  put_octal(block, kMtime, kNumLen, std::min(f.mtime, kMaxNumber));
  block[kType] = f.type;
  put_text(block, kLink, kLinkLen, f.link);
  put_text(block, kMagic, 6, std::string_view("ustar\0", 6));
  put_text(block, kMagic + 6, 2, "00");
  put_text(block, kPrefix, kPrefixLen, f.prefix);
  put_checksum(block);
  return block;
}

// Splits a path over 100 bytes into ustar's prefix and name at a '/', when that represents it
// exactly: prefix at most 155 bytes, name 1 to 100 bytes.
bool split_ustar(std::string_view path, std::string_view& prefix, std::string_view& name) {
  if (path.size() <= kNameLen) {
    prefix = {};
    name = path;
    return true;
  }
  // The last usable slash gives the longest prefix; search from where the name would fit.
  const std::size_t from = std::min(path.size() - 1, kPrefixLen);
  for (std::size_t slash = path.rfind('/', from); slash != std::string_view::npos && slash > 0;
       slash = path.rfind('/', slash - 1)) {
    const std::size_t name_len = path.size() - slash - 1;
    if (name_len > kNameLen) break;  // an earlier slash only makes the name longer
    if (name_len == 0) continue;
    prefix = path.substr(0, slash);
    name = path.substr(slash + 1);
    return true;
  }
  return false;
}

std::string_view base_name(std::string_view path) {
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  const std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string pax_record(std::string_view key, std::string_view value) {
  const std::size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  std::size_t length = body + 1;
  while (std::to_string(length).size() + body != length) ++length;
  std::string record = std::to_string(length);
  record += ' ';
  record += key;
  record += '=';
  record += value;
  record += '\n';
  return record;
}

std::string tar_header(const TarMember& m) {
  std::string path = m.path;
  if (m.type == TarMemberType::dir && (path.empty() || path.back() != '/')) path += '/';
  const std::uint64_t mtime = m.mtime < 0 ? 0 : static_cast<std::uint64_t>(m.mtime);

  std::string records;
  UstarFields f;
  f.type = static_cast<char>(m.type);
  f.mode = m.mode;
  f.size = m.size;
  f.mtime = mtime;
  f.uid = m.uid;
  f.gid = m.gid;
  f.link = m.link_target;
  if (!split_ustar(path, f.prefix, f.name)) {
    records += pax_record("path", path);
    f.prefix = {};
    f.name = std::string_view(path).substr(0, kNameLen);
  }
  if (m.link_target.size() > kLinkLen) {
    records += pax_record("linkpath", m.link_target);
    f.link = std::string_view(m.link_target).substr(0, kLinkLen);
  }
  if (m.size > kMaxNumber) records += pax_record("size", std::to_string(m.size));
  if (mtime > kMaxNumber) records += pax_record("mtime", std::to_string(mtime));
  if (m.uid > kMaxId) records += pax_record("uid", std::to_string(m.uid));
  if (m.gid > kMaxId) records += pax_record("gid", std::to_string(m.gid));

  std::string out;
  if (!records.empty()) {
    std::string pax_name = "PaxHeaders/";
    pax_name += base_name(path).substr(0, kNameLen - pax_name.size());
    UstarFields x;
    x.name = pax_name;
    x.type = 'x';
    x.mode = 0644;
    x.size = records.size();
    x.mtime = std::min(mtime, kMaxNumber);
    out += ustar_block(x);
    out += records;
    out += tar_padding(records.size());
  }
  out += ustar_block(f);
  return out;
}

std::string_view tar_padding(std::uint64_t size) {
  const std::size_t rest = size % kTarBlock;
  return std::string_view(kZeros.data(), rest == 0 ? 0 : kTarBlock - rest);
}

std::string_view tar_end() { return std::string_view(kZeros.data(), kZeros.size()); }

}  // namespace sandboxd::control
