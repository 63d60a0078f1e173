// Coroutine glue for runtimed's single event-loop thread: the `nothrow` token, a notifier
// that wakes every waiting coroutine, and `offload`, which runs blocking work (file writes,
// /proc scans) on the blocking pool and resumes the caller on its own executor (SPEC §6.8:
// nothing slow runs on the loop).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <list>
#include <type_traits>
#include <utility>

namespace sandboxd::runtimed {

namespace asio = boost::asio;
inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Wakes every coroutine waiting on it. Waiters re-check their own condition after waking;
// a notify with nobody waiting is not remembered. Loop thread only.
class Notifier {
 public:
  void notify() {
    for (auto* t : waiters_) t->cancel();
  }

  // Returns on the next notify() or after `limit`, whichever comes first.
  asio::awaitable<void> wait(std::chrono::steady_clock::duration limit) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, limit);
    auto it = waiters_.insert(waiters_.end(), &timer);
    co_await timer.async_wait(nothrow);
    waiters_.erase(it);
  }

 private:
  std::list<asio::steady_timer*> waiters_;
};

// Sleeps for `d` on the caller's executor.
inline asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex, d);
  co_await timer.async_wait(nothrow);
}

namespace detail {
template <class R>
struct OffloadSignature {
  using type = void(R);
};
template <>
struct OffloadSignature<void> {
  using type = void();
};
}  // namespace detail

// Runs `fn()` on `pool` and resumes the caller, on its own executor, with the result.
// Both arguments are taken by reference (g++ 12 mishandles class-type temporaries made for
// a call inside a co_await expression); pass named objects.
template <class F>
asio::awaitable<std::invoke_result_t<std::decay_t<F>&>> offload(const asio::any_io_executor& pool,
                                                                 F&& fn) {
  using Fn = std::decay_t<F>;
  using R = std::invoke_result_t<Fn&>;
  Fn job(std::forward<F>(fn));
  asio::any_io_executor target = pool;
  auto initiate = [target](auto handler, Fn* job_ptr) {
    auto home = asio::get_associated_executor(handler);
    auto work = asio::make_work_guard(home);
    asio::post(target, [f = std::move(*job_ptr), handler = std::move(handler),
                        work = std::move(work)]() mutable {
      auto back = work.get_executor();
      if constexpr (std::is_void_v<R>) {
        f();
        asio::post(back, std::move(handler));
      } else {
        asio::post(back, [handler = std::move(handler), r = f()]() mutable {
          std::move(handler)(std::move(r));
        });
      }
    });
  };
  using Signature = typename detail::OffloadSignature<R>::type;
  Fn* job_ptr = &job;
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, Signature>(
      initiate, asio::use_awaitable, job_ptr);
}

}  // namespace sandboxd::runtimed
