// Source NAT through the real program with BPF_PROG_TEST_RUN: flows moved
// onto a NAT link are translated there, and ICMP errors about translated
// packets are translated both ways.
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

namespace {

// Sends `p` out (clv_lan_in), then an ICMP error about what left through
// clv_wan_in; checks the error reaches the client about its own packet.
void check_error_comes_back(Site& s, const PacketSpec& p, const char* router, uint8_t type, uint8_t code, size_t quote,
                            uint32_t info = 0) {
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
  auto q = test::parse_packet(test::quoted_frame(r.out));
  REQUIRE(q.ok);
  CHECK(std::equal(q.src, q.src + n, p.tuple.src));
  CHECK(std::equal(q.dst, q.dst + n, p.tuple.dst));
  CHECK(q.ip_csum_ok);  // the quoted IPv4 header's own checksum
  if (p.tuple.proto == 6 || p.tuple.proto == 17) {
    CHECK(q.sport == p.tuple.sport);
    CHECK(q.dport == p.tuple.dport);
  } else {
    const size_t id = 14 + (v6 ? 40u : 20u) + 4;
    const auto qf = test::quoted_frame(r.out);
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
    test::set_icmp_type(req, 13);  // timestamp request: no identifier the program reads
    auto out = s.site.run(req, "lan0");
    REQUIRE(out.retval == kActRedirect);
    PacketSpec back;
    back.tuple = tuple("203.0.113.10", "192.0.2.2", 1, 0, 0);
    auto reply = test::build_packet(back);
    test::set_icmp_type(reply, 14);
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
  auto r = s.site.run(test::build_icmp_error(test::build_packet(answer), p.tuple.src, type, code, quote, info), "lan0");
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
  auto q = test::parse_packet(test::quoted_frame(r.out));
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
    auto q = test::parse_packet(test::quoted_frame(r.out));
    CHECK(q.dst[0] == client[0]);
    CHECK(q.dport == 40700);
    PacketSpec tunnel;  // link t: redirect without NAT
    tunnel.tuple = tuple("10.1.0.5", "198.51.100.1", 17, 1001, 4789);
    REQUIRE(s.site.run(test::build_packet(tunnel), "lan0").retval == kActRedirect);
    PacketSpec back;
    back.tuple = tuple("198.51.100.1", "10.1.0.5", 17, 4789, 1001);
    r = s.site.run(test::build_icmp_error(test::build_packet(back), client.data(), 3, 3, 28), "lan0");
    q = test::parse_packet(test::quoted_frame(r.out));
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
    auto q = test::parse_packet(test::quoted_frame(r.out));
    CHECK(q.dst[0] == words("10.1.0.5")[0]);
    CHECK(q.dport == 40800);
    const auto client = words("10.1.0.5");
    auto err = test::build_icmp_error(test::build_packet(answer), client.data(), 3, 3, 28);
    err[14 + 16 + 3] ^= 1;  // to 203.0.113.11, not the remote the quote is from
    r = s.site.run(err, "lan0");
    q = test::parse_packet(test::quoted_frame(r.out));
    CHECK(q.dst[0] == client[0]);
    CHECK(q.dport == 40800);
  }
}
