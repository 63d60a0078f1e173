// The v1 task routes (SPEC §2.7.1-2.7.5) and the sandbox log route (§2.6.9): request
// parsing and validation, the task object of §2.4, and the SSE framing of task events. The
// work is TaskService's.
//
// Handlers run on the control thread. Reading the dev-server log from a stopped sandbox's
// workspace goes through the no-symlink opens of files.h on a small blocking pool, under the
// workspace owner's fsuid. The TaskService, SandboxService and Config must outlive this
// object; destroying it waits for file reads that are running.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <memory>
#include <string>
#include <vector>

#include "api_error.h"
#include "http.h"
#include "task_service.h"

namespace sandboxd::control {

class BlockingPool;
struct LogQuery;

// Parses a POST …/tasks body (unknown fields refused, SPEC §2.1) with the defaults of
// tasks.* applied.
ApiResult<TaskSubmit> parse_task_submit(const boost::json::object& body,
                                        const config::Config& config);

// The task object of SPEC §2.4; `list_item` stops at finished_at.
boost::json::object task_object(const store::TaskRow& task, bool list_item,
                                const std::vector<std::string>& files_changed = {});

class TasksApi {
 public:
  TasksApi(TaskService& tasks, SandboxService& sandboxes, const config::Config& config);
  ~TasksApi();
  TasksApi(const TasksApi&) = delete;
  TasksApi& operator=(const TasksApi&) = delete;

  boost::asio::awaitable<Response> submit(Request& r);  // POST /v1/sandboxes/{id}/tasks
  boost::asio::awaitable<Response> list(Request& r);    // GET  /v1/sandboxes/{id}/tasks
  boost::asio::awaitable<Response> get(Request& r);     // GET  …/tasks/{taskId}
  boost::asio::awaitable<Response> events(Request& r);  // GET  …/tasks/{taskId}/events
  boost::asio::awaitable<Response> cancel(Request& r);  // POST …/tasks/{taskId}/cancel
  boost::asio::awaitable<Response> logs(Request& r);    // GET  /v1/sandboxes/{id}/logs

 private:
  boost::asio::awaitable<Response> container_logs(Request& r, const store::SandboxRow& row,
                                                  const LogQuery& query);

  TaskService& tasks_;
  SandboxService& sandboxes_;
  const config::Config& config_;
  std::string workspaces_dir_;
  std::unique_ptr<BlockingPool> pool_;  // last: destroyed (joined) first
};

}  // namespace sandboxd::control
