#include "edge/route_table.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>

namespace sandboxd::edge {

namespace {

std::uint64_t mix(std::uint64_t x) {  // the murmur3 finalizer
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

std::uint64_t hash_id(const Ulid& id, std::uint64_t seed) {
  std::uint64_t hi;
  std::uint64_t lo;
  std::memcpy(&hi, id.bytes().data(), 8);
  std::memcpy(&lo, id.bytes().data() + 8, 8);
  return mix(lo ^ seed) ^ mix(hi + seed);
}

std::uint64_t random_seed() {
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

}  // namespace

bool Route::declares(std::uint16_t port) const {
  return std::find(ports.begin(), ports.end(), port) != ports.end();
}

Result<std::shared_ptr<const RouteTable>> RouteTable::build(std::vector<Route> routes) {
  std::shared_ptr<RouteTable> table(new RouteTable());
  table->routes_ = std::move(routes);
  table->seed_ = random_seed();
  const std::size_t slots = std::bit_ceil(std::max<std::size_t>(2 * table->routes_.size(), 2));
  table->slots_.assign(slots, 0);
  table->mask_ = slots - 1;
  for (std::size_t i = 0; i < table->routes_.size(); ++i) {
    const Ulid& id = table->routes_[i].id;
    std::size_t s = table->slot_of(id);
    if (table->slots_[s] != 0) {
      return Error{Errc::invalid_argument, "route table: duplicate id " + id.str()};
    }
    table->slots_[s] = static_cast<std::uint32_t>(i + 1);
  }
  return std::shared_ptr<const RouteTable>(std::move(table));
}

std::shared_ptr<const RouteTable> RouteTable::empty() {
  static const std::shared_ptr<const RouteTable> kEmpty = *build({});
  return kEmpty;
}

// The slot holding `id`, or the free slot where it would go.
std::size_t RouteTable::slot_of(const Ulid& id) const {
  std::size_t s = hash_id(id, seed_) & mask_;
  while (slots_[s] != 0 && routes_[slots_[s] - 1].id != id) s = (s + 1) & mask_;
  return s;
}

const Route* RouteTable::find(const Ulid& id) const {
  const std::uint32_t entry = slots_[slot_of(id)];
  return entry == 0 ? nullptr : &routes_[entry - 1];
}

bool PortPolicy::allows(std::uint16_t port) const {
  return std::any_of(allowed.begin(), allowed.end(),
                     [&](const PortRange& r) { return r.first <= port && port <= r.last; });
}

RouteAction decide_route(const Route* route, std::uint16_t port, bool authorized,
                         const PortPolicy& policy) {
  if (route == nullptr) return RouteAction::no_such_sandbox;
  if (route->visibility == Visibility::private_ && !authorized) {
    return RouteAction::preview_auth_required;
  }
  if (!route->declares(port) && !(policy.allow_undeclared && policy.allows(port))) {
    return RouteAction::port_not_exposed;
  }
  switch (route->state) {
    case RouteState::running:
      return RouteAction::proxy;
    case RouteState::creating:
    case RouteState::waking:
    case RouteState::stopping:
    case RouteState::stopped:
      return RouteAction::hold;
    case RouteState::error:
      return RouteAction::sandbox_error;
  }
  return RouteAction::sandbox_error;
}

RouteTablePublisher::RouteTablePublisher() : table_(RouteTable::empty()) {}

void RouteTablePublisher::publish(std::shared_ptr<const RouteTable> table) {
  if (!table) table = RouteTable::empty();
  table_.store(std::move(table), std::memory_order_release);
  version_.fetch_add(1, std::memory_order_acq_rel);
}

std::shared_ptr<const RouteTable> RouteTablePublisher::load() const {
  return table_.load(std::memory_order_acquire);
}

RouteTableReader::RouteTableReader(const RouteTablePublisher& publisher)
    : publisher_(publisher), version_(publisher.version()), table_(publisher.load()) {}

const RouteTable& RouteTableReader::current() {
  const std::uint64_t v = publisher_.version();
  if (v != version_) {
    // Version first, then the table: at worst we hold a newer table than `v` says and
    // load it once more next time.
    version_ = v;
    table_ = publisher_.load();
  }
  return *table_;
}

}  // namespace sandboxd::edge
