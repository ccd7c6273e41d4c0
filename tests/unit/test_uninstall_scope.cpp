// What clovisd --uninstall takes as clovis's: tagged rules, routes and
// neighbours, untagged ones only when they are exactly a known link's, and
// never the administrator's or the reserved tables.
#include <linux/fib_rules.h>
#include <linux/neighbour.h>
#include <sys/socket.h>

#include <doctest/doctest.h>

#include "core/pipeline.hpp"
#include "daemon/uninstall_scope.hpp"

using namespace clovis;
using agent::KnownLinks;

namespace {

constexpr const char* kMapping = R"(version: 1
links:
  - {name: r, interface: wan0, gateway: 192.0.2.1, mode: route}
  - name: d
    interface: wan1
    gateway: [198.51.100.1, "2001:db8::1"]
    gateway-mac: 02:00:00:00:00:01
    mode: redirect
    table: 177
    mark: 0x7700
policies:
  - {name: p, failover: [r, d]}
rules:
  - {name: all, priority: 10, match: {proto: udp}, policy: p}
default: {action: bypass}
)";

KnownLinks known() {
  auto checked = core::check_mapping(kMapping);
  REQUIRE(checked.compiled);
  KnownLinks k;
  k.add(*checked.compiled);
  return k;
}

agent::kernel::RuleEntry rule(uint32_t pref, uint32_t mark, uint32_t table, uint8_t protocol) {
  agent::kernel::RuleEntry r;
  r.family = AF_INET;
  r.pref = pref, r.mark = mark, r.mask = 0xffffffffu, r.has_mark = true, r.table = table;
  r.action = FR_ACT_TO_TBL, r.protocol = protocol;
  return r;
}

agent::kernel::NeighEntry neighbor(int family, std::initializer_list<uint8_t> addr, uint8_t last_mac_byte,
                                   uint16_t state, uint8_t protocol) {
  agent::kernel::NeighEntry n;
  n.family = family;
  std::copy(addr.begin(), addr.end(), n.addr.begin());
  n.has_lladdr = true;
  n.lladdr = {0x02, 0, 0, 0, 0, last_mac_byte};
  n.state = state, n.protocol = protocol;
  return n;
}

}  // namespace

TEST_CASE("uninstall: rules tagged 0xc1 anywhere, untagged only when exactly a known link's") {
  const auto k = known();
  CHECK(k.tables == std::set<uint32_t>{core::kDefaultTableBase, 177});
  CHECK(agent::clovis_rule(rule(30000, 0x1f00, 130, 0xc1), k, 10000));     // an older release's, unknown
  CHECK(agent::clovis_rule(rule(10001, 0x7700, 177, 0), k, 10000));        // untagged, known, in range
  CHECK_FALSE(agent::clovis_rule(rule(10005, 0x9900, 199, 0), k, 10000));  // the administrator's
  CHECK_FALSE(agent::clovis_rule(rule(20001, 0x7700, 177, 0), k, 10000));  // out of range
  CHECK_FALSE(agent::clovis_rule(rule(10001, 0x7700, 178, 0), k, 10000));  // another table
  auto masked = rule(10001, 0x7700, 177, 0);
  masked.mask = 0xff00;
  CHECK_FALSE(agent::clovis_rule(masked, k, 10000));
  auto unmarked = rule(10001, 0, 177, 0);
  unmarked.has_mark = false;
  CHECK_FALSE(agent::clovis_rule(unmarked, k, 10000));
}

TEST_CASE("uninstall: routes tagged 0xc1, or in clovis's tables, never main, local or default") {
  agent::kernel::RouteEntry r;
  r.table = 177;
  CHECK(agent::clovis_route(r, {177}));
  CHECK_FALSE(agent::clovis_route(r, {100}));
  r.protocol = 0xc1;
  CHECK(agent::clovis_route(r, {}));
  r.protocol = 4;  // static
  for (uint32_t reserved : {253u, 254u, 255u}) {
    r.table = reserved;
    CHECK_FALSE(agent::clovis_route(r, {reserved}));
  }
}

TEST_CASE("uninstall: permanent neighbours tagged, or a known gateway-mac's address and MAC") {
  const auto k = known();
  REQUIRE(k.gateway_macs.size() == 2);  // IPv4 and IPv6 gateway of d
  CHECK(agent::clovis_neighbor(neighbor(AF_INET, {10, 0, 0, 9}, 0x44, NUD_PERMANENT, 0xc1), k));
  CHECK(agent::clovis_neighbor(neighbor(AF_INET, {198, 51, 100, 1}, 0x01, NUD_PERMANENT, 0), k));
  CHECK(agent::clovis_neighbor(
      neighbor(AF_INET6, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0x01, NUD_PERMANENT, 0), k));
  // Same address, another MAC: the administrator's.
  CHECK_FALSE(agent::clovis_neighbor(neighbor(AF_INET, {198, 51, 100, 1}, 0x02, NUD_PERMANENT, 0), k));
  // Learnt, not made: never.
  CHECK_FALSE(agent::clovis_neighbor(neighbor(AF_INET, {198, 51, 100, 1}, 0x01, NUD_REACHABLE, 0xc1), k));
  // The IPv4 address in the IPv6 family does not match.
  CHECK_FALSE(agent::clovis_neighbor(neighbor(AF_INET6, {198, 51, 100, 1}, 0x01, NUD_PERMANENT, 0), k));
}
