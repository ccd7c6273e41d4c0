// Upgrades keep connections: the decisions of migrating an older clovisd's
// pinned flow and NAT maps (agentd/kernel/map_migration.hpp). The kernel side
// is held by tests/bpf/test_bpf_migration.cpp.
#include <doctest/doctest.h>

#include <linux/bpf.h>

#include <cstring>

#include "kernel/map_migration.hpp"

using namespace clovis::agent::kernel;

namespace {

constexpr uint8_t kTcp = 6, kUdp = 17;

clv_flow_key key(uint8_t last, uint16_t sport, uint16_t dport, uint8_t proto) {
  clv_flow_key k{};
  k.family = CLV_AF_INET;
  k.proto = proto;
  k.src[0] = 0x0a000000u | last;
  k.dst[0] = 0xc6336401u;
  k.sport = sport;
  k.dport = dport;
  return k;
}

// An ABI 1 value: 88 bytes, every one of them distinct where it matters.
FlowAbi1 v1_flow(uint64_t pkts_in, uint8_t flags, uint16_t nat_port) {
  clv_flow f{};
  f.first_ns = 1000;
  f.last_ns = 2000;
  f.pkts_out = 7;
  f.bytes_out = 700;
  f.pkts_in = pkts_in;
  f.bytes_in = pkts_in * 100;
  f.rule_id = 3;
  f.generation = 9;
  f.link_epoch = 2;
  f.lan_ifindex = 5;
  f.nat_addr[0] = 0xc0000202u;
  f.nat_port = nat_port;
  f.policy = 4;
  f.link = 1;
  f.action = CLV_ACT_STEER;
  f.flags = flags;
  f.mode = CLV_MODE_REDIRECT;
  FlowAbi1 v{};
  std::memcpy(v.bytes, &f, sizeof v.bytes);
  return v;
}

clv_nat_key binding(const clv_flow_key& k, const FlowAbi1& v) {
  auto nk = nat_key_of(k, flow_from_abi1(v));
  REQUIRE(nk);
  return *nk;
}

MapDef v2_flows(uint32_t n) {
  return {BPF_MAP_TYPE_HASH, 40, 96, n, BPF_F_NO_PREALLOC};
}

}  // namespace

TEST_CASE("migration: an ABI 1 flow keeps its 88 bytes; replied is established and assured, unreplied new") {
  const FlowAbi1 replied = v1_flow(3, CLV_FLOW_NAT, 40000), unreplied = v1_flow(0, 0, 0);
  const clv_flow a = flow_from_abi1(replied), b = flow_from_abi1(unreplied);
  CHECK(std::memcmp(&a, replied.bytes, kFlowAbi1Size) == 0);
  CHECK(std::memcmp(&b, unreplied.bytes, kFlowAbi1Size) == 0);
  CHECK(a.state == CLV_CT_ESTABLISHED);
  CHECK(a.ct_flags == CLV_CT_ASSURED);
  CHECK(is_assured(a));
  CHECK(b.state == CLV_CT_NEW);
  CHECK(b.ct_flags == 0);
  CHECK_FALSE(is_assured(b));
  CHECK(a.pad == 0);
  CHECK(a.pad2 == 0);
}

TEST_CASE("migration: pinned layouts are current, ABI 1 or unknown") {
  const uint32_t n = 1024;
  CHECK(classify_pinned("clv_flows", v2_flows(n), v2_flows(n)) == PinnedLayout::kCurrent);
  CHECK(classify_pinned("clv_flows", {BPF_MAP_TYPE_LRU_HASH, 40, 88, n, 0}, v2_flows(n)) == PinnedLayout::kAbi1);
  const MapDef nat2{BPF_MAP_TYPE_HASH, 40, 40, n, BPF_F_NO_PREALLOC};
  CHECK(classify_pinned("clv_nat", {BPF_MAP_TYPE_LRU_HASH, 40, 40, n, 0}, nat2) == PinnedLayout::kAbi1);
  // The same definitions under a name that never had them, or of another size.
  CHECK(classify_pinned("clv_flows_new", {BPF_MAP_TYPE_LRU_HASH, 40, 88, n, 0},
                        {BPF_MAP_TYPE_LRU_HASH, 40, 96, n, 0}) == PinnedLayout::kUnknown);
  CHECK(classify_pinned("clv_flows", {BPF_MAP_TYPE_LRU_HASH, 40, 88, n * 2, 0}, v2_flows(n)) == PinnedLayout::kUnknown);
  CHECK(classify_pinned("clv_flows", {BPF_MAP_TYPE_HASH, 40, 104, n, BPF_F_NO_PREALLOC}, v2_flows(n)) ==
        PinnedLayout::kUnknown);
}

