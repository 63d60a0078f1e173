// Coroutine glue for the control plane, which runs on ONE thread (the control executor):
// awaiting a store write without blocking that thread, per-id serialization (SPEC §5.11),
// and a one-shot event that many coroutines can wait on (wake coalescing).
#pragma once

#include "base/result.h"
#include "store/store.h"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

namespace sandboxd::control {

namespace asio = boost::asio;
inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Queues `job` on the store's writer and resumes the caller on its own executor with the
// outcome. A full queue answers Errc::unavailable at once instead of blocking the thread.
asio::awaitable<Status> store_write(store::Store& store, store::WriteJob job);

// Calls `start(done)` and resumes on the caller's executor once `done` has been called,
// from any thread, or once `limit` has passed. True when `done` came first.
asio::awaitable<bool> wait_for_callback(std::function<void(std::function<void()>)> start,
                                        std::chrono::milliseconds limit);

// SPEC §2.6.6: true once a TCP connection to `ip`:`port` succeeds, trying every 100 ms (each
// attempt bounded by what is left) until `deadline`; false when it never did.
asio::awaitable<bool> tcp_answers(std::string ip, int port, std::chrono::steady_clock::time_point deadline);

// A signal that fires once; every waiter (before or after) sees it.
class OneShot {
 public:
  explicit OneShot(asio::any_io_executor ex) : timer_(ex, asio::steady_timer::time_point::max()) {}
  void fire() {
    fired_ = true;
    timer_.cancel();
  }
  bool fired() const { return fired_; }
  asio::awaitable<void> wait();

 private:
  bool fired_ = false;
  asio::steady_timer timer_;
};

// Per-id FIFO locks. All calls on the control executor's single thread. An entry exists
// only while the id is held or awaited, so the map never grows with every id ever seen.
// Guards refer to the lock table weakly: a guard that outlives the table (a coroutine frame
// destroyed at shutdown) releases nothing.
class IdLocks {
  struct Entry {
    std::deque<std::shared_ptr<OneShot>> waiters;
  };
  using Table = std::map<std::string, Entry>;

 public:
  class Guard {
   public:
    Guard() = default;
    Guard(std::weak_ptr<Table> table, std::string id) : table_(std::move(table)), id_(std::move(id)) {}
    Guard(Guard&& o) noexcept = default;
    Guard& operator=(Guard&& o) noexcept;
    ~Guard() { release(); }
    void release();

   private:
    std::weak_ptr<Table> table_;
    std::string id_;
  };

  asio::awaitable<Guard> lock(const std::string& id);
  bool held(const std::string& id) const { return table_->contains(id); }

 private:
  static void unlock(Table& table, const std::string& id);
  std::shared_ptr<Table> table_ = std::make_shared<Table>();
};

// A fixed number of slots handed out in FIFO order (wake.max_concurrent, SPEC §3.6 step 3).
// All calls on the control executor's single thread; a Guard gives its slot back.
class Slots {
  struct State {
    std::size_t free = 0;
    std::size_t in_use = 0;
    std::size_t surplus = 0;  // slots in use beyond the count (it was lowered): not handed on
    std::deque<std::shared_ptr<OneShot>> waiters;
  };

 public:
  class Guard {
   public:
    Guard() = default;
    explicit Guard(std::shared_ptr<State> state) : state_(std::move(state)) {}
    Guard(Guard&& o) noexcept = default;
    Guard& operator=(Guard&& o) noexcept;
    ~Guard() { release(); }
    void release();

   private:
    std::shared_ptr<State> state_;
  };

  explicit Slots(std::size_t count) { state_->free = count; }
  asio::awaitable<Guard> acquire();
  // A new number of slots (SIGHUP): more wake waiters at once; fewer take effect as slots in
  // use come back. Nothing in use is taken away.
  void resize(std::size_t count);
  std::size_t in_use() const { return state_->in_use; }
  std::size_t waiting() const { return state_->waiters.size(); }

 private:
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace sandboxd::control
