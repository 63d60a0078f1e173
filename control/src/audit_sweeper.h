// The audit retention sweep (SPEC §8 "Audit retention"): once at boot and then daily, audit
// rows older than `store.audit_retention` are deleted, then the oldest beyond
// `store.audit_max_rows`, at most 5000 rows per write job (one transaction each), so the
// writer never holds a long transaction and the table stays bounded inside the retention
// window too. Deleted rows are counted in sandboxd_audit_rows_deleted_total{reason}. The same
// daily sweep deletes the events of tasks finished more than `tasks.event_retention` ago,
// except their `done` (SPEC §8), counted in sandboxd_task_events_deleted_total.
//
// Threading: run() and sweep() run on the control thread and await each store write
// without blocking it; the counters are atomics read by the scrape. The Store and Config
// must outlive it.
#pragma once

#include "async_util.h"
#include "config/config.h"
#include "metrics.h"
#include "store/audit_repo.h"
#include "store/task_repo.h"
#include "store/store.h"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace sandboxd::control {

class AuditSweeper {
 public:
  static constexpr std::chrono::hours kEvery{24};

  AuditSweeper(store::Store& store, const config::Config& config) : store_(store), config_(config) {}

  // A sweep now, then one every kEvery while `stopping` stays false.
  asio::awaitable<void> run(const bool& stopping);
  // One sweep with the current config; a failed write ends it (logged, retried next time).
  asio::awaitable<store::AuditSweep> sweep();

  // The task-event part of the sweep; returns the events deleted.
  asio::awaitable<std::int64_t> sweep_task_events();
  // sandboxd_audit_rows_deleted_total and sandboxd_task_events_deleted_total.
  void write_metrics(TextWriter& w) const;

 private:
  store::Store& store_;
  const config::Config& config_;
  std::atomic<std::uint64_t> by_age_{0};
  std::atomic<std::uint64_t> by_cap_{0};
  std::atomic<std::uint64_t> events_{0};
};

}  // namespace sandboxd::control
