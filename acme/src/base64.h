// The acme module's spelling of base/base64.h.
#pragma once

#include "base/base64.h"

namespace sandboxd::acme {

using sandboxd::base64_decode;
using sandboxd::base64_encode;
using sandboxd::base64url_decode;
using sandboxd::base64url_encode;

}  // namespace sandboxd::acme
