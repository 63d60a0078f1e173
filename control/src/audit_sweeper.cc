#include "audit_sweeper.h"

#include "base/log.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

namespace sandboxd::control {

namespace {

constexpr log::Logger kLog{"audit"};

}  // namespace

asio::awaitable<void> AuditSweeper::run(const bool& stopping) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!stopping) {
    co_await sweep();
    timer.expires_after(kEvery);
    co_await timer.async_wait(nothrow);
  }
}

asio::awaitable<store::AuditSweep> AuditSweeper::sweep() {
  store::AuditSweep done;
  const std::int64_t retention_ms = config_.store.audit_retention.count();
  const std::int64_t max_rows = config_.store.audit_max_rows;
  constexpr int kBatch = store::kAuditSweepBatch;
  for (int pass = 0; pass < 2; ++pass) {
    const bool by_age = pass == 0;  // age first, then the cap
    std::int64_t deleted = kBatch;
    while (deleted >= kBatch) {
      auto n = std::make_shared<std::int64_t>(0);
      store::WriteJob job = [n, by_age, retention_ms, max_rows](store::Tx& tx) -> Status {
        auto r = by_age ? store::audit_repo::delete_older_than(tx, tx.now_ms() - retention_ms, kBatch)
                        : store::audit_repo::delete_beyond(tx, max_rows, kBatch);
        if (!r) return r.error();
        *n = *r;
        return ok();
      };
      Status st = co_await store_write(store_, std::move(job));
      if (!st) {
        kLog.warn("audit sweep failed; retrying at the next sweep", {{"error", st.error().message()}});
        co_return done;
      }
      deleted = *n;
      (by_age ? done.by_age : done.by_cap) += deleted;
      (by_age ? by_age_ : by_cap_).fetch_add(static_cast<std::uint64_t>(deleted), std::memory_order_relaxed);
    }
  }
  if (done.by_age > 0 || done.by_cap > 0) {
    kLog.info("audit rows deleted", {{"by_age", done.by_age}, {"by_cap", done.by_cap}});
  }
  co_await sweep_task_events();
  co_return done;
}

asio::awaitable<std::int64_t> AuditSweeper::sweep_task_events() {
  const std::int64_t retention_ms = config_.tasks.event_retention.count();
  constexpr int kBatch = store::kAuditSweepBatch;
  std::int64_t total = 0;
  std::int64_t deleted = kBatch;
  while (deleted >= kBatch) {
    auto n = std::make_shared<std::int64_t>(0);
    store::WriteJob job = [n, retention_ms](store::Tx& tx) -> Status {
      auto r = store::task_repo::delete_expired_events(tx, tx.now_ms() - retention_ms, kBatch);
      if (!r) return r.error();
      *n = *r;
      return ok();
    };
    Status st = co_await store_write(store_, std::move(job));
    if (!st) {
      kLog.warn("task event sweep failed; retrying at the next sweep", {{"error", st.error().message()}});
      break;
    }
    deleted = *n;
    total += deleted;
    events_.fetch_add(static_cast<std::uint64_t>(deleted), std::memory_order_relaxed);
  }
  if (total > 0) kLog.info("task events past tasks.event_retention deleted", {{"events", total}});
  co_return total;
}

void AuditSweeper::write_metrics(TextWriter& w) const {
  w.family("sandboxd_task_events_deleted_total", "counter",
           "Task events deleted by the daily sweep (tasks finished more than "
           "tasks.event_retention ago; their done event stays).");
  w.sample("sandboxd_task_events_deleted_total", {}, static_cast<double>(events_.load(std::memory_order_relaxed)));
  w.family("sandboxd_audit_rows_deleted_total", "counter",
           "Audit rows deleted by the retention sweep: older than store.audit_retention (age) "
           "or beyond store.audit_max_rows (cap).");
  w.sample("sandboxd_audit_rows_deleted_total", {{"reason", "age"}},
           static_cast<double>(by_age_.load(std::memory_order_relaxed)));
  w.sample("sandboxd_audit_rows_deleted_total", {{"reason", "cap"}},
           static_cast<double>(by_cap_.load(std::memory_order_relaxed)));
}

}  // namespace sandboxd::control
