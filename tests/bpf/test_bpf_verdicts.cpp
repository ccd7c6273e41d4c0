// Packet tables through the real program with BPF_PROG_TEST_RUN: for every
// packet, the kernel's verdict, flow entry and rewrite are what the mapping
// (and the simulator) say.
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

using namespace clovis;
using test::PacketSpec;
using test::tuple;

namespace {

constexpr int kActOk = -1;  // TC_ACT_UNSPEC: pass on
constexpr int kActShot = 2;
constexpr int kActRedirect = 7;

const char* kMapping = R"(version: 1
links:
  - {name: r, interface: wan0, gateway: [192.0.2.1, "2001:db8:ff::1"], mode: route, mark: 0x77}
  - {name: d, interface: wan0, gateway: [192.0.2.1, "2001:db8:ff::1"], mode: redirect,
     snat: [192.0.2.2, "2001:db8:ff::2"]}
  - {name: t, interface: wan0, gateway: 192.0.2.1, mode: redirect}
rules:
  - {name: https, priority: 10, match: {proto: tcp, dport: 443}, link: d}
  - {name: dns, priority: 20, match: {proto: udp, dport: 53}, link: r}
  - {name: blocked, priority: 30, match: {dst: 10.0.9.0/24}, action: drop}
  - {name: guests, priority: 40, match: {interface: lan1}, action: bypass}
  - {name: tunnel, priority: 50, match: {proto: udp, dport: 4789}, link: t}
  - {name: pings, priority: 60, match: {proto: [icmp, icmpv6]}, link: d}
default: {link: r}
)";

struct Site {
  test::KernelSite site;
  const core::CompiledRules* rules = nullptr;
  Site() {
    REQUIRE_MESSAGE(site.ok(), site.error());
    rules = &site.apply(kMapping);
  }
  std::string rule_of(const clv_flow& f) const { return rules->rules[f.rule_id].name; }
  std::string link_of(const clv_flow& f) const { return rules->link_info[f.link].name; }
};

}  // namespace

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
  CHECK(run_mark(1) == 0x30);  // migrate
  CHECK(site.run(test::build_packet(keep), "lan0").mark == 0x20);  // keep: stays on the dead link
  CHECK(site.run(test::build_packet(drop), "lan0").retval == kActShot);
  CHECK(run_mark(3) == 0x30);  // new flows avoid the dead link
  // b back: migrated flows stay put (no flapping), new ones return.
  site.set_link_state(r3.all_up_state());
  CHECK(run_mark(1) == 0x30);
  CHECK(run_mark(4) == 0x20);
}

TEST_CASE("kernel: a flow migrated onto a NAT link is translated there") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::KernelSite site;
  REQUIRE_MESSAGE(site.ok(), site.error());
  const auto& rules = site.apply(R"(version: 1
links:
  - {name: r, interface: wan0, gateway: 192.0.2.1, mode: route, mark: 0x10}
  - {name: d, interface: wan0, gateway: 192.0.2.1, mode: redirect, snat: 192.0.2.2}
policies:
  - {name: p, failover: [r, d]}
default: {policy: p}
)");
  PacketSpec p;
  p.tuple = tuple("10.1.0.5", "203.0.113.10", 17, 5000, 5060);
  const auto pkt = test::build_packet(p);
  CHECK(site.run(pkt, "lan0").mark == 0x10);
  auto st = rules.all_up_state();
  st.up &= ~(1ull << rules.link_slot("r"));
  site.set_link_state(st);
  auto r = site.run(pkt, "lan0");
  CHECK(r.retval == kActRedirect);
  auto out = test::parse_packet(r.out);
  CHECK(out.src[0] == core::IpAddr::parse("192.0.2.2")->words()[0]);
  CHECK(out.l4_csum_ok);
  clv_flow f{};
  REQUIRE(site.flow(test::flow_key_of(p.tuple), &f));
  CHECK((f.flags & CLV_FLOW_MIGRATED));
  CHECK((f.flags & CLV_FLOW_NAT));
}

