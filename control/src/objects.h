// The JSON shapes of sandboxes in answers (SPEC §2.4): the legacy object and the v1 object,
// both rendered from a store row plus the settings that derive URLs and effective limits.
#pragma once

#include "config/config.h"
#include "store/sandbox_repo.h"

#include <boost/json/object.hpp>

#include <string>

namespace sandboxd::control {

struct ObjectContext {
  const config::Config* config = nullptr;
  std::string workspaces_dir;  // <data_dir>/workspaces
  std::uint16_t edge_port = 80;  // the preview listener's port, for URLs
};

// `s-<id>-<port>.<suffix>` in lower case.
std::string preview_host(const std::string& id, int port, const config::Config& config);
std::string preview_url(const std::string& id, int port, const ObjectContext& ctx);

boost::json::object legacy_object(const store::SandboxRow& row, const ObjectContext& ctx);
boost::json::object v1_object(const store::SandboxRow& row, const ObjectContext& ctx);

// Docker's memory notation for the legacy `memory_high` field: 2147483648 → "2G".
std::string docker_memory_notation(std::uint64_t bytes);

}  // namespace sandboxd::control
