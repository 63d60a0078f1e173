// Server-Sent Events of the control API (SPEC §2.7.4, §2.7.12): the opening bytes and the
// wait between two rounds of events, with a `: ping` comment after 15 s of silence.
#pragma once

#include "async_util.h"
#include "http.h"

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <string_view>

namespace sandboxd::control {

inline constexpr std::string_view kSseHello = "retry: 2000\n\n";
inline constexpr std::chrono::seconds kSseHeartbeat{15};

class SseWait {
 public:
  // `gone` fires when the client leaves (null: never).
  SseWait(asio::any_io_executor executor, std::shared_ptr<OneShot> gone);

  // Waits until `more` fires or the stream was silent for kSseHeartbeat (then `: ping`
  // goes out). False when the stream ends: the client left or a write failed.
  asio::awaitable<bool> next(OneShot& more, BodySink& sink);

 private:
  asio::steady_timer heartbeat_;
  std::shared_ptr<OneShot> hangup_;
};

}  // namespace sandboxd::control
