#include "read_pool.h"

namespace sandboxd::store::detail {

ReadPool::ReadPool(std::vector<std::unique_ptr<Connection>> conns,
                   std::chrono::milliseconds wait_limit)
    : conns_(std::move(conns)), wait_limit_(wait_limit) {
  for (auto& conn : conns_) free_.push_back(conn.get());
}

Status ReadPool::with_connection(const std::function<Status(Connection&)>& fn) {
  Connection* conn = nullptr;
  {
    std::unique_lock lock(mu_);
    if (!returned_.wait_for(lock, wait_limit_, [&] { return !free_.empty(); })) {
      return Error{Errc::unavailable, "every store read connection is busy"};
    }
    conn = free_.back();
    free_.pop_back();
  }
  // Returned even if fn throws, so an exception never leaks a connection.
  struct Return {
    ReadPool& pool;
    Connection* conn;
    ~Return() {
      {
        std::lock_guard lock(pool.mu_);
        pool.free_.push_back(conn);
      }
      pool.returned_.notify_one();
    }
  } give_back{*this, conn};
  return fn(*conn);
}

}  // namespace sandboxd::store::detail
