// Packet tables through the real program with BPF_PROG_TEST_RUN: for every
// packet, the kernel's verdict, flow entry and rewrite are what the mapping
// (and the simulator) say. Translated flows and ICMP errors about them are
// test_bpf_nat.cpp's.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

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
using test::words;
using test::verdicts::Site;

TEST_CASE("kernel verdicts: steering modes, NAT, TTL, drop, bypass, ingress interface") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  Site s;
  SUBCASE("redirect mode rewrites the source, fixes checksums and decrements TTL") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 40000, 443);
    auto r = s.site.run(test::build_packet(p), "lan0");
    CHECK(r.retval == kActRedirect);
    clv_flow f{};
    REQUIRE(s.site.flow(test::flow_key_of(p.tuple), &f));
    CHECK(s.rule_of(f) == "https");
    CHECK(s.link_of(f) == "d");
    CHECK((f.flags & CLV_FLOW_NAT));
    auto out = test::parse_packet(r.out);
    REQUIRE(out.ok);
    CHECK(out.src[0] == core::IpAddr::parse("192.0.2.2")->words()[0]);
    CHECK(out.sport == f.nat_port);
    CHECK(out.dport == 443);
    CHECK(out.ttl == 63);
    CHECK(out.ip_csum_ok);
    CHECK(out.l4_csum_ok);
  }
  SUBCASE("IPv6 redirect with NAT, behind a hop-by-hop header") {
    PacketSpec p;
    p.tuple = tuple("2001:db8:1::5", "2001:db8:cafe::10", 6, 40001, 443);
    p.ipv6_hop_by_hop = true;
    auto r = s.site.run(test::build_packet(p), "lan0");
    CHECK(r.retval == kActRedirect);
    clv_flow f{};
    REQUIRE(s.site.flow(test::flow_key_of(p.tuple), &f));
    CHECK(s.rule_of(f) == "https");
  }
  SUBCASE("IPv6 redirect rewrites the source with a valid TCP checksum") {
    PacketSpec p;
    p.tuple = tuple("2001:db8:1::5", "2001:db8:cafe::10", 6, 40002, 443);
    auto r = s.site.run(test::build_packet(p), "lan0");
    CHECK(r.retval == kActRedirect);
    auto out = test::parse_packet(r.out);
    CHECK(out.src[3] == core::IpAddr::parse("2001:db8:ff::2")->words()[3]);
    CHECK(out.ttl == 63);
    CHECK(out.l4_csum_ok);
  }
  SUBCASE("route mode only marks; the kernel routes, NATs and decrements TTL") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "198.51.100.1", 17, 5353, 53);
    auto r = s.site.run(test::build_packet(p), "lan0");
    CHECK(r.retval == kActOk);
    CHECK(r.mark == 0x77);
    auto out = test::parse_packet(r.out);
    CHECK(out.ttl == 64);
    CHECK(out.src[0] == core::IpAddr::parse("10.1.0.5")->words()[0]);
  }
  SUBCASE("a redirect link without NAT keeps the source") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "198.51.100.1", 17, 1000, 4789);
    auto r = s.site.run(test::build_packet(p), "lan0");
    CHECK(r.retval == kActRedirect);
    auto out = test::parse_packet(r.out);
    CHECK(out.src[0] == core::IpAddr::parse("10.1.0.5")->words()[0]);
    CHECK(out.l4_csum_ok);
  }
  SUBCASE("drop and bypass rules; the ingress interface matters") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "10.0.9.7", 6, 1234, 80);
    CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActShot);
    p.tuple = tuple("10.1.0.5", "198.51.100.7", 6, 1234, 80);
    auto r = s.site.run(test::build_packet(p), "lan1");
    CHECK(r.retval == kActOk);
    CHECK(r.mark == 0);
    clv_flow f{};
    REQUIRE(s.site.flow(test::flow_key_of(p.tuple), &f));
    CHECK(s.rule_of(f) == "guests");
    CHECK(f.action == CLV_ACT_BYPASS);
  }
  SUBCASE("ICMP echo is a flow per identifier and is translated") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 1, 0, 0);
    p.icmp_id = 777;
    auto r = s.site.run(test::build_packet(p), "lan0");
    CHECK(r.retval == kActRedirect);
    clv_flow f{};
    REQUIRE(s.site.flow(test::flow_key_of(p.tuple, 777), &f));
    CHECK(s.rule_of(f) == "pings");
    CHECK(test::parse_packet(r.out).ip_csum_ok);
  }
  SUBCASE("the TTL decrement leaves exactly the header a full checksum computation gives") {
    // Redirect without NAT (link t): only TTL and checksum change, rewritten in
    // one store with the kernel's incremental arithmetic. Every TTL, with and
    // without IP options, many checksum values (the source address varies).
    for (int ttl = 2; ttl <= 255; ++ttl) {
      PacketSpec p;
      p.tuple = tuple("10.1.0.5", "203.0.113.10", 17, static_cast<uint16_t>(1000 + ttl), 4789);
      p.tuple.src[0] = htonl(0x0a010000u + static_cast<uint32_t>(ttl) * 2654435761u % 65536u);
      p.ttl = static_cast<uint8_t>(ttl);
      p.ip_options = ttl % 3 == 0 ? 1 : 0;
      const auto in = test::build_packet(p);
      auto r = s.site.run(in, "lan0");
      REQUIRE(r.retval == kActRedirect);
      REQUIRE(r.out.size() == in.size());
      auto want = in;
      want[14 + 8] = static_cast<uint8_t>(ttl - 1);
      want[14 + 10] = want[14 + 11] = 0;
      const size_t ihl = (want[14] & 0xf) * 4u;
      uint32_t sum = 0;
      for (size_t i = 0; i < ihl; i += 2) sum += static_cast<uint32_t>(want[14 + i] << 8 | want[14 + i + 1]);
      while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
      want[14 + 10] = static_cast<uint8_t>(~sum >> 8);
      want[14 + 11] = static_cast<uint8_t>(~sum);
      CHECK_MESSAGE(r.out == want, "ttl " << ttl);
    }
  }
  SUBCASE("TTL 1 is left to the kernel, which answers with ICMP time exceeded") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 40009, 443);
    p.ttl = 1;
    CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActOk);
  }
  SUBCASE("destinations of the host itself are never steered") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "192.0.2.2", 6, 40010, 443);
    auto r = s.site.run(test::build_packet(p), "lan0");
    CHECK(r.retval == kActOk);
    clv_flow f{};
    REQUIRE(s.site.flow(test::flow_key_of(p.tuple), &f));
    CHECK((f.flags & CLV_FLOW_LOCAL));
  }
  SUBCASE("fragments, IP options, non-IP and truncated packets") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 40011, 443);
    p.ip_options = 2;  // options are skipped by IHL and the packet is steered
    CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActRedirect);
    p.ip_options = 0;
    p.tuple.sport = 40012;
    p.ipv4_more_fragments = true;  // first fragment: a packet of its flow (test_bpf_forwarding.cpp)
    CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActRedirect);
    clv_flow f{};
    CHECK(s.site.flow(test::flow_key_of(p.tuple), &f));
    p.ipv4_more_fragments = false;
    p.ipv4_frag_offset = 100;  // a later fragment: no ports to read; it follows the first
    CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActRedirect);
    p.frag_id = 8;  // of a datagram whose first fragment was not seen
    CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActShot);
    PacketSpec v6;
    v6.tuple = tuple("2001:db8:1::5", "2001:db8:cafe::10", 6, 40013, 443);
    v6.ipv6_fragment = true;
    CHECK(s.site.run(test::build_packet(v6), "lan0").retval == kActRedirect);
    p.ipv4_frag_offset = 0;
    auto arp = test::build_packet(p);
    arp[12] = 0x08, arp[13] = 0x06;
    CHECK(s.site.run(arp, "lan0").retval == kActOk);
    auto cut = test::build_packet(p);
    cut.resize(14 + 20 + 2);  // ports cut off: unparseable, `unparsed: drop` by default
    CHECK(s.site.run(cut, "lan0").retval == kActShot);
    auto c = s.site.dp().counters();
    REQUIRE(c);
    CHECK((*c)[CLV_STAT_FRAGMENT] == 2);
    CHECK((*c)[CLV_STAT_FRAG_UNKNOWN] == 1);
    CHECK((*c)[CLV_STAT_NOT_IP] == 1);
    CHECK((*c)[CLV_STAT_MALFORMED] == 1);
    CHECK((*c)[CLV_STAT_UNPARSED_DROP] == 1);
  }
}

