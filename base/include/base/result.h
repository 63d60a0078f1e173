// Errors as values.
//
// Every recoverable failure in sandboxd is a `Result<T>`: either a T or an `Error` with a
// code from `Errc` and a human-readable detail. Error details are written for operators and
// API clients, so they must never contain secrets, env values or host paths outside a
// workspace. Only control/ maps codes to HTTP statuses. Values of these types are plain data:
// copyable, movable, safe to pass between threads.
#pragma once

#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace sandboxd {

enum class Errc {
  invalid_argument,  // the caller's input is wrong; retrying the same input fails again
  not_found,
  conflict,          // the state forbids the operation, or a uniqueness rule was hit
  unavailable,       // a dependency is down or busy; retrying later may succeed
  timeout,
  io,                // the file system or a socket failed
  corrupt,           // stored data is not what this build can read
  too_new,           // stored data was written by a newer build
  cancelled,
  internal,          // a bug or a condition this build does not handle
};

std::string_view errc_name(Errc code);

struct Error {
  Errc code = Errc::internal;
  std::string detail;

  Error() = default;
  Error(Errc c, std::string d) : code(c), detail(std::move(d)) {}

  // "not_found: no such sandbox"
  std::string message() const;
};

// Lets `Result<T>::value()` throw a `std::runtime_error` carrying the message when a caller
// chooses to treat a failure as fatal.
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

template <class T>
using Result = boost::system::result<T, Error>;

using Status = Result<void>;

inline Status ok() { return {}; }

}  // namespace sandboxd
