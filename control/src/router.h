// Request handling as a pure function of the request, apart from the I/O loop
// (api_server.cc). Plain structs so it is tested without sockets.
#pragma once

#include "control/api_server.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandboxd::control {

struct Request {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // origin-form, e.g. "/readyz?x=1"
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond the common ones
  bool close = false;  // close the connection after this answer
};

// The error body of the path's family (SPEC §2.2): v1 under /v1/, legacy elsewhere.
Response error_response(std::string_view path, int status, std::string_view code,
                        std::string_view message);

Response route(const Request& request, ReadinessSource& readiness);

}  // namespace sandboxd::control
