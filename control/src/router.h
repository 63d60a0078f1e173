// Route matching for the control API: an exact table of (method, path pattern) entries.
// Patterns are literal segments and `{name}` segments; a parameter matches one non-empty
// segment and is percent-decoded exactly once (SPEC §1.1). No regexes, no fallthrough.
#pragma once

#include "api_error.h"
#include "http.h"

#include <boost/json/fwd.hpp>

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::control {

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

enum class Family { legacy, v1 };

struct Route {
  std::string method;
  std::string pattern;
  Handler handler;
  bool open = false;      // no authentication (healthz, readyz, llm.txt)
  bool mutating = false;  // read-only tokens get 403
  bool json_body = false;  // reads a JSON body (Content-Type checked, size capped)
  bool raw_body = false;   // takes raw bytes of any type, capped at files.write_max (PUT …/files)
  bool operator_only = false;  // a token that acts for one user gets 403 (metrics, certificates)
};

struct RouteMatch {
  const Route* route = nullptr;     // null: no route for this method
  std::vector<std::string> params;  // decoded path parameters
  bool path_known = false;          // some route has this path (→ 405, not 404)
  std::string allow;                // methods for this path, for the Allow header
  bool bad_escape = false;          // a parameter had a malformed %-escape
};

class Router {
 public:
  void add(Route route);
  RouteMatch match(std::string_view method, std::string_view path) const;

 private:
  std::vector<Route> routes_;
};

Family family_of(std::string_view path);

// The error body of the path's family (SPEC §2.2): v1 under /v1/, legacy elsewhere.
Response error_response(std::string_view path, int status, std::string_view code,
                        std::string_view message);

// error_response for `e`, with its extra headers (Retry-After, Allow, …).
Response error_answer(const Request& req, const ApiError& e);

// `v` serialized as the body of a `status` answer.
Response json_answer(int status, const boost::json::value& v);

// One query parameter (absent: nullopt); given more than once → 400 (SPEC §2.1).
ApiResult<std::optional<std::string>> query_string(const Request& r, std::string_view name);

// A tenant's token (one that acts for one external user) creates, lists, claims and purges
// for its own user only: 403 when `user` is another.
std::optional<ApiError> tenant_mismatch(const Request& r, std::string_view user);

// A user filter for a tenant's token: set to its own user; 403 when it named another.
std::optional<ApiError> scope_to_tenant(const Request& r, std::optional<std::string>& user_filter);

}  // namespace sandboxd::control
