#include "sse.h"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <string>

namespace sandboxd::control {

using namespace boost::asio::experimental::awaitable_operators;

SseWait::SseWait(asio::any_io_executor executor, std::shared_ptr<OneShot> gone)
    : heartbeat_(executor), hangup_(gone ? std::move(gone) : std::make_shared<OneShot>(executor)) {}

asio::awaitable<bool> SseWait::next(OneShot& more, BodySink& sink) {
  heartbeat_.expires_after(kSseHeartbeat);
  auto on_more = more.wait();
  auto on_beat = heartbeat_.async_wait(nothrow);
  auto on_hangup = hangup_->wait();
  auto woke = co_await (std::move(on_more) || std::move(on_beat) || std::move(on_hangup));
  if (woke.index() == 2 || hangup_->fired()) co_return false;
  if (woke.index() == 1) {
    std::string ping = ": ping\n\n";
    co_return co_await sink.write(ping);
  }
  co_return true;
}

}  // namespace sandboxd::control
