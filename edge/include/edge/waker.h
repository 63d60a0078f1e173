// What the edge needs from control to start a sandbox (SPEC §3.6): the `Waker`.
//
// The edge calls `wake(id, done)` once per wake cycle of a sandbox (it coalesces every held
// request of the process into one call). Control does its own single flight per id, waits
// for a creation or a stop in progress, queues for a start slot, checks memory admission,
// starts the container, publishes a route table snapshot in which the sandbox is `running`
// with its address, and THEN calls `done` with the outcome. The edge probes the port itself
// afterwards, using the newest snapshot.
//
// Contract for implementations: `wake` must not block (it runs on an edge worker thread);
// `done` is called exactly once, from any thread (also from inside `wake`), and must not be
// called after the implementation is destroyed. Calling `done` after the edge has stopped
// is safe: the outcome is dropped.
#pragma once

#include "base/ulid.h"

#include <cstdint>
#include <functional>
#include <string>

namespace sandboxd::edge {

struct WakeOutcome {
  enum class Kind : std::uint8_t {
    ok,       // running with an address in the newest snapshot: the edge probes the port
    timeout,  // the start did not finish in time: 504 wake_timeout
    refused,  // memory admission said no: 503 wake_refused
    failed,   // the start failed: 502 wake_failed
    gone,     // destroyed or purged meanwhile: 404 no_such_sandbox
  };

  Kind kind = Kind::ok;
  int retry_after_s = 0;  // refused: the Retry-After to send; 0 means SPEC's 30
  std::string message;    // failed: the reason, for the JSON message and the log

  static WakeOutcome ok() { return {}; }
  static WakeOutcome timeout() { return WakeOutcome{Kind::timeout, 0, {}}; }
  static WakeOutcome refused(int retry_after_s) {
    return WakeOutcome{Kind::refused, retry_after_s, {}};
  }
  static WakeOutcome failed(std::string message) {
    return WakeOutcome{Kind::failed, 0, std::move(message)};
  }
  static WakeOutcome gone() { return WakeOutcome{Kind::gone, 0, {}}; }
};

class Waker {
 public:
  virtual ~Waker() = default;
  virtual void wake(const Ulid& id, std::function<void(WakeOutcome)> done) = 0;
};

}  // namespace sandboxd::edge
