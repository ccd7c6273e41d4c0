// Live flows leaving a link that is up (#17 items 2 and 3): through the real
// program with BPF_PROG_TEST_RUN, a flow on a link its policy's clv_leave
// entry lists moves on its next packet (counted in clv_moves with the
// reason), a flow of another policy on the same link stays, a translated one
// (masquerade: true) stays unless forced, a flow with nowhere else to go
// stays, and an entry of another rule set's generation moves nothing.
#include <doctest/doctest.h>

#include "kernel_site.hpp"
#include "netns_guard.hpp"
#include "packet.hpp"

using namespace clovis;
using test::PacketSpec;
using test::tuple;

namespace {

const char* kLeaveMapping = R"(version: 1
links:
  - {name: a, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x10}
  - {name: b, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x20}
  - {name: m, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x30, masquerade: true}
policies:
  - {name: voice, failover: [a, b]}
  - {name: bulk, failover: [a, b]}
  - {name: nat, failover: [m, b]}
  - {name: tomasq, failover: [a, m]}
rules:
  - {name: bulk, priority: 1, match: {proto: udp, dport: 873}, policy: bulk}
  - {name: nat, priority: 2, match: {proto: udp, dport: 5061}, policy: nat}
  - {name: tomasq, priority: 3, match: {proto: udp, dport: 5062}, policy: tomasq}
default: {policy: voice}
)";

}  // namespace

TEST_CASE("kernel leave: a flow on a link its policy leaves moves; bulk, translated and stranded flows stay") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::KernelSite site;
  REQUIRE_MESSAGE(site.ok(), site.error());
  const auto& r = site.apply(kLeaveMapping);
  const int a = r.link_slot("a"), b = r.link_slot("b"), m = r.link_slot("m");
  auto run = [&](uint16_t dport) {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 17, 40000, dport);
    return site.run(test::build_packet(p), "lan0").mark;
  };
  REQUIRE(run(5060) == 0x10);  // voice on a
  REQUIRE(run(873) == 0x10);   // bulk on a
  REQUIRE(run(5061) == 0x30);  // nat on m (masquerades)
  REQUIRE(run(5062) == 0x10);  // tomasq on a

  std::vector<clv_leave> leave(r.policies.size());
  for (auto& l : leave) l.generation = r.generation;
  auto pol = [&](const char* name) -> clv_leave& { return leave.at(static_cast<size_t>(r.policy_index(name))); };
  pol("voice").links[CLV_MOVE_SLA] = 1ull << a;
  pol("nat").links[CLV_MOVE_SLA] = 1ull << m;     // translated, not forced
  pol("tomasq").links[CLV_MOVE_SLA] = 1ull << a;  // its only way out translates
  REQUIRE(site.dp().set_leave(leave));

  CHECK(run(5060) == 0x20);  // moved
  CHECK(run(5060) == 0x20);  // and stays moved: counted once
  CHECK(run(873) == 0x10);   // bulk's policy does not leave a
  CHECK(run(5061) == 0x30);  // translated: a move would end its connection
  CHECK(run(5062) == 0x10);  // onto m would change its source address
  auto moves = site.dp().link_moves();
  REQUIRE(moves);
  REQUIRE(moves->size() == CLV_MOVE_REASONS);
  CHECK((*moves)[CLV_MOVE_SLA][static_cast<size_t>(a)][static_cast<size_t>(b)] == 1);
  CHECK((*site.dp().counters())[CLV_STAT_LEFT] == 1);
  CHECK((*site.dp().counters())[CLV_STAT_MIGRATED] == 0);  // not a failover: its link is up

  // Forced: the translated flow moves too, restarting as a new flow.
  pol("nat").force = 1ull << m;
  REQUIRE(site.dp().set_leave(leave));
  const auto new_flows = (*site.dp().counters())[CLV_STAT_NEW_FLOW];
  run(5061);
  CHECK((*site.dp().counters())[CLV_STAT_LEFT_NAT] == 1);
  CHECK((*site.dp().counters())[CLV_STAT_NEW_FLOW] == new_flows + 1);
  CHECK((*site.dp().link_moves())[CLV_MOVE_SLA][static_cast<size_t>(m)][static_cast<size_t>(b)] == 1);

  // Failback: back to a, with its reason; b left while a is left too
  // strands the flow: it stays.
  pol("voice").links[CLV_MOVE_SLA] = 0;
  pol("voice").links[CLV_MOVE_RETURN] = 1ull << b;
  REQUIRE(site.dp().set_leave(leave));
  CHECK(run(5060) == 0x10);
  CHECK((*site.dp().link_moves())[CLV_MOVE_RETURN][static_cast<size_t>(b)][static_cast<size_t>(a)] == 1);
  pol("voice").links[CLV_MOVE_SLA] = 1ull << a;
  pol("voice").links[CLV_MOVE_RETURN] = 1ull << b;
  REQUIRE(site.dp().set_leave(leave));
  CHECK(run(5060) == 0x10);  // nowhere to go: stays, no last resort
}

TEST_CASE("kernel leave: an entry of another generation moves nothing; the summary bit survives an apply") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::KernelSite site;
  REQUIRE_MESSAGE(site.ok(), site.error());
  const auto& r = site.apply(kLeaveMapping);
  const int a = r.link_slot("a");
  auto run = [&]() {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 17, 40001, 5060);
    return site.run(test::build_packet(p), "lan0").mark;
  };
  REQUIRE(run() == 0x10);
  std::vector<clv_leave> leave(r.policies.size());
  leave[static_cast<size_t>(r.policy_index("voice"))].links[CLV_MOVE_SLA] = 1ull << a;
  leave[static_cast<size_t>(r.policy_index("voice"))].generation = r.generation + 1;
  REQUIRE(site.dp().set_leave(leave));
  CHECK(run() == 0x10);  // another rule set's policy at that index
  leave[static_cast<size_t>(r.policy_index("voice"))].generation = r.generation;
  REQUIRE(site.dp().set_leave(leave));
  // An apply (an SLA reorder writes the same rule set again) keeps the
  // summary bits: the flow still sees that its link is to be left.
  site.apply(kLeaveMapping);
  CHECK(run() == 0x20);
}
