#include "async_util.h"

#include <algorithm>

#include <boost/asio/async_result.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

namespace sandboxd::control {

asio::awaitable<Status> store_write(store::Store& store, store::WriteJob job) {
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Status)>(
      [&store, ex](auto handler, store::WriteJob j) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        auto deliver = [h, ex](Status st) {
          asio::post(ex, [h, st = std::move(st)]() mutable { (*h)(std::move(st)); });
        };
        Status queued = store.try_submit(std::move(j), deliver);
        if (!queued) deliver(queued);
      },
      asio::use_awaitable, std::move(job));
}

asio::awaitable<bool> tcp_answers(std::string ip, int port,
                                  std::chrono::steady_clock::time_point deadline) {
  using namespace boost::asio::experimental::awaitable_operators;
  boost::system::error_code bad;
  const auto address = asio::ip::make_address(ip, bad);
  if (bad || port < 1 || port > 65535) co_return false;
  const asio::ip::tcp::endpoint target(address, static_cast<unsigned short>(port));
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  while (std::chrono::steady_clock::now() < deadline) {
    asio::ip::tcp::socket socket(ex);
    timer.expires_at(deadline);
    auto attempt = socket.async_connect(target, nothrow);
    auto out_of_time = timer.async_wait(nothrow);
    auto first = co_await (std::move(attempt) || std::move(out_of_time));
    if (first.index() == 0 && !std::get<0>(std::get<0>(first))) co_return true;
    if (first.index() == 1) co_return false;
    timer.expires_after(std::chrono::milliseconds(100));  // refused: the port is not open yet
    co_await timer.async_wait(nothrow);
  }
  co_return false;
}

asio::awaitable<bool> wait_for_callback(std::function<void(std::function<void()>)> start,
                                        std::chrono::milliseconds limit) {
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(ex, limit);
  auto called = std::make_shared<bool>(false);
  std::function<void()> done = [ex, timer, called] {
    asio::post(ex, [timer, called] {
      *called = true;
      timer->cancel();
    });
  };
  start(std::move(done));
  // `done` resumes us through a post, which runs only once this wait has begun.
  co_await timer->async_wait(nothrow);
  co_return *called;
}

asio::awaitable<void> OneShot::wait() {
  if (fired_) co_return;
  co_await timer_.async_wait(nothrow);
}

IdLocks::Guard& IdLocks::Guard::operator=(Guard&& o) noexcept {
  if (this != &o) {
    release();
    table_ = std::move(o.table_);
    o.table_.reset();
    id_ = std::move(o.id_);
  }
  return *this;
}

void IdLocks::Guard::release() {
  if (auto table = table_.lock()) IdLocks::unlock(*table, id_);
  table_.reset();
}

asio::awaitable<IdLocks::Guard> IdLocks::lock(const std::string& id) {
  auto it = table_->find(id);
  if (it == table_->end()) {
    table_->emplace(id, Entry{});
    co_return Guard(table_, id);
  }
  auto turn = std::make_shared<OneShot>(co_await asio::this_coro::executor);
  it->second.waiters.push_back(turn);
  co_await turn->wait();  // unlock() hands the lock over by firing our turn
  co_return Guard(table_, id);
}

void IdLocks::unlock(Table& table, const std::string& id) {
  auto it = table.find(id);
  if (it == table.end()) return;
  if (it->second.waiters.empty()) {
    table.erase(it);
    return;
  }
  auto next = it->second.waiters.front();
  it->second.waiters.pop_front();
  next->fire();
}

asio::awaitable<Slots::Guard> Slots::acquire() {
  if (state_->free > 0 && state_->waiters.empty()) {
    --state_->free;
    ++state_->in_use;
    co_return Guard(state_);
  }
  auto turn = std::make_shared<OneShot>(co_await asio::this_coro::executor);
  state_->waiters.push_back(turn);
  co_await turn->wait();  // release() hands its slot over by firing our turn
  co_return Guard(state_);
}

Slots::Guard& Slots::Guard::operator=(Guard&& o) noexcept {
  if (this != &o) {
    release();
    state_ = std::move(o.state_);
    o.state_.reset();
  }
  return *this;
}

void Slots::resize(std::size_t count) {
  State& s = *state_;
  const std::size_t total = s.free + s.in_use - s.surplus;
  if (count < total) {
    const std::size_t cut = total - count;
    const std::size_t from_free = std::min(cut, s.free);
    s.free -= from_free;
    s.surplus += cut - from_free;
    return;
  }
  std::size_t more = count - total;
  const std::size_t forgiven = std::min(more, s.surplus);
  s.surplus -= forgiven;
  more -= forgiven;
  while (more > 0 && !s.waiters.empty()) {
    auto next = s.waiters.front();
    s.waiters.pop_front();
    ++s.in_use;
    --more;
    next->fire();
  }
  s.free += more;
}

void Slots::Guard::release() {
  if (!state_) return;
  State& s = *state_;
  state_.reset();
  if (s.surplus > 0) {
    --s.surplus;
    --s.in_use;
    return;
  }
  if (!s.waiters.empty()) {
    auto next = s.waiters.front();
    s.waiters.pop_front();
    next->fire();  // the slot stays in use, now by `next`
    return;
  }
  --s.in_use;
  ++s.free;
}

}  // namespace sandboxd::control
