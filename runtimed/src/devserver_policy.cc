#include "runtimed/devserver_policy.h"

#include "base/json.h"

#include <boost/json.hpp>

#include <array>

namespace sandboxd::runtimed {

std::optional<std::string> detect_dev_command(const ProjectFiles& files) {
  if (!files.package_json) return std::nullopt;
  auto parsed = parse_json(*files.package_json, JsonLimits{.max_depth = 64});
  if (!parsed || !parsed->is_object()) return std::nullopt;
  const boost::json::value* scripts = parsed->get_object().if_contains("scripts");
  if (!scripts || !scripts->is_object()) return std::nullopt;
  const boost::json::value* dev = scripts->get_object().if_contains("dev");
  if (!dev || !dev->is_string() || dev->get_string().empty()) return std::nullopt;
  if (files.pnpm_lock) return "pnpm run dev";
  if (files.bun_lock) return "bun run dev";
  return "npm run dev";
}

std::chrono::seconds RestartBackoff::next(std::chrono::milliseconds ran) {
  static constexpr std::array<int, 6> kDelays{1, 2, 4, 8, 16, 30};
  if (ran >= kHealthyRun) attempt_ = 0;
  int index = attempt_ < static_cast<int>(kDelays.size()) ? attempt_ : static_cast<int>(kDelays.size()) - 1;
  if (attempt_ < static_cast<int>(kDelays.size())) ++attempt_;
  return std::chrono::seconds(kDelays[static_cast<std::size_t>(index)]);
}

std::string waiting_hint(std::string_view project_dir, bool project_dir_exists) {
  if (!project_dir_exists) {
    return "the project directory " + std::string(project_dir) +
           " does not exist yet; the dev server starts once it does (set dev.command for this "
           "sandbox, or add a \"dev\" script to its package.json)";
  }
  return "no dev command: set dev.command for this sandbox, or add a \"dev\" script to " +
         std::string(project_dir) + "/package.json";
}

std::string port_taken_hint(int port) {
  return "another process answers on port " + std::to_string(port) +
         " while the dev server is not running";
}

}  // namespace sandboxd::runtimed