TEST_CASE("kernel: a flow keeps its link; counters add up") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  Site s;
  PacketSpec p;
  p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 41000, 443);
  p.payload = 100;
  const auto pkt = test::build_packet(p);
  for (int i = 0; i < 50; ++i) REQUIRE(s.site.run(pkt, "lan0").retval == kActRedirect);
  clv_flow f{};
  REQUIRE(s.site.flow(test::flow_key_of(p.tuple), &f));
  CHECK(f.pkts_out == 50);
  CHECK(f.bytes_out == 50 * pkt.size());
  auto lc = s.site.dp().link_counters();
  REQUIRE(lc);
  const int d = s.rules->link_slot("d");
  CHECK((*lc)[d].tx_packets == 50);
  CHECK((*lc)[d].tx_bytes == 50 * pkt.size());
  CHECK((*lc)[d].new_flows == 1);
}

TEST_CASE("kernel: apply is atomic per flow; removed links reclassify; failover follows the policy") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::KernelSite site;
  REQUIRE_MESSAGE(site.ok(), site.error());
  const char* base = R"(version: 1
links:
  - {name: a, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x10}
  - {name: b, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x20}
  - {name: c, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x30}
)";
  auto run_mark = [&](uint16_t sport) {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, sport, 80);
    return site.run(test::build_packet(p), "lan0").mark;
  };
  site.apply(std::string(base) + "default: {link: a}\n");
  CHECK(run_mark(1) == 0x10);
  site.apply(std::string(base) + "default: {link: b}\n");
  CHECK(run_mark(1) == 0x10);  // existing flow keeps its link
  CHECK(run_mark(2) == 0x20);  // new flows get the new rules
  // Link a removed: its flows are classified again.
  const auto& r3 = site.apply(R"(version: 1
links:
  - {name: b, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x20}
  - {name: c, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x30}
policies:
  - {name: migrate, failover: [b, c]}
  - {name: keep, failover: [b, c], on-link-down: keep}
  - {name: drop, failover: [b, c], on-link-down: drop}
rules:
  - {name: k, priority: 1, match: {proto: tcp, dport: 81}, policy: keep}
  - {name: x, priority: 2, match: {proto: tcp, dport: 82}, policy: drop}
default: {policy: migrate}
)");
  CHECK(run_mark(1) == 0x20);
  auto st = r3.all_up_state();
  PacketSpec keep, drop;
  keep.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 5, 81);
  drop.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 6, 82);
  CHECK(site.run(test::build_packet(keep), "lan0").mark == 0x20);
  CHECK(site.run(test::build_packet(drop), "lan0").mark == 0x20);
  st.up &= ~(1ull << r3.link_slot("b"));
  site.set_link_state(st);
  CHECK(run_mark(1) == 0x30);                                      // migrate
  CHECK(site.run(test::build_packet(keep), "lan0").mark == 0x20);  // keep: stays on the dead link
  CHECK(site.run(test::build_packet(drop), "lan0").retval == kActShot);
  CHECK(run_mark(3) == 0x30);  // new flows avoid the dead link
  // b back: migrated flows stay put (no flapping), new ones return.
  site.set_link_state(r3.all_up_state());
  CHECK(run_mark(1) == 0x30);
  CHECK(run_mark(4) == 0x20);
}

