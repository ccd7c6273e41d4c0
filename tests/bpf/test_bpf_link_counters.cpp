// Per-link counters of what only exceptional paths do, through the real
// program with BPF_PROG_TEST_RUN: packets dropped after their link was chosen,
// by reason, on that link (clv_link_drops, clv_link_stats.drops as their sum);
// flows failover moved, from link to link (clv_migrations); and the flows and
// NAT bindings per link that the expiry scan counts (FlowTableTotals).
#include <bpf/bpf.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <doctest/doctest.h>

#include "kernel_site.hpp"
#include "netns_guard.hpp"
#include "packet.hpp"
#include "verdicts_site.hpp"

using namespace clovis;
using test::kActOk;
using test::kActRedirect;
using test::kActShot;
using test::PacketSpec;
using test::tuple;

namespace {

void sh(const std::string& cmd) {
  INFO(cmd);
  REQUIRE(std::system((cmd + " >/dev/null 2>&1").c_str()) == 0);
}

uint32_t word(const char* a) {
  return core::IpAddr::parse(a)->words()[0];
}

// Every link's drops, reason by reason, except `slot`'s `reason`: all zero.
void check_only(const agent::LinkDrops& d, int slot, int reason, uint64_t n) {
  for (size_t s = 0; s < CLV_MAX_LINKS; ++s)
    for (size_t r = 0; r < CLV_LINK_DROP_MAX; ++r) {
      INFO("slot " << s << " reason " << r);
      CHECK(d[s][r] == (static_cast<int>(s) == slot && static_cast<int>(r) == reason ? n : 0));
    }
}

}  // namespace

TEST_CASE("kernel link counters: a packet too big for its redirect link counts as too_big on that link") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::verdicts::Site s;
  sh("ip link set wan0 mtu 1400");
  const int t = s.rules->link_slot("t");
  PacketSpec p;
  p.tuple = tuple("10.1.0.5", "203.0.113.10", 17, 42000, 4789);  // the tunnel rule: link t
  p.ipv4_dont_fragment = true;
  p.payload = 1400 - 28;
  CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActRedirect);  // fits: no drop
  check_only(*s.site.dp().link_drops(), t, CLV_LINK_DROP_TOO_BIG, 0);
  p.payload = 1500 - 28;
  s.site.run(test::build_packet(p), "lan0");
  s.site.run(test::build_packet(p), "lan0");
  auto drops = s.site.dp().link_drops();
  REQUIRE(drops);
  check_only(*drops, t, CLV_LINK_DROP_TOO_BIG, 2);
  auto lc = s.site.dp().link_counters();
  REQUIRE(lc);
  CHECK((*lc)[static_cast<size_t>(t)].drops == 2);  // the sum of its reasons
  CHECK((*lc)[static_cast<size_t>(t)].tx_packets == 1);
  CHECK((*s.site.dp().counters())[CLV_STAT_TOO_BIG] == 2);
}

TEST_CASE("kernel link counters: a refused NAT claim counts as nat_refused on the link that translates") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::verdicts::Site s;
  const int d = s.rules->link_slot("d");
  // An ICMP echo keeps its identifier as its NAT port (one try): an assured
  // connection holding that port refuses the claim.
  PacketSpec p;
  p.tuple = tuple("10.1.0.5", "203.0.113.10", 1, 0, 0);  // the pings rule: link d, snat 192.0.2.2
  p.icmp_id = 777;
  clv_nat_key nk{};
  nk.remote[0] = word("203.0.113.10");
  nk.local[0] = word("192.0.2.2");
  nk.local_port = 777;
  nk.proto = 1;
  nk.family = CLV_AF_INET;
  const auto owner = test::flow_key_of(tuple("10.1.0.9", "203.0.113.10", 1, 0, 0), 777);
  REQUIRE(bpf_map_update_elem(s.site.dp().nat_fd(), &nk, &owner, BPF_ANY) == 0);
  CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActShot);
  auto drops = s.site.dp().link_drops();
  REQUIRE(drops);
  check_only(*drops, d, CLV_LINK_DROP_NAT_REFUSED, 1);
  CHECK((*s.site.dp().link_counters())[static_cast<size_t>(d)].drops == 1);
  const auto c = *s.site.dp().counters();
  // The echo id is a live connection's: busy, not "no port left" (an echo
  // has one port to try, its id; once counted as exhausted).
  CHECK(c[CLV_STAT_NAT_PORT_BUSY] == 1);
  CHECK(c[CLV_STAT_NAT_EXHAUSTED] == 0);
  // The port free again: the next packet is translated, nothing more counted.
  REQUIRE(bpf_map_delete_elem(s.site.dp().nat_fd(), &nk) == 0);
  CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActRedirect);
  check_only(*s.site.dp().link_drops(), d, CLV_LINK_DROP_NAT_REFUSED, 1);
}

