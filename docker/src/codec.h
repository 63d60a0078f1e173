// JSON bodies of the Engine API in and out, and the small text helpers around them.
//
// Encoders take the plain structs of docker/types.h and return the request body. Decoders are
// strict about the document (it must parse, and be an object or array as the API says) and
// lenient about fields: a missing, null or mistyped field reads as its default, because the
// engine omits or nulls empty values and fields vary between API versions. A document that
// does not parse is a `protocol` error. Pure functions; safe from any thread.
#pragma once

#include "base/result.h"
#include "docker/types.h"

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandboxd::docker::detail {

std::string encode_container_create(const ContainerSpec& spec);
std::string encode_network_create(const NetworkSpec& spec);
std::string encode_network_connect(std::string_view container, const EndpointConfig& endpoint);
std::string encode_exec_create(const ExecSpec& spec, const std::vector<std::string>& extra_env);
// The `filters` query value: {"name": ["v", ...], ...}, names with no values left out.
std::string encode_filters(const std::map<std::string, std::vector<std::string>>& filters);

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string url_encode(std::string_view text);

Result<VersionInfo> decode_version(std::string_view body);
Result<ImageInfo> decode_image(std::string_view body);
Result<NetworkInfo> decode_network(std::string_view body);
Result<ContainerInfo> decode_container(std::string_view body);
Result<std::vector<ContainerSummary>> decode_container_list(std::string_view body);
Result<ContainerCreated> decode_created(std::string_view body);
Result<std::string> decode_id(std::string_view body);  // {"Id": "..."}
Result<ExecInfo> decode_exec(std::string_view body);
Result<WaitResult> decode_wait(std::string_view body);
Result<Event> decode_event(std::string_view line);

// Docker's error text: the `message` of a JSON error body, else the body itself, trimmed.
std::string error_message(std::string_view body);

// "1.41" -> {1, 41}; nullopt if not of that form.
std::optional<std::pair<int, int>> parse_api_version(std::string_view text);

// min(engine_max, kMaxApiVersion), refused (kind daemon) when below kMinApiVersion or below
// the engine's own minimum (empty engine_min: unknown).
Result<std::string> choose_api_version(std::string_view engine_max, std::string_view engine_min);

}  // namespace sandboxd::docker::detail
