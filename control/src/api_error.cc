#include "api_error.h"

#include <stdexcept>

namespace sandboxd::control {

ApiError ApiError::from(const Error& e) {
  switch (e.code) {
    case Errc::invalid_argument: return invalid(e.detail);
    case Errc::not_found: return not_found(e.detail);
    case Errc::conflict: return conflict(e.detail);
    case Errc::unavailable: return unavailable(e.detail);
    case Errc::timeout: return timeout(e.detail);
    case Errc::cancelled: return unavailable(e.detail);
    case Errc::io:
    case Errc::corrupt:
    case Errc::too_new:
    case Errc::internal: return internal(e.detail);
  }
  return internal(e.detail);
}

void throw_exception_from_error(const ApiError& e, const boost::source_location&) {
  throw std::runtime_error(e.code + ": " + e.message);
}

}  // namespace sandboxd::control