TEST_CASE("kernel: a flow a proxy pinned to a NAT link is translated from its next packet, and stays put") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  Site s;
  const auto& rules = *s.rules;
  PacketSpec p;
  p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 41000, 8000);  // no rule: the default would say r
  const auto key = test::flow_key_of(p.tuple);
  const int d = rules.link_slot("d");
  auto bank = s.site.dp().active_bank();
  REQUIRE(bank);
  clv_flow f{};
  f.action = CLV_ACT_STEER;
  f.link = static_cast<uint8_t>(d);
  f.link_epoch = rules.links[static_cast<size_t>(d)].epoch;
  f.mode = CLV_MODE_REDIRECT;
  f.generation = rules.generation;
  f.policy = static_cast<uint16_t>(*bank * CLV_MAX_POLICIES);
  f.flags = CLV_FLOW_PROXY | CLV_FLOW_NAT_PENDING;
  auto pinned = s.site.dp().pin_flow(key, f);
  REQUIRE(pinned);
  CHECK(*pinned);

  const auto pkt = test::build_packet(p);
  auto r = s.site.run(pkt, "lan0");
  CHECK(r.retval == kActRedirect);
  auto out = test::parse_packet(r.out);
  CHECK(out.src[0] == core::IpAddr::parse("192.0.2.2")->words()[0]);
  CHECK(out.l4_csum_ok);
  clv_flow got{};
  REQUIRE(s.site.flow(key, &got));
  CHECK((got.flags & CLV_FLOW_NAT));
  CHECK_FALSE((got.flags & CLV_FLOW_NAT_PENDING));
  CHECK((got.flags & CLV_FLOW_PROXY));
  const uint16_t port = got.nat_port;

  // The proxy reports the same connection again (keep-alive): it keeps its
  // translation, and the next packet leaves with the same source port.
  REQUIRE(*s.site.dp().pin_flow(key, f));
  REQUIRE(s.site.flow(key, &got));
  CHECK((got.flags & CLV_FLOW_NAT));
  CHECK(got.nat_port == port);
  r = s.site.run(pkt, "lan0");
  CHECK(test::parse_packet(r.out).sport == port);

  // Another link for a translated connection would change its source: refused.
  clv_flow other = f;
  other.link = static_cast<uint8_t>(rules.link_slot("t"));
  other.link_epoch = rules.links[static_cast<size_t>(rules.link_slot("t"))].epoch;
  other.flags = CLV_FLOW_PROXY;
  CHECK_FALSE(*s.site.dp().pin_flow(key, other));
  REQUIRE(s.site.flow(key, &got));
  CHECK(got.link == d);
  CHECK(got.nat_port == port);
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