TEST_CASE("migration: an unknown layout is refused saying what differs and what to do") {
  const std::string m = unknown_layout_message("/sys/fs/bpf/clovis/maps/clv_flows",
                                               {BPF_MAP_TYPE_LRU_HASH, 40, 104, 1024, 0}, v2_flows(1024));
  CHECK(m.find("/sys/fs/bpf/clovis/maps/clv_flows") != std::string::npos);
  CHECK(m.find("type LRU_HASH, this clovisd wants HASH") != std::string::npos);
  CHECK(m.find("value 104 bytes, wants 96") != std::string::npos);
  CHECK(m.find("flags none, wants NO_PREALLOC") != std::string::npos);
  CHECK(m.find("entries") == std::string::npos);  // the size is the same
  CHECK(m.find("clovisd --uninstall") != std::string::npos);
}

TEST_CASE("migration: flows go by assurance, NAT bindings with their flow, orphans are dropped") {
  const clv_flow_key tcp = key(1, 40001, 443, kTcp), udp = key(2, 5353, 53, kUdp), route = key(3, 5000, 80, kTcp);
  const clv_flow_key gone = key(4, 6000, 80, kTcp), moved = key(5, 7000, 80, kTcp), plain = key(6, 8000, 80, kTcp);
  const FlowAbi1 tcp_v = v1_flow(5, CLV_FLOW_NAT, 40001), udp_v = v1_flow(0, CLV_FLOW_NAT, 33000);
  const FlowAbi1 route_v = v1_flow(2, 0, 0), moved_v = v1_flow(1, CLV_FLOW_NAT, 41000), plain_v = v1_flow(1, 0, 0);
  // moved's binding on another port than it holds now, plain's from when it was translated, gone's without a flow.
  clv_nat_key moved_old = binding(moved, moved_v), plain_old = binding(moved, moved_v), gone_nk = binding(tcp, tcp_v);
  moved_old.local_port = 39999;
  plain_old.remote_port = plain.dport;
  gone_nk.local_port = 45000;
  const MigrationPlan p = plan_abi1_migration(
      {tcp, udp, route, moved, plain}, {tcp_v, udp_v, route_v, moved_v, plain_v},
      {binding(tcp, tcp_v), binding(udp, udp_v), moved_old, plain_old, gone_nk, binding(moved, moved_v)},
      {tcp, udp, moved, plain, gone, moved});
  REQUIRE(p.assured_keys.size() == 4);
  CHECK(std::memcmp(&p.assured_keys[0], &tcp, sizeof tcp) == 0);
  CHECK(std::memcmp(&p.assured_keys[1], &route, sizeof tcp) == 0);
  REQUIRE(p.new_keys.size() == 1);
  CHECK(std::memcmp(&p.new_keys[0], &udp, sizeof udp) == 0);
  CHECK(p.new_flows[0].state == CLV_CT_NEW);
  REQUIRE(p.assured_nat_keys.size() == 2);  // tcp's and moved's current one
  CHECK(std::memcmp(&p.assured_nat_owners[0], &tcp, sizeof tcp) == 0);
  CHECK(std::memcmp(&p.assured_nat_owners[1], &moved, sizeof tcp) == 0);
  CHECK(p.assured_nat_keys[1].local_port == 41000);
  REQUIRE(p.new_nat_keys.size() == 1);
  CHECK(std::memcmp(&p.new_nat_owners[0], &udp, sizeof udp) == 0);
  CHECK(p.nat_dropped == 3);  // moved's old port, plain's (not translated), gone's
}

TEST_CASE("migration: the log line counts what was copied and dropped") {
  MigrationCounts c;
  c.assured = 3;
  c.unreplied = 2;
  c.nat = 2;
  c.nat_new = 1;
  c.nat_dropped = 1;
  CHECK(describe(c) ==
        "5 flows (3 assured, 2 unreplied) and 3 NAT bindings (2 assured, 1 unreplied); "
        "1 orphaned NAT bindings dropped");
}