TEST_CASE(
    "kernel link counters: failover counts each flow moved from its link to the new one; a drop policy as link_down") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::KernelSite site;
  REQUIRE_MESSAGE(site.ok(), site.error());
  const auto& r = site.apply(R"(version: 1
links:
  - {name: a, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x10}
  - {name: b, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x20}
  - {name: c, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x30}
policies:
  - {name: migrate, failover: [a, b, c]}
  - {name: drop, failover: [a, b, c], on-link-down: drop}
rules:
  - {name: x, priority: 1, match: {proto: tcp, dport: 82}, policy: drop}
default: {policy: migrate}
)");
  const int a = r.link_slot("a"), b = r.link_slot("b"), c = r.link_slot("c");
  auto run = [&](uint16_t sport, uint16_t dport) {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, sport, dport);
    return site.run(test::build_packet(p), "lan0");
  };
  for (uint16_t sport : {1, 2, 3}) CHECK(run(sport, 80).mark == 0x10);
  CHECK(run(4, 82).mark == 0x10);
  auto st = r.all_up_state();
  st.up &= ~(1ull << a);
  site.set_link_state(st);
  for (uint16_t sport : {1, 2, 3}) CHECK(run(sport, 80).mark == 0x20);
  CHECK(run(1, 80).mark == 0x20);  // moved once, counted once
  CHECK(run(4, 82).retval == kActShot);
  st.up &= ~(1ull << b);
  site.set_link_state(st);
  CHECK(run(1, 80).mark == 0x30);
  auto m = site.dp().link_migrations();
  REQUIRE(m);
  uint64_t total = 0;
  for (const auto& from : *m)
    for (uint64_t n : from) total += n;
  CHECK((*m)[static_cast<size_t>(a)][static_cast<size_t>(b)] == 3);
  CHECK((*m)[static_cast<size_t>(b)][static_cast<size_t>(c)] == 1);
  CHECK(total == 4);
  CHECK((*site.dp().counters())[CLV_STAT_MIGRATED] == 4);
  auto drops = site.dp().link_drops();
  REQUIRE(drops);
  check_only(*drops, a, CLV_LINK_DROP_LINK_DOWN, 1);
  CHECK((*site.dp().link_counters())[static_cast<size_t>(a)].drops == 1);
}

TEST_CASE("kernel link counters: a pin directory of a release without the new maps is adopted; they are created") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::verdicts::Site s;
  PacketSpec p;
  p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 41000, 443);
  REQUIRE(s.site.run(test::build_packet(p), "lan0").retval == kActRedirect);
  const std::string maps = s.site.pin_dir() + "/maps/";
  // What earlier releases pinned: everything but these (clv_leave and
  // clv_moves came with live-flow moves, #17).
  for (const char* m : {"clv_link_drops", "clv_migrations", "clv_leave", "clv_moves"})
    REQUIRE(unlink((maps + m).c_str()) == 0);
  auto again = agent::kernel::BpfDataplane::open({s.site.pin_dir(), 1u << 17});
  REQUIRE_MESSAGE(again, (again ? "" : again.error().what()));
  for (const char* m : {"clv_link_drops", "clv_migrations", "clv_leave", "clv_moves"})
    CHECK(access((maps + m).c_str(), F_OK) == 0);
  auto kept = (*again)->has_flow(test::flow_key_of(p.tuple));
  REQUIRE(kept);
  CHECK(*kept);
  auto drops = (*again)->link_drops();
  REQUIRE(drops);
  check_only(*drops, 0, 0, 0);
}

TEST_CASE("kernel link counters: the expiry scan counts each link's flows and NAT bindings as it goes") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::verdicts::Site s;
  const auto d = static_cast<size_t>(s.rules->link_slot("d")), rl = static_cast<size_t>(s.rules->link_slot("r"));
  auto totals = s.site.dp().flow_table_totals();
  REQUIRE(totals);
  CHECK(totals->links_counted_ns == 0);  // no scan yet
  auto send = [&](uint8_t proto, uint16_t sport, uint16_t dport, const char* dst = "203.0.113.10") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", dst, proto, sport, dport);
    return s.site.run(test::build_packet(p), "lan0").retval;
  };
  CHECK(send(6, 41000, 443) == kActRedirect);  // https: d, translated
  CHECK(send(6, 41001, 443) == kActRedirect);
  CHECK(send(17, 5000, 53) == kActOk);  // dns: r, route mode
  send(17, 5001, 9, "10.0.9.1");        // a drop rule (or the host's): no link
  core::FlowTimeouts t;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
  auto gone = s.site.dp().expire_flows(now, t);
  REQUIRE(gone);
  CHECK(*gone == 0);
  totals = s.site.dp().flow_table_totals();
  REQUIRE(totals);
  CHECK(totals->links_counted_ns == now);
  CHECK(totals->link_flows[d] == 2);
  CHECK(totals->link_nat_bindings[d] == 2);
  CHECK(totals->link_flows[rl] == 1);
  CHECK(totals->link_nat_bindings[rl] == 0);
  uint64_t all = 0;
  for (uint64_t n : totals->link_flows) all += n;
  CHECK(all == 3);
  // A scan that expires every flow leaves none counted.
  gone = s.site.dp().expire_flows(now + 100'000'000'000'000ull, t);
  REQUIRE(gone);
  CHECK(*gone == 4);
  totals = s.site.dp().flow_table_totals();
  REQUIRE(totals);
  CHECK(totals->link_flows[d] == 0);
  CHECK(totals->link_nat_bindings[d] == 0);
  CHECK(totals->link_flows[rl] == 0);
}