namespace {

// The IP packet an ICMP error quotes, as a frame of its own (for parse_packet).
std::vector<uint8_t> quoted_frame(const std::vector<uint8_t>& icmp_frame) {
  const bool v6 = icmp_frame[12] == 0x86;
  const size_t off = 14 + (v6 ? 40u : (icmp_frame[14] & 0xfu) * 4u) + 8;
  REQUIRE(icmp_frame.size() >= off);
  std::vector<uint8_t> f(14 + icmp_frame.size() - off);
  std::copy_n(icmp_frame.begin(), 14, f.begin());
  std::copy(icmp_frame.begin() + static_cast<std::ptrdiff_t>(off), icmp_frame.end(), f.begin() + 14);
  return f;
}

// Turns an ICMP(v4) echo request built by build_packet into another type.
void set_icmp_type(std::vector<uint8_t>& f, uint8_t type) {
  const size_t l4 = 14 + (f[14] & 0xfu) * 4u;
  f[l4] = type;
  f[l4 + 2] = f[l4 + 3] = 0;
  uint32_t sum = 0;
  for (size_t i = l4; i + 1 < f.size(); i += 2) sum += uint32_t(f[i] << 8 | f[i + 1]);
  if ((f.size() - l4) & 1) sum += uint32_t(f.back() << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  f[l4 + 2] = uint8_t(~sum >> 8);
  f[l4 + 3] = uint8_t(~sum);
}

std::array<uint32_t, 4> words(const char* a) {
  auto ip = core::IpAddr::parse(a);
  REQUIRE(ip);
  return ip->words();
}

// Sends `p` out (clv_lan_in), then an ICMP error about what left through
// clv_wan_in; checks the error reaches the client about its own packet.
void check_error_comes_back(Site& s, const PacketSpec& p, const char* router, uint8_t type, uint8_t code,
                            size_t quote, uint32_t info = 0) {
  auto out = s.site.run(test::build_packet(p), "lan0");
  REQUIRE(out.retval == kActRedirect);
  const auto from = words(router);
  const auto before = s.site.dp().counters();
  auto r = s.site.run_wan_in(test::build_icmp_error(out.out, from.data(), type, code, quote, info));
  REQUIRE(r.retval == kActRedirect);
  CHECK((*s.site.dp().counters())[CLV_STAT_ICMP_ERR_IN] == (*before)[CLV_STAT_ICMP_ERR_IN] + 1);
  const bool v6 = p.tuple.family == CLV_AF_INET6;
  const size_t n = v6 ? 4 : 1;
  auto back = test::parse_packet(r.out);
  REQUIRE(back.ok);
  CHECK(std::equal(back.dst, back.dst + n, p.tuple.src));
  CHECK(std::equal(back.src, back.src + n, from.data()));
  CHECK(back.ttl == 63);
  CHECK(back.ip_csum_ok);
  CHECK(back.l4_csum_ok);  // the ICMP checksum
  const size_t l4 = 14 + (v6 ? 40u : 20u);
  CHECK(r.out[l4] == type);
  CHECK(r.out[l4 + 1] == code);
  CHECK((uint32_t(r.out[l4 + 4]) << 24 | uint32_t(r.out[l4 + 5]) << 16 | uint32_t(r.out[l4 + 6]) << 8 |
         r.out[l4 + 7]) == info);
  auto q = test::parse_packet(quoted_frame(r.out));
  REQUIRE(q.ok);
  CHECK(std::equal(q.src, q.src + n, p.tuple.src));
  CHECK(std::equal(q.dst, q.dst + n, p.tuple.dst));
  CHECK(q.ip_csum_ok);  // the quoted IPv4 header's own checksum
  if (p.tuple.proto == 6 || p.tuple.proto == 17) {
    CHECK(q.sport == p.tuple.sport);
    CHECK(q.dport == p.tuple.dport);
  } else {
    const size_t id = 14 + (v6 ? 40u : 20u) + 4;
    const auto qf = quoted_frame(r.out);
    CHECK((uint16_t(qf[id] << 8 | qf[id + 1])) == p.icmp_id);
  }
}

}  // namespace

TEST_CASE("kernel: ICMP errors about translated packets reach the client, about its own packet") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  Site s;
  SUBCASE("IPv4 TCP: port unreachable, time exceeded, fragmentation needed (MTU kept)") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 40100, 443);
    check_error_comes_back(s, p, "203.0.113.10", 3, 3, 28);
    check_error_comes_back(s, p, "198.51.100.77", 11, 0, 28);
    check_error_comes_back(s, p, "198.51.100.77", 3, 4, 576, 1400);
  }
  SUBCASE("IPv4: a client whose port was taken had another NAT port; the quote gets its own back") {
    PacketSpec first;
    first.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 40200, 443);
    REQUIRE(s.site.run(test::build_packet(first), "lan0").retval == kActRedirect);
    PacketSpec p;
    p.tuple = tuple("10.1.0.6", "203.0.113.10", 6, 40200, 443);
    check_error_comes_back(s, p, "203.0.113.10", 3, 3, 28);
    clv_flow f{};
    REQUIRE(s.site.flow(test::flow_key_of(p.tuple), &f));
    CHECK(f.nat_port != 40200);
  }
  SUBCASE("IPv4 ICMP echo: time exceeded (traceroute -I) quotes the echo identifier") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 1, 0, 0);
    p.icmp_id = 778;
    check_error_comes_back(s, p, "198.51.100.77", 11, 0, 28);
  }
  SUBCASE("IPv6 TCP: port unreachable, packet too big (MTU kept), time exceeded; the whole packet quoted") {
    PacketSpec p;
    p.tuple = tuple("2001:db8:1::5", "2001:db8:cafe::10", 6, 40300, 443);
    check_error_comes_back(s, p, "2001:db8:cafe::10", 1, 4, 1232);
    check_error_comes_back(s, p, "2001:db8:ff::1", 2, 0, 1232, 1280);
    check_error_comes_back(s, p, "2001:db8:ff::1", 3, 0, 48);
  }
  SUBCASE("errors about packets clovis did not translate, or cannot read, are the kernel's") {
    const auto router = words("198.51.100.77");
    PacketSpec tunnel;  // link t: redirect without NAT; the error is addressed to the client
    tunnel.tuple = tuple("10.1.0.5", "198.51.100.1", 17, 1000, 4789);
    auto out = s.site.run(test::build_packet(tunnel), "lan0");
    REQUIRE(out.retval == kActRedirect);
    CHECK(s.site.run_wan_in(test::build_icmp_error(out.out, router.data(), 3, 3, 28)).retval == kActOk);

    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 40400, 443);
    out = s.site.run(test::build_packet(p), "lan0");
    REQUIRE(out.retval == kActRedirect);
    auto err = test::build_icmp_error(out.out, router.data(), 3, 3, 24);  // 4 bytes of TCP: no room to be sure
    CHECK(s.site.run_wan_in(err).retval == kActOk);
    auto stranger = out.out;  // a NAT port nobody holds
    stranger[14 + 20] ^= 0x55;
    CHECK(s.site.run_wan_in(test::build_icmp_error(stranger, router.data(), 3, 3, 28)).retval == kActOk);
    auto redirect = test::build_icmp_error(out.out, router.data(), 5, 1, 28);  // a redirect quotes too: not an error
    CHECK(s.site.run_wan_in(redirect).retval == kActOk);
    // Sent to another address than the one the quoted packet left from:
    // conntrack refuses it, and so does clovis (nothing reaches the client).
    auto elsewhere = test::build_icmp_error(out.out, router.data(), 3, 3, 28);
    elsewhere[14 + 16 + 3] ^= 1;  // outer destination 192.0.2.3
    CHECK(s.site.run_wan_in(elsewhere).retval == kActOk);
  }
  SUBCASE("other ICMP answers of a translated flow still come back (timestamp reply)") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 1, 0, 0);
    auto req = test::build_packet(p);
    set_icmp_type(req, 13);  // timestamp request: no identifier the program reads
    auto out = s.site.run(req, "lan0");
    REQUIRE(out.retval == kActRedirect);
    PacketSpec back;
    back.tuple = tuple("203.0.113.10", "192.0.2.2", 1, 0, 0);
    auto reply = test::build_packet(back);
    set_icmp_type(reply, 14);
    auto r = s.site.run_wan_in(reply);
    CHECK(r.retval == kActRedirect);
    CHECK(test::parse_packet(r.out).dst[0] == words("10.1.0.5")[0]);
  }
}

