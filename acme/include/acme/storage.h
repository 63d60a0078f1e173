// Where ACME state lives: a tiny key/value seam (CertMagic's Storage, reduced).
//
// Keys are relative slash-separated paths of [A-Za-z0-9._-] components, never "." or "..":
//   accounts/<ca-host>[_<port>]/account.key   account.json
//   certs/<name>/key.pem   cert.pem   meta.json
//   pending.json
// Values are opaque bytes; most of them are secrets (keys), so an implementation keeps them
// private to the process's user and never logs them. `store` replaces a value atomically: a
// reader sees the old bytes or the new ones, never a mix, even across a crash.
//
// `try_lock` takes the one exclusive lock that serializes issuance between processes sharing
// the storage; it answers nullptr at once when another holder has it. Dropping the handle
// releases the lock. Implementations are thread-safe.
#pragma once

#include "base/result.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sandboxd::acme {

class StorageLock {
 public:
  virtual ~StorageLock() = default;
};

class Storage {
 public:
  virtual ~Storage() = default;

  // nullopt when the key holds nothing.
  virtual Result<std::optional<std::string>> load(std::string_view key) = 0;
  virtual Status store(std::string_view key, std::string_view data) = 0;
  // Removing a missing key succeeds.
  virtual Status remove(std::string_view key) = 0;
  virtual Result<std::unique_ptr<StorageLock>> try_lock() = 0;
};

// Files under `dir` (SPEC §10.3: `<data_dir>/acme`): directories 0700, files 0600, every
// write to an O_EXCL temp file in the same directory, fsync, rename, fsync of the directory.
// Looser modes found on existing entries are tightened with a warning. The lock is a
// non-blocking flock() of `<dir>/lock`. The directory is created on first use.
std::shared_ptr<Storage> make_file_storage(std::string dir);

// True when `key` is a valid storage key (see above).
bool valid_storage_key(std::string_view key);

// "accounts/<host>[_<port>]" for a directory URL; "accounts/invalid" when it does not parse.
std::string account_storage_prefix(std::string_view directory_url);

}  // namespace sandboxd::acme
