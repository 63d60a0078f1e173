// An answer-shaped error of the control API: status, machine code (SPEC §2.2) and message.
// Handlers and validators return it; only the routing layer renders it, in the envelope of
// the path's family (legacy or v1).
#pragma once

#include "base/result.h"

#include <boost/system/result.hpp>

#include <string>
#include <utility>
#include <vector>

namespace sandboxd::control {

struct ApiError {
  int status = 500;
  std::string code = "internal";
  std::string message;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Retry-After
  // The whole body on legacy routes, where SPEC §2.5 gives an answer its own fields (the
  // admission refusal's mem_available_percent); "" renders the usual legacy envelope.
  std::string legacy_body{};

  static ApiError invalid(std::string message) { return {400, "invalid_request", std::move(message), {}}; }
  static ApiError invalid_id(std::string message) { return {400, "invalid_id", std::move(message), {}}; }
  static ApiError not_found(std::string message) { return {404, "not_found", std::move(message), {}}; }
  static ApiError conflict(std::string message) { return {409, "conflict", std::move(message), {}}; }
  static ApiError internal(std::string message) { return {500, "internal", std::move(message), {}}; }
  static ApiError unavailable(std::string message, int retry_after = 5) {
    return {503, "unavailable", std::move(message), {{"Retry-After", std::to_string(retry_after)}}};
  }
  static ApiError timeout(std::string message) {
    return {504, "timeout", std::move(message), {{"Retry-After", "1"}}};
  }

  // Maps a module error (store, docker, workspace) to its answer (SPEC §2.2, §13).
  static ApiError from(const Error& e);
};

[[noreturn]] void throw_exception_from_error(const ApiError& e, const boost::source_location&);

template <class T>
using ApiResult = boost::system::result<T, ApiError>;

}  // namespace sandboxd::control
