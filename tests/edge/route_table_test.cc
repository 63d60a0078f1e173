#include "edge/route_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace sandboxd::edge {
namespace {

Ulid id_from(std::uint64_t hi, std::uint64_t lo) {
  Ulid::Bytes b{};
  for (int i = 0; i < 8; ++i) {
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(hi >> (56 - 8 * i));
    b[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(lo >> (56 - 8 * i));
  }
  b[0] &= 0x7f;
  return Ulid(b);
}

Route route(const Ulid& id, RouteState state, std::vector<std::uint16_t> ports = {3000}) {
  Route r;
  r.id = id;
  r.state = state;
  r.ports = std::move(ports);
  if (state == RouteState::running) r.address = *IpAddress::parse("172.18.0.5");
  return r;
}

TEST(RouteTable, FindsEveryEntryAmongTenThousand) {
  std::vector<Route> routes;
  std::mt19937_64 rng(5);
  for (std::uint64_t i = 0; i < 10000; ++i) {
    Route r = route(id_from(rng(), rng()), RouteState::running);
    r.generation = i;
    routes.push_back(r);
  }
  auto table = RouteTable::build(routes);
  ASSERT_TRUE(table) << table.error().message();
  EXPECT_EQ((*table)->size(), 10000u);
  for (const Route& r : routes) {
    const Route* found = (*table)->find(r.id);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->generation, r.generation);
  }
  for (int i = 0; i < 1000; ++i) EXPECT_EQ((*table)->find(id_from(rng(), rng())), nullptr);
}

TEST(RouteTable, IdsDifferingOnlyInTheTimestampOrOnlyInTheRandomPartAreDistinct) {
  std::vector<Route> routes;
  for (std::uint64_t i = 0; i < 300; ++i) {
    routes.push_back(route(id_from(i << 16, 42), RouteState::stopped));  // same random bits
    routes.push_back(route(id_from(1 << 16, i + 1000), RouteState::stopped));
  }
  auto table = RouteTable::build(routes);
  ASSERT_TRUE(table);
  for (const Route& r : routes) {
    const Route* found = (*table)->find(r.id);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->id, r.id);
  }
}

TEST(RouteTable, RejectsDuplicateIds) {
  Ulid id = *Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  auto table = RouteTable::build({route(id, RouteState::running), route(id, RouteState::stopped)});
  ASSERT_FALSE(table);
  EXPECT_EQ(table.error().code, Errc::invalid_argument);
  EXPECT_NE(table.error().detail.find("01ARZ3NDEKTSV4RRFFQ69G5FAV"), std::string::npos);
}

