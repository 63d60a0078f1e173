// The route table of the edge (SPEC §3.5): one immutable snapshot of every sandbox the edge
// may route to, published by control, read by every worker without locks.
//
// Control builds a whole new `RouteTable` (`RouteTable::build`) whenever a sandbox's state,
// address, ports or visibility changes, and publishes it through `RouteTablePublisher`.
// A snapshot never changes after it is built, so any thread may read it; it lives as long as
// someone holds its shared_ptr (a request in flight keeps the one it started with). Lookup
// by id is one hash of the 16 id bytes and a short probe: no allocation, no locks, and as
// fast with 10,000 entries as with one. `decide_route` is §3.5's decision table as a pure
// function. Workers use a `RouteTableReader` each, which touches the shared control block
// only when a new snapshot was published.
#pragma once

#include "base/result.h"
#include "base/ulid.h"
#include "edge/ip_address.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sandboxd::edge {

enum class RouteState : std::uint8_t { creating, running, stopping, stopped, waking, error };
enum class Visibility : std::uint8_t { public_, private_ };

struct Route {
  Ulid id;
  RouteState state = RouteState::stopped;
  IpAddress address;                 // container IPv4 on docker.network; empty when unknown
  std::vector<std::uint16_t> ports;  // declared ports (0-16), in order; the first is primary
  Visibility visibility = Visibility::public_;
  std::string error_reason;      // the stored reason when state is error
  std::uint64_t generation = 0;  // changes whenever this entry changes

  bool declares(std::uint16_t port) const;
};

class RouteTable {
 public:
  // Fails (invalid_argument) when two routes share an id.
  static Result<std::shared_ptr<const RouteTable>> build(std::vector<Route> routes);
  static std::shared_ptr<const RouteTable> empty();

  const Route* find(const Ulid& id) const;  // nullptr: no entry
  std::size_t size() const { return routes_.size(); }
  const std::vector<Route>& routes() const { return routes_; }

 private:
  RouteTable() = default;
  std::size_t slot_of(const Ulid& id) const;

  std::vector<Route> routes_;
  std::vector<std::uint32_t> slots_;  // open addressing: index into routes_ plus 1; 0 = free
  std::size_t mask_ = 0;
  std::uint64_t seed_ = 0;  // per table, so that chosen ids cannot be made to collide
};

// The port rules of §3.5 that come from the edge settings, not from the route.
struct PortRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
};

struct PortPolicy {
  bool allow_undeclared = false;   // preview.undeclared_ports: allow
  std::vector<PortRange> allowed;  // preview.allowed_ports
  bool allows(std::uint16_t port) const;
};

enum class RouteAction : std::uint8_t {
  no_such_sandbox,        // 404
  preview_auth_required,  // 401, or the login redirect
  port_not_exposed,       // 404
  proxy,                  // running: forward (a refused connect becomes a port wait)
  hold,                   // creating, waking, stopping, stopped: hold and wake (§3.6)
  sandbox_error,          // 502 with the stored reason
};

// §3.5's checks, in order. `authorized`: the request carries a valid preview credential
// (only consulted for private routes; the caller folds in the CORS-preflight rule of §3.14).
RouteAction decide_route(const Route* route, std::uint16_t port, bool authorized,
                         const PortPolicy& policy);

// Holds the current snapshot. Publishing and loading are atomic and may happen from any
// thread; a published table is never modified.
class RouteTablePublisher {
 public:
  RouteTablePublisher();  // starts with an empty table

  void publish(std::shared_ptr<const RouteTable> table);  // null publishes an empty table
  std::shared_ptr<const RouteTable> load() const;
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::shared_ptr<const RouteTable>> table_;
  std::atomic<std::uint64_t> version_{0};
};

// A worker's view of the publisher: `current()` costs one atomic read while nothing new was
// published, so workers do not contend on the snapshot's reference count per request.
// Belongs to one thread.
class RouteTableReader {
 public:
  explicit RouteTableReader(const RouteTablePublisher& publisher);

  // The newest snapshot; the reference stays valid until the next call (or keep `shared()`).
  const RouteTable& current();
  const std::shared_ptr<const RouteTable>& shared() const { return table_; }

 private:
  const RouteTablePublisher& publisher_;
  std::uint64_t version_;
  std::shared_ptr<const RouteTable> table_;
};

}  // namespace sandboxd::edge
