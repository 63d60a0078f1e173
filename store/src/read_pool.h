// A fixed set of read-only connections, each lent to one thread at a time. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "base/result.h"
#include "connection.h"

namespace sandboxd::store::detail {

class ReadPool {
 public:
  ReadPool(std::vector<std::unique_ptr<Connection>> conns, std::chrono::milliseconds wait_limit);

  // Lends a connection to `fn` on the calling thread; waits up to `wait_limit` for one
  // (else Errc::unavailable).
  Status with_connection(const std::function<Status(Connection&)>& fn);

 private:
  std::vector<std::unique_ptr<Connection>> conns_;
  const std::chrono::milliseconds wait_limit_;
  std::mutex mu_;
  std::condition_variable returned_;
  std::vector<Connection*> free_;
};

}  // namespace sandboxd::store::detail