TEST(RouteTable, EmptyTableFindsNothing) {
  auto empty = RouteTable::empty();
  EXPECT_EQ(empty->size(), 0u);
  EXPECT_EQ(empty->find(*Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV")), nullptr);
}

TEST(Route, DeclaresItsPorts) {
  Route r = route(Ulid(), RouteState::running, {3000, 5173});
  EXPECT_TRUE(r.declares(3000));
  EXPECT_TRUE(r.declares(5173));
  EXPECT_FALSE(r.declares(8080));
}

struct Decision {
  const char* name;
  std::optional<RouteState> state;  // nullopt: no entry
  Visibility visibility;
  std::uint16_t port;
  bool authorized;
  bool allow_undeclared;
  RouteAction action;
};

void PrintTo(const Decision& d, std::ostream* os) { *os << d.name; }

class DecideRoute : public ::testing::TestWithParam<Decision> {};

TEST_P(DecideRoute, FollowsTheOrderOfSection3_5) {
  const Decision& d = GetParam();
  Route r = route(Ulid(), d.state.value_or(RouteState::running), {3000});
  r.visibility = d.visibility;
  PortPolicy policy;
  policy.allow_undeclared = d.allow_undeclared;
  policy.allowed = {{1024, 65535}};
  EXPECT_EQ(decide_route(d.state ? &r : nullptr, d.port, d.authorized, policy), d.action);
}

constexpr auto kPub = Visibility::public_;
constexpr auto kPriv = Visibility::private_;

INSTANTIATE_TEST_SUITE_P(
    Table, DecideRoute,
    ::testing::Values(
        Decision{"no_entry", std::nullopt, kPub, 3000, true, false, RouteAction::no_such_sandbox},
        Decision{"private_unauthorized_stopped", RouteState::stopped, kPriv, 3000, false, false,
                 RouteAction::preview_auth_required},
        Decision{"private_unauthorized_hides_port", RouteState::running, kPriv, 9999, false, false,
                 RouteAction::preview_auth_required},
        Decision{"private_unauthorized_hides_error", RouteState::error, kPriv, 3000, false, false,
                 RouteAction::preview_auth_required},
        Decision{"private_authorized", RouteState::running, kPriv, 3000, true, false,
                 RouteAction::proxy},
        Decision{"public_ignores_auth", RouteState::running, kPub, 3000, false, false,
                 RouteAction::proxy},
        Decision{"undeclared_port", RouteState::running, kPub, 8080, false, false,
                 RouteAction::port_not_exposed},
        Decision{"undeclared_port_allowed", RouteState::running, kPub, 8080, false, true,
                 RouteAction::proxy},
        Decision{"undeclared_port_outside_allowed", RouteState::running, kPub, 80, false, true,
                 RouteAction::port_not_exposed},
        Decision{"port_check_before_state", RouteState::error, kPub, 8080, false, false,
                 RouteAction::port_not_exposed},
        Decision{"creating", RouteState::creating, kPub, 3000, false, false, RouteAction::hold},
        Decision{"waking", RouteState::waking, kPub, 3000, false, false, RouteAction::hold},
        Decision{"stopping", RouteState::stopping, kPub, 3000, false, false, RouteAction::hold},
        Decision{"stopped", RouteState::stopped, kPub, 3000, false, false, RouteAction::hold},
        Decision{"error", RouteState::error, kPub, 3000, false, false, RouteAction::sandbox_error}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(IpAddress, ParsesAndPrintsBothFamilies) {
  auto v4 = IpAddress::parse("172.18.0.5");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family(), IpAddress::Family::v4);
  EXPECT_EQ(v4->str(), "172.18.0.5");
  EXPECT_EQ(*v4, IpAddress::v4(0xac120005));
  auto v6 = IpAddress::parse("2001:DB8:0::1");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family(), IpAddress::Family::v6);
  EXPECT_EQ(v6->str(), "2001:db8::1");
  EXPECT_TRUE(IpAddress().empty());
  EXPECT_EQ(IpAddress().str(), "");
  for (const char* bad : {"", "1.2.3", "1.2.3.256", "a.b.c.d", "[::1]", "::g", " 1.2.3.4",
                          "1.2.3.4:80", "0000:0000:0000:0000:0000:0000:0000:0000:0000"}) {
    EXPECT_FALSE(IpAddress::parse(bad)) << bad;
  }
}

TEST(RouteTablePublisher, StartsEmptyAndPublishes) {
  RouteTablePublisher publisher;
  EXPECT_EQ(publisher.load()->size(), 0u);
  Ulid id = *Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  const std::uint64_t v0 = publisher.version();
  publisher.publish(*RouteTable::build({route(id, RouteState::running)}));
  EXPECT_GT(publisher.version(), v0);
  EXPECT_NE(publisher.load()->find(id), nullptr);
  publisher.publish(nullptr);
  EXPECT_EQ(publisher.load()->size(), 0u);
}

TEST(RouteTableReader, SeesNewSnapshotsAndKeepsTheOldOneAlive) {
  RouteTablePublisher publisher;
  RouteTableReader reader(publisher);
  EXPECT_EQ(reader.current().size(), 0u);
  Ulid id = *Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  publisher.publish(*RouteTable::build({route(id, RouteState::stopped)}));
  std::shared_ptr<const RouteTable> held = reader.shared();  // a request in flight
  const RouteTable& now = reader.current();
  ASSERT_NE(now.find(id), nullptr);
  EXPECT_EQ(now.find(id)->state, RouteState::stopped);
  EXPECT_EQ(held->size(), 0u);
}

// One thread keeps swapping snapshots while readers look routes up; run under ASan/UBSan
// this also checks that no reader ever touches a freed table.
TEST(RouteTablePublisher, ConcurrentPublishAndRead) {
  constexpr int kSnapshots = 2000;
  constexpr int kReaders = 4;
  std::vector<Ulid> ids;
  for (std::uint64_t i = 0; i < 64; ++i) ids.push_back(id_from(i * 7919, i * 104729 + 1));
  RouteTablePublisher publisher;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> lookups{0};

  auto make_snapshot = [&](std::uint64_t generation) {
    std::vector<Route> routes;
    for (const Ulid& id : ids) {
      Route r = route(id, generation % 2 ? RouteState::running : RouteState::stopped);
      r.generation = generation;
      r.error_reason = std::string(100, 'x');  // heap memory that ASan would catch if freed
      routes.push_back(std::move(r));
    }
    return *RouteTable::build(std::move(routes));
  };
  publisher.publish(make_snapshot(1));

  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t) {
    readers.emplace_back([&, t] {
      RouteTableReader reader(publisher);
      std::uint64_t last_generation = 0;
      std::uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        // Half of the threads use the cached reader, half load() every time.
        std::shared_ptr<const RouteTable> loaded;
        const RouteTable& table = t % 2 ? *(loaded = publisher.load()) : reader.current();
        const Route* first = table.find(ids[n % ids.size()]);
        ASSERT_NE(first, nullptr);
        // Every entry of one snapshot has the same generation; generations never go back.
        for (const Ulid& id : ids) {
          const Route* r = table.find(id);
          ASSERT_NE(r, nullptr);
          ASSERT_EQ(r->generation, first->generation);
          ASSERT_EQ(r->error_reason.size(), 100u);
        }
        ASSERT_GE(first->generation, last_generation);
        last_generation = first->generation;
        ++n;
      }
      lookups += n;
    });
  }
  for (std::uint64_t g = 2; g <= kSnapshots; ++g) publisher.publish(make_snapshot(g));
  stop = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(publisher.load()->find(ids[0])->generation, static_cast<std::uint64_t>(kSnapshots));
  EXPECT_GT(lookups.load(), 0u);
}

}  // namespace
}  // namespace sandboxd::edge
