#include "base/result.h"

#include <stdexcept>

namespace sandboxd {

std::string_view errc_name(Errc code) {
  switch (code) {
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::not_found: return "not_found";
    case Errc::conflict: return "conflict";
    case Errc::unavailable: return "unavailable";
    case Errc::timeout: return "timeout";
    case Errc::io: return "io";
    case Errc::corrupt: return "corrupt";
    case Errc::too_new: return "too_new";
    case Errc::cancelled: return "cancelled";
    case Errc::internal: return "internal";
  }
  return "internal";
}

std::string Error::message() const {
  std::string out(errc_name(code));
  if (!detail.empty()) {
    out += ": ";
    out += detail;
  }
  return out;
}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw std::runtime_error(e.message());
}

}  // namespace sandboxd
