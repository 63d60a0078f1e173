// Encoding of POSIX tar (pax) archives for the workspace export (SPEC §2.7.10, §7).
//
// Pure functions over plain values: they build the header blocks of one member; the caller
// streams the member's content after them, then tar_padding() of its size, and ends the
// archive with tar_end(). A field that a ustar header cannot hold exactly (a path over 100
// bytes, a link target over 100 bytes, a size of 8 GiB or more, a uid or gid over 0o7777777,
// an mtime outside 0..0o77777777777) is written as a pax `x` record before the ustar header,
// which then carries a shortened or clamped value. Thread-safe (no state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sandboxd::control {

enum class TarMemberType : char { file = '0', symlink = '2', dir = '5' };

struct TarMember {
  std::string path;  // relative, '/'-separated; a directory's path may end with '/'
  TarMemberType type = TarMemberType::file;
  std::uint32_t mode = 0644;  // permission bits (masked to 07777)
  std::uint64_t size = 0;     // content bytes that follow; 0 for directories and links
  std::int64_t mtime = 0;     // seconds since the epoch
  std::uint64_t uid = 0;
  std::uint64_t gid = 0;
  std::string link_target;  // symlinks only: the link's text, stored as is
};

inline constexpr std::size_t kTarBlock = 512;

// The header blocks of `member`: an optional pax header (its own header block plus the
// records, padded) and the ustar header block. Always a multiple of 512 bytes.
std::string tar_header(const TarMember& member);

// The zero bytes that pad `size` bytes of content to a whole number of blocks (0-511 bytes).
std::string_view tar_padding(std::uint64_t size);

// The end-of-archive marker: two zero blocks.
std::string_view tar_end();

// One pax record, "<length> <key>=<value>\n", where length counts the whole record.
std::string pax_record(std::string_view key, std::string_view value);

}  // namespace sandboxd::control