namespace {

// A flow `p` goes out (clv_lan_in); the remote answers (clv_wan_in gives the
// answer back to the client); the client's ICMP error about that answer goes
// through clv_lan_in. Checks it leaves as the remote expects it: from the NAT
// address, about the packet the remote sent (NAT address and port as
// destination).
void check_client_error_leaves_translated(Site& s, const PacketSpec& p, uint8_t type, uint8_t code, size_t quote,
                                          uint32_t info = 0) {
  auto out = s.site.run(test::build_packet(p), "lan0");
  REQUIRE(out.retval == kActRedirect);
  clv_flow f{};
  REQUIRE(s.site.flow(test::flow_key_of(p.tuple), &f));
  REQUIRE((f.flags & CLV_FLOW_NAT));
  PacketSpec answer;  // as the client got it: to its own address and port
  answer.tuple = p.tuple;
  std::swap(answer.tuple.sport, answer.tuple.dport);
  std::memcpy(answer.tuple.src, p.tuple.dst, 16);
  std::memcpy(answer.tuple.dst, p.tuple.src, 16);
  const auto before = s.site.dp().counters();
  auto r = s.site.run(test::build_icmp_error(test::build_packet(answer), p.tuple.src, type, code, quote, info),
                      "lan0");
  REQUIRE(r.retval == kActRedirect);
  CHECK((*s.site.dp().counters())[CLV_STAT_ICMP_ERR_OUT] == (*before)[CLV_STAT_ICMP_ERR_OUT] + 1);
  const bool v6 = p.tuple.family == CLV_AF_INET6;
  const size_t n = v6 ? 4 : 1;
  auto sent = test::parse_packet(r.out);
  REQUIRE(sent.ok);
  CHECK(std::equal(sent.src, sent.src + n, f.nat_addr));
  CHECK(std::equal(sent.dst, sent.dst + n, p.tuple.dst));
  CHECK(sent.ttl == 63);
  CHECK(sent.ip_csum_ok);
  CHECK(sent.l4_csum_ok);
  const size_t l4 = 14 + (v6 ? 40u : 20u);
  CHECK(r.out[l4] == type);
  CHECK(r.out[l4 + 1] == code);
  auto q = test::parse_packet(quoted_frame(r.out));
  REQUIRE(q.ok);
  CHECK(std::equal(q.src, q.src + n, p.tuple.dst));
  CHECK(std::equal(q.dst, q.dst + n, f.nat_addr));
  CHECK(q.sport == p.tuple.dport);
  CHECK(q.dport == f.nat_port);
  CHECK(q.ip_csum_ok);
}

}  // namespace

