// GET /v1/events (SPEC §2.7.12): the lifecycle events as Server-Sent Events, filtered by
// `sandbox_id` and `user_id`. With Last-Event-ID inside the kept window the missed events
// come first; outside it (or from before a restart) the first event is `resync`. Framing
// and heartbeats as the task-event stream (§2.7.4); the stream goes on until the client
// leaves. A tenant's token sees its own user's events only.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "http.h"

namespace sandboxd::control {

class LifecycleEvents;

class EventsApi {
 public:
  explicit EventsApi(LifecycleEvents& events) : events_(events) {}

  boost::asio::awaitable<Response> stream(Request& r);

 private:
  LifecycleEvents& events_;
};

}  // namespace sandboxd::control
