#include "events_api.h"

#include "api_error.h"
#include "async_util.h"
#include "lifecycle_events.h"
#include "requests.h"
#include "router.h"
#include "sse.h"

#include <boost/asio/this_coro.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace sandboxd::control {

namespace {

struct EventFilter {
  std::optional<std::string> sandbox_id;
  std::optional<std::string> user_id;

  bool matches(const LifecycleEvent& e) const {
    return (!sandbox_id || *sandbox_id == e.sandbox_id) && (!user_id || *user_id == e.user_id);
  }
};

std::string frame(const LifecycleEvent& e) {
  return "id: " + std::to_string(e.id) + "\nevent: " + e.type + "\ndata: " + e.data + "\n\n";
}

std::string resync_frame(std::uint64_t id) {
  return "id: " + std::to_string(id) + "\nevent: resync\ndata: {}\n\n";
}

ApiResult<EventFilter> parse_filter(const Request& r) {
  EventFilter f;
  auto sandbox = query_string(r, "sandbox_id");
  if (!sandbox) return sandbox.error();
  if (*sandbox) {
    auto id = parse_sandbox_id(**sandbox);
    if (!id) return ApiError::invalid("sandbox_id: " + id.error().message);
    f.sandbox_id = *id;
  }
  auto user = query_string(r, "user_id");
  if (!user) return user.error();
  if (*user) {
    if (auto problem = external_id_problem(**user)) return ApiError::invalid("user_id: " + *problem);
    f.user_id = **user;
  }
  if (auto e = scope_to_tenant(r, f.user_id)) return *e;
  return f;
}

// Writes what came after `*cursor` that the filter lets through; a cursor that fell out of
// the window (this stream was too slow, or the client's id is from another run) gets
// `resync` and moves to the newest id. False when the client is gone.
boost::asio::awaitable<bool> send_after(const LifecycleEvents& events, const EventFilter& filter,
                                        std::uint64_t* cursor, BodySink& sink) {
  auto missed = events.after(*cursor);
  if (!missed) {
    *cursor = events.newest();
    std::string resync = resync_frame(*cursor);
    co_return co_await sink.write(resync);
  }
  std::string out;
  for (const LifecycleEvent& e : *missed) {
    if (filter.matches(e)) out += frame(e);
    *cursor = e.id;
  }
  if (out.empty()) co_return true;
  co_return co_await sink.write(out);
}

}  // namespace

boost::asio::awaitable<Response> EventsApi::stream(Request& r) {
  auto filter = parse_filter(r);
  if (!filter) co_return error_answer(r, filter.error());
  std::optional<std::uint64_t> resume;
  if (auto last = r.header("last-event-id")) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(last->data(), last->data() + last->size(), n);
    if (last->empty() || ec != std::errc() || end != last->data() + last->size()) {
      co_return error_answer(r, ApiError::invalid("Last-Event-ID: must be a non-negative integer"));
    }
    resume = n;
  }
  Response res;
  res.content_type = "text/event-stream";
  res.headers.emplace_back("Cache-Control", "no-cache");
  res.headers.emplace_back("X-Accel-Buffering", "no");
  LifecycleEvents* events = &events_;
  EventFilter only = std::move(*filter);
  std::shared_ptr<OneShot> gone = r.client_gone;
  res.stream = [events, only, resume, gone](BodySink& sink) -> boost::asio::awaitable<void> {
    auto ex = co_await boost::asio::this_coro::executor;
    SseWait wait(ex, gone);
    if (!co_await sink.write(kSseHello)) co_return;
    std::uint64_t cursor = resume.value_or(events->newest());
    for (;;) {
      std::shared_ptr<OneShot> more = events->next();
      if (!co_await send_after(*events, only, &cursor, sink)) co_return;
      if (!co_await wait.next(*more, sink)) co_return;
    }
  };
  co_return res;
}

}  // namespace sandboxd::control