TEST_CASE("kernel: an apply that fails before the flip leaves the links' settings and state as they were") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::KernelSite site;
  REQUIRE_MESSAGE(site.ok(), site.error());
  const auto& a = site.apply(R"(version: 1
links:
  - {name: d, interface: wan0, gateway: 192.0.2.1, mode: redirect, snat: 192.0.2.2}
default: {link: d}
)");
  const uint32_t d = static_cast<uint32_t>(a.link_slot("d"));
  const int links = bpf_obj_get((site.pin_dir() + "/maps/clv_links").c_str());
  REQUIRE(links >= 0);
  clv_link before{}, after{};
  REQUIRE(bpf_map_lookup_elem(links, &d, &before) == 0);
  auto state_before = site.dp().link_state();
  REQUIRE(state_before);
  // Make the last write before the flip fail: a frozen map refuses writes
  // from user space (the site is thrown away afterwards).
  const int meta = bpf_obj_get((site.pin_dir() + "/maps/clv_meta").c_str());
  REQUIRE(meta >= 0);
  REQUIRE(bpf_map_freeze(meta) == 0);
  CHECK_THROWS(site.apply(R"(version: 1
links:
  - {name: d, interface: wan0, gateway: 192.0.2.1, mode: redirect, snat: 192.0.2.99}
default: {link: d}
)"));
  REQUIRE(bpf_map_lookup_elem(links, &d, &after) == 0);
  CHECK(std::memcmp(&before, &after, sizeof before) == 0);  // still translating to 192.0.2.2
  CHECK(after.snat4 == core::IpAddr::parse("192.0.2.2")->words()[0]);
  auto state_after = site.dp().link_state();
  REQUIRE(state_after);
  CHECK(std::memcmp(&*state_before, &*state_after, sizeof(clv_link_state)) == 0);
  close(meta);
  close(links);
}
