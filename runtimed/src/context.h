// What runtimed's parts share: the loop, the blocking pool and its writer strand, the
// reaper, the settings from runtimed.json and where the workspace is. Built once in
// main(), outlives everything that refers to it.
#pragma once

#include "base/clock.h"
#include "journal.h"
#include "reaper.h"
#include "runtimed/settings.h"

#include <boost/asio/any_io_executor.hpp>

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace sandboxd::runtimed {

inline constexpr std::string_view kRuntimedVersion = "1.0.0";

struct Context {
  boost::asio::any_io_executor loop;
  boost::asio::any_io_executor pool;  // blocking work: /proc scans, file reads
  WriterStrand writer;                 // every file write, in order
  Reaper* reaper = nullptr;
  Settings settings;
  std::string workspace;   // absolute; /home/sandbox in a sandbox
  std::string state_dir;   // <workspace>/.sandboxd
  std::string tasks_dir;   // <workspace>/.sandboxd/tasks
  std::vector<std::string> base_env;  // runtimed's own env, "K=V"
  Clock* clock = &system_clock();
  Clock::WallTime booted_at{};
};

// Ends a process tree (SPEC §6.6 "Kill"): SIGTERM to the group `pgid` (0: none) and to every
// process whose environ holds `marker` (empty: none); after `grace`, SIGKILL to both. Returns
// early once nothing is left, and waits a little for the killed processes to be reaped.
boost::asio::awaitable<void> kill_tree(const Context& ctx, pid_t pgid, const std::string& marker,
                                       std::chrono::milliseconds grace);

}  // namespace sandboxd::runtimed
