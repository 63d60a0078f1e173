// Parsing and validation of control API request bodies (SPEC §2.5, §2.6, §5.4, §13).
//
// Each parser takes an already strictly parsed JSON object (base/json.h) and returns either
// a plain request struct or the 400 answer naming the field. They are pure functions: no
// store, Docker or file-system access happens here, so validation always precedes every
// side effect (SPEC §5.3 step 1). v1 parsers refuse unknown fields; legacy ones ignore them.
#pragma once

#include "api_error.h"
#include "config/config.h"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sandboxd::control {

enum class Visibility { public_, private_ };
enum class IdlePolicy { sleep, always_on };

std::string_view to_string(Visibility v);
std::string_view to_string(IdlePolicy p);

struct CreateRequest {
  std::optional<std::string> id;  // canonical upper case
  std::vector<std::uint16_t> ports;
  Visibility visibility = Visibility::public_;
  IdlePolicy idle_policy = IdlePolicy::sleep;
  std::string user_id;  // legacy default "local"
  bool user_id_given = false;  // false: a legacy create without external.user_id
  std::optional<std::string> project_id;
  std::optional<std::string> workspace_id;
  std::optional<std::string> git_remote_url;
  std::map<std::string, std::string> env;
  std::optional<std::string> template_name;
  std::optional<std::uint64_t> memory_bytes;
  std::optional<std::uint32_t> cpus_milli;
  std::optional<std::uint32_t> pids;
  std::optional<std::string> dev_command;
  std::optional<std::uint16_t> dev_port;
};

// What the validators need from the config.
struct RequestLimits {
  std::vector<config::PortRange> allowed_ports{config::PortRange{1024, 65535}};
  std::chrono::milliseconds exec_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds exec_max_timeout{std::chrono::hours(24)};
};

ApiResult<CreateRequest> parse_legacy_create(const boost::json::object& body,
                                             const RequestLimits& limits);
ApiResult<CreateRequest> parse_v1_create(const boost::json::object& body,
                                         const RequestLimits& limits);

struct ExecRequest {
  std::vector<std::string> cmd;
  std::map<std::string, std::string> env;
  std::string cwd = "/home/sandbox/workspace";
  std::chrono::milliseconds timeout{0};  // filled with the default when absent
  bool timeout_given = false;
  bool detach = false;
  bool stream = false;
};

// `v1` selects unknown-field refusal; legacy exec has no `detach`.
ApiResult<ExecRequest> parse_exec(const boost::json::object& body, const RequestLimits& limits,
                                  bool v1);

struct StopRequest {
  bool force = false;
  std::optional<std::chrono::seconds> timeout;
};

ApiResult<StopRequest> parse_stop(const boost::json::object& body);

// Legacy keepalive: absent `until` → nullopt (now + idle.threshold); 0 → clear.
struct KeepaliveRequest {
  std::optional<std::int64_t> until_unix_s;
};

ApiResult<KeepaliveRequest> parse_keepalive(const boost::json::object& body);

// Legacy claim (SPEC §2.5.9): the new owner. An omitted optional field keeps its value
// (outer nullopt); `null` clears it (inner nullopt).
struct ClaimRequest {
  std::string user_id;
  std::optional<std::optional<std::string>> project_id;
  std::optional<std::optional<std::string>> workspace_id;
};

ApiResult<ClaimRequest> parse_claim(const boost::json::object& body);

// v1 PATCH, a JSON merge patch (SPEC §2.6.4): an absent field is kept (outer nullopt);
// `null` resets it to its default, which the parser fills in (public, sleep, [3000], unset).
struct PatchRequest {
  std::optional<Visibility> visibility;
  std::optional<IdlePolicy> idle_policy;
  std::optional<std::vector<std::uint16_t>> ports;
  std::optional<std::optional<std::string>> git_remote_url;
  std::optional<std::optional<std::int64_t>> keepalive_until_ms;  // unix ms, not yet clamped

  bool empty() const {
    return !visibility && !idle_policy && !ports && !git_remote_url && !keepalive_until_ms;
  }
};

ApiResult<PatchRequest> parse_patch(const boost::json::object& body, const RequestLimits& limits);

// Shared rules, exposed for the routes that take ids and names from paths and queries.
ApiResult<std::string> parse_sandbox_id(std::string_view text);
// External ids (SPEC §1.2): 1-256 bytes of UTF-8, no control characters, no comma.
std::optional<std::string> external_id_problem(std::string_view value);
// Request env (SPEC §5.4): the message naming the problem, or nullopt.
std::optional<std::string> env_problem(const std::map<std::string, std::string>& env);

}  // namespace sandboxd::control
