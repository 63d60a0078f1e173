// GET /v1/audit: the audit log (SPEC §8) read through the API, newest first, paged with an
// opaque cursor like GET /v1/sandboxes. Query: `sandbox_id`, `action`, `actor` (exact),
// `since` (RFC 3339), `limit` (1-1000, default 100), `cursor`. A bad parameter is 400
// `invalid_request`. Read-only tokens may read it; it is an operator's view (the route is
// operator-only: a token that acts for one external user gets 403).
//
// The handler runs on the control thread and reads through the store's read pool (one
// indexed query per page). The Store must outlive this object.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "http.h"

namespace sandboxd::store {
class Store;
}

namespace sandboxd::control {

class AuditApi {
 public:
  explicit AuditApi(store::Store& store) : store_(store) {}

  boost::asio::awaitable<Response> list(Request& r);

 private:
  store::Store& store_;
};

}  // namespace sandboxd::control
