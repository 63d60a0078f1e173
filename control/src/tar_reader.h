// A reader for tar archives held in memory: POSIX ustar, pax extended headers and the GNU
// long-name extensions, which covers what Docker's `GET /containers/{id}/archive` returns.
//
// The input is untrusted. Every header checksum is verified and every length is checked
// against the bytes that remain, so malformed input yields an Error (Errc::corrupt), never a
// crash or a read past the end. After the first Error the reader stays failed. Paths and
// link targets are returned as stored (they may be absolute or contain `..`); judging them
// is the caller's job. They never contain a NUL byte.
//
// A TarReader does not own the archive: the bytes passed to the constructor must outlive the
// reader and every TarEntry::data it returns. One reader is not safe for concurrent use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sandboxd::control {

enum class TarEntryType { file, dir, symlink, hardlink, other };

std::string_view tar_entry_type_name(TarEntryType type);

struct TarEntry {
  std::string path;  // as stored; pax `path` and GNU `L` override the header name
  TarEntryType type = TarEntryType::other;
  std::uint32_t mode = 0;   // permission bits as stored, including setuid/setgid/sticky (07777)
  std::uint64_t size = 0;   // length of `data`; 0 for every type but file and other
  std::string link_target;  // symlink text or hardlink target path; empty otherwise
  std::int64_t mtime = 0;   // seconds since the epoch
  std::string_view data;    // the entry's content, a view into the archive
};

class TarReader {
 public:
  explicit TarReader(std::string_view archive) : archive_(archive) {}

  // The next entry, or std::nullopt once the end-of-archive marker is reached. Metadata
  // headers (pax `x`/`g`, GNU `L`/`K`) are consumed here and never returned.
  Result<std::optional<TarEntry>> next();

 private:
  Error fail(std::string detail);

  std::string_view archive_;
  std::size_t pos_ = 0;  // offset of the next header block
  bool done_ = false;
  bool failed_ = false;
};

}  // namespace sandboxd::control
