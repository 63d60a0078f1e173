// The control thread's coroutine glue: FIFO slots and waiting for a callback from another
// thread.
#include "async_util.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace sandboxd::control {
namespace {

using namespace std::chrono_literals;

// Runs every handler that is ready, without waiting for timers (all of them here are
// waits with no deadline, fired by the code under test).
void settle(asio::io_context& ioc) {
  ioc.restart();
  while (ioc.poll() > 0) {
  }
}

TEST(Slots, HandsSlotsOutInArrivalOrder) {
  asio::io_context ioc;
  Slots slots(2);
  std::vector<int> got;
  std::vector<Slots::Guard> held(5);
  for (int i = 0; i < 5; ++i) {
    asio::co_spawn(ioc, [&, i]() -> asio::awaitable<void> {
      held[static_cast<std::size_t>(i)] = co_await slots.acquire();
      got.push_back(i);
    }, asio::detached);
  }
  settle(ioc);
  EXPECT_EQ(got, (std::vector<int>{0, 1}));
  EXPECT_EQ(slots.in_use(), 2u);
  EXPECT_EQ(slots.waiting(), 3u);

  held[1].release();  // its slot goes to the first waiter, not to whoever asks next
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    Slots::Guard late = co_await slots.acquire();
    got.push_back(99);
  }, asio::detached);
  settle(ioc);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(slots.in_use(), 2u);
  EXPECT_EQ(slots.waiting(), 3u);  // 3, 4 and the late one

  for (auto& g : held) g.release();  // 0 and 2 go: 3 and 4 get theirs
  settle(ioc);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
  for (auto& g : held) g.release();  // the late one gets one and gives it back
  settle(ioc);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 99}));
  EXPECT_EQ(slots.in_use(), 0u);
  EXPECT_EQ(slots.waiting(), 0u);
}

TEST(Slots, ResizeWakesWaitersWhenRaisedAndTakesNothingInUseWhenLowered) {
  asio::io_context ioc;
  Slots slots(1);
  std::vector<Slots::Guard> held(4);
  int got = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    asio::co_spawn(ioc, [&, i]() -> asio::awaitable<void> {
      held[i] = co_await slots.acquire();
      ++got;
    }, asio::detached);
  }
  settle(ioc);
  EXPECT_EQ(got, 1);
  slots.resize(3);  // two waiters go at once
  settle(ioc);
  EXPECT_EQ(got, 3);
  EXPECT_EQ(slots.in_use(), 3u);
  EXPECT_EQ(slots.waiting(), 1u);

  slots.resize(1);  // the three in use keep theirs; the next two releases are not handed on
  held[0].release();
  held[1].release();
  settle(ioc);
  EXPECT_EQ(got, 3);
  EXPECT_EQ(slots.in_use(), 1u);
  held[2].release();  // now the one slot left goes to the waiter
  settle(ioc);
  EXPECT_EQ(got, 4);
  EXPECT_EQ(slots.in_use(), 1u);
  held[3].release();
  EXPECT_EQ(slots.in_use(), 0u);
}

TEST(WaitForCallback, ResumesWhenAnotherThreadCallsBack) {
  asio::io_context ioc;
  std::optional<bool> called;
  std::thread other;
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    std::function<void(std::function<void()>)> start = [&](std::function<void()> done) {
      other = std::thread([done = std::move(done)] { done(); });
    };
    called = co_await wait_for_callback(std::move(start), 10s);
  }, asio::detached);
  const auto began = std::chrono::steady_clock::now();
  ioc.run_for(15s);
  other.join();
  ASSERT_TRUE(called);
  EXPECT_TRUE(*called);
  EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
}

TEST(WaitForCallback, GivesUpAfterTheLimitAndALateCallIsHarmless) {
  asio::io_context ioc;
  std::optional<bool> called;
  std::function<void()> kept;
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    std::function<void(std::function<void()>)> start = [&](std::function<void()> done) {
      kept = std::move(done);  // never called in time
    };
    called = co_await wait_for_callback(std::move(start), 50ms);
  }, asio::detached);
  ioc.run_for(5s);
  ASSERT_TRUE(called);
  EXPECT_FALSE(*called);
  ioc.restart();
  kept();
  EXPECT_NO_THROW(ioc.run_for(100ms));
}

}  // namespace
}  // namespace sandboxd::control