TEST_CASE("kernel: a client's ICMP error about a translated flow leaves by its link, translated") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  Site s;
  SUBCASE("IPv4: port unreachable; the NAT port when the client's own was taken") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 40500, 443);
    check_client_error_leaves_translated(s, p, 3, 3, 28);
    p.tuple = tuple("10.1.0.6", "203.0.113.10", 6, 40500, 443);  // port 40500 is taken now
    check_client_error_leaves_translated(s, p, 3, 3, 576);
    clv_flow f{};
    REQUIRE(s.site.flow(test::flow_key_of(p.tuple), &f));
    CHECK(f.nat_port != 40500);
  }
  SUBCASE("IPv6: port unreachable and packet too big") {
    PacketSpec p;
    p.tuple = tuple("2001:db8:1::5", "2001:db8:cafe::10", 6, 40600, 443);
    check_client_error_leaves_translated(s, p, 1, 4, 1232);
    check_client_error_leaves_translated(s, p, 2, 0, 1232, 1280);
  }
  SUBCASE("errors about flows clovis does not translate go the usual way") {
    PacketSpec unknown;  // about a packet of no flow
    unknown.tuple = tuple("198.51.100.9", "10.1.0.5", 6, 443, 40700);
    const auto client = words("10.1.0.5");
    // Classified as any ICMP packet (rule pings), the quote as the client wrote it.
    auto r = s.site.run(test::build_icmp_error(test::build_packet(unknown), client.data(), 3, 3, 28), "lan0");
    auto q = test::parse_packet(quoted_frame(r.out));
    CHECK(q.dst[0] == client[0]);
    CHECK(q.dport == 40700);
    PacketSpec tunnel;  // link t: redirect without NAT
    tunnel.tuple = tuple("10.1.0.5", "198.51.100.1", 17, 1001, 4789);
    REQUIRE(s.site.run(test::build_packet(tunnel), "lan0").retval == kActRedirect);
    PacketSpec back;
    back.tuple = tuple("198.51.100.1", "10.1.0.5", 17, 4789, 1001);
    r = s.site.run(test::build_icmp_error(test::build_packet(back), client.data(), 3, 3, 28), "lan0");
    q = test::parse_packet(quoted_frame(r.out));
    CHECK(q.dst[0] == client[0]);  // untouched
    CHECK(q.dport == 1001);
  }
  SUBCASE("an error about a translated flow from another host, or to another address, is not translated") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 6, 40800, 443);
    REQUIRE(s.site.run(test::build_packet(p), "lan0").retval == kActRedirect);
    PacketSpec answer;
    answer.tuple = tuple("203.0.113.10", "10.1.0.5", 6, 443, 40800);
    const auto other = words("10.1.0.9");  // quoting 10.1.0.5's flow
    auto r = s.site.run(test::build_icmp_error(test::build_packet(answer), other.data(), 3, 3, 28), "lan0");
    auto q = test::parse_packet(quoted_frame(r.out));
    CHECK(q.dst[0] == words("10.1.0.5")[0]);
    CHECK(q.dport == 40800);
    const auto client = words("10.1.0.5");
    auto err = test::build_icmp_error(test::build_packet(answer), client.data(), 3, 3, 28);
    err[14 + 16 + 3] ^= 1;  // to 203.0.113.11, not the remote the quote is from
    r = s.site.run(err, "lan0");
    q = test::parse_packet(quoted_frame(r.out));
    CHECK(q.dst[0] == client[0]);
    CHECK(q.dport == 40800);
  }
}
