// A few threads for work that blocks (file-system calls of the files API, SPEC §7
// "Threads"), so the control thread never waits on a disk.
//
// run(fn) calls fn() on a pool thread and resumes the awaiting coroutine on its own
// executor with fn's result: the result travels by value, so fn must own (or share) what it
// touches. Jobs run in any order and concurrently. Destroying the pool drops the jobs not
// yet started and waits for the running ones; declare it after what those jobs use.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

namespace sandboxd::control {

class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads) : pool_(threads) {}
  ~BlockingPool() {
    pool_.stop();
    pool_.join();
  }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  template <class Fn>
  boost::asio::awaitable<std::invoke_result_t<Fn&>> run(Fn fn) {
    using Out = std::invoke_result_t<Fn&>;
    boost::asio::any_io_executor home = co_await boost::asio::this_coro::executor;
    // Named, not a temporary of the co_await expression (g++ 12, see STYLE.md).
    auto initiate = [this, home](auto handler, Fn job) {
      auto done = std::make_shared<decltype(handler)>(std::move(handler));
      boost::asio::post(pool_, [done, home, job = std::move(job)]() mutable {
        Out out = job();
        boost::asio::post(home,
                          [done, out = std::move(out)]() mutable { (*done)(std::move(out)); });
      });
    };
    co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(Out)>(
        std::move(initiate), boost::asio::use_awaitable, std::move(fn));
  }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace sandboxd::control
