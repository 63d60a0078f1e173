// The routes of SPEC §6.3 over the task manager and the dev-server supervisor. Every
// request needs `Authorization: Bearer <secret>` (constant-time compare, no route exempt),
// then: unknown path 404 `not_found`, wrong method 405 with `Allow`, bad input 400
// `invalid_request` naming the field. Loop thread only.
#pragma once

#include "context.h"
#include "devserver.h"
#include "http_server.h"
#include "task_manager.h"

namespace sandboxd::runtimed {

class Api final : public HttpHandler {
 public:
  Api(Context& ctx, TaskManager& tasks, DevServer& devserver);

  std::optional<HttpResponse> check_head(const HttpRequest& head) override;
  asio::awaitable<HttpResponse> handle(const HttpRequest& request) override;

 private:
  asio::awaitable<HttpResponse> submit(const HttpRequest& request);
  HttpResponse list(const HttpRequest& request);
  HttpResponse status();
  HttpResponse restart(const HttpRequest& request);
  asio::awaitable<HttpResponse> log_tail(const HttpRequest& request);
  HttpResponse events(const HttpRequest& request, Task& task);

  Context& ctx_;
  TaskManager& tasks_;
  DevServer& devserver_;
};

}  // namespace sandboxd::runtimed
