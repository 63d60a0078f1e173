// A worker's wake gate (SPEC §3.6): requests held while their sandbox is not serving.
//
// A held request is a `HeldRequest` in its connection's coroutine frame; the connection
// adds it, waits on its timer (which expires at the request's own deadline), and removes it
// when it leaves for any reason. The gate groups held requests per sandbox in arrival order,
// joins the process-wide wake cycle once per sandbox (WakeCoordinator), and once the
// sandbox has started (or at once for a port wait) probes each port with held requests from
// the newest route snapshot. When a port answers, its held requests are released in arrival
// order, the oldest with the probe's connection. Every other outcome answers them.
// Releasing or answering sets `verdict` and cancels the request's timer.
// One worker's thread only.
#pragma once

#include "base/ulid.h"
#include "edge/ip_address.h"
#include "edge/waker.h"
#include "io.h"
#include "ulid_hash.h"

#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sandboxd::edge::detail {

class Worker;

struct HeldRequest {
  explicit HeldRequest(asio::any_io_executor ex) : timer(ex) {}

  enum class Verdict : std::uint8_t { waiting, dispatch, answer };

  Ulid id;
  std::uint16_t port = 0;
  bool wake = false;  // joined a wake cycle; otherwise a port wait (§3.6 rule 6)
  steady::time_point arrival{};
  asio::steady_timer timer;  // expires at the deadline; cancelled when the verdict is set

  Verdict verdict = Verdict::waiting;
  // answer:
  std::string_view code;  // a §3.13 code
  int retry_after = -1;   // -1: the code's own
  std::string message;    // "" : the code's default
  // dispatch:
  IpAddress address;
  std::optional<tcp::socket> probed;  // the probe's connection (the port's oldest request)

  bool linked = false;
  std::list<HeldRequest*>::iterator pos;
};

class WakeGate {
 public:
  explicit WakeGate(Worker& worker) : w_(worker) {}

  void add(HeldRequest& r);
  void remove(HeldRequest& r);  // idempotent
  // Shutdown deadline: every held request gets 503 shutting_down; probing stops.
  void shutdown_all();

 private:
  struct Pending {
    std::list<HeldRequest*> held;  // arrival order
    bool cycle = false;            // a wake cycle is under way for this sandbox
    bool started = false;          // the latest cycle ended with `ok`
    bool probing = false;
    steady::time_point cycle_began{};  // the first held request of the latest wake cycle
    steady::time_point started_at{};   // its `ok`
    bool port_opened = false;          // a port answered since (wake metrics, once per cycle)
  };

  bool eligible(const Pending& p, const HeldRequest& r) const { return !r.wake || p.started; }
  void on_outcome(const Ulid& id, const WakeOutcome& outcome);
  void ensure_prober(const Ulid& id, Pending& p);
  asio::awaitable<void> probe(Ulid id);
  void answer(HeldRequest& r, std::string_view code, int retry_after, std::string message);
  void release(HeldRequest& r, const IpAddress& address, std::optional<tcp::socket> probed);
  void unlink(Pending& p, HeldRequest& r);
  void erase_if_idle(const Ulid& id);

  Worker& w_;
  std::unordered_map<Ulid, Pending, UlidHash> pending_;
  bool stopped_ = false;
};

}  // namespace sandboxd::edge::detail
