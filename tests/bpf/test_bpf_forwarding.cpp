// Forwarding duties of the kernel path that the stack would otherwise have
// done: routes the host refuses stay refused, and packets too big for the
// link they are redirected to are answered as the kernel's forwarding does.
#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <doctest/doctest.h>

#include "kernel_site.hpp"
#include "netns_guard.hpp"
#include "packet.hpp"

using namespace clovis;
using test::PacketSpec;
using test::tuple;

namespace {

using test::kActOk;
using test::kActRedirect;
using test::kActShot;

const char* kMapping = R"(version: 1
links:
  - {name: r, interface: wan0, gateway: [192.0.2.1, "2001:db8:ff::1"], mode: route, mark: 0x77}
  - {name: d, interface: wan0, gateway: [192.0.2.1, "2001:db8:ff::1"], mode: redirect,
     snat: [192.0.2.2, "2001:db8:ff::2"]}
rules:
  - {name: dns, priority: 10, match: {proto: udp, dport: 53}, link: r}
  - {name: blocked, priority: 20, match: {proto: udp, dport: 9}, action: drop}
default: {link: d}
)";

void sh(const std::string& cmd) {
  INFO(cmd);
  REQUIRE(std::system((cmd + " >/dev/null 2>&1").c_str()) == 0);
}

struct Site {
  test::KernelSite site;
  Site() {
    REQUIRE_MESSAGE(site.ok(), site.error());
    site.apply(kMapping);
  }
};

}  // namespace

TEST_CASE("kernel: a destination the host would not forward (blackhole, unreachable, prohibit) is never steered") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  Site s;
  uint16_t port = 41000;
  for (const char* type : {"blackhole", "unreachable", "prohibit"}) {
    CAPTURE(type);
    sh(std::string("ip route add ") + type + " 198.51.100.64/28");
    sh(std::string("ip -6 route add ") + type + " 2001:db8:dead::/48");
    struct Case {
      const char* src;
      const char* dst;
      uint8_t proto;
      uint16_t dport;
    } cases[] = {{"10.1.0.5", "198.51.100.70", 6, 443},  // redirect link, NAT
                 {"10.1.0.5", "198.51.100.70", 17, 53},  // route link: no mark either
                 {"2001:db8:1::5", "2001:db8:dead::7", 6, 443},
                 {"2001:db8:1::5", "2001:db8:dead::7", 17, 53}};
    for (const Case& c : cases) {
      CAPTURE(c.dst);
      CAPTURE(c.dport);
      PacketSpec p;
      p.tuple = tuple(c.src, c.dst, c.proto, port++, c.dport);
      auto r = s.site.run(test::build_packet(p), "lan0");
      CHECK(r.retval == kActOk);  // the stack applies the route
      CHECK(r.mark == 0);
      auto out = test::parse_packet(r.out);
      CHECK(out.src[0] == p.tuple.src[0]);  // untranslated
      clv_flow f{};
      REQUIRE(s.site.flow(test::flow_key_of(p.tuple), &f));
      CHECK((f.flags & CLV_FLOW_LOCAL));
    }
    // Next to it, a routable destination is steered as before.
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "198.51.100.90", 6, port++, 443);
    CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActRedirect);
    sh(std::string("ip route del ") + type + " 198.51.100.64/28");
    sh(std::string("ip -6 route del ") + type + " 2001:db8:dead::/48");
  }
}

namespace {

uint32_t word(const char* addr, int i = 0) {
  return core::IpAddr::parse(addr)->words()[static_cast<size_t>(i)];
}

uint16_t be16(const std::vector<uint8_t>& v, size_t off) {
  return static_cast<uint16_t>(v[off] << 8 | v[off + 1]);
}

// The site's LAN: our addresses on lan0 and a route to the clients behind it,
// from which the ICMP answer's source is chosen.
void lan_routes() {
  sh("ip route add 10.1.0.0/16 via 10.200.0.2 dev lan0");
  sh("ip -6 addr add 2001:db8:1::1/64 dev lan0 nodad");
  sh("ip link set wan0 mtu 1400");
}

// Checks that `out` is the ICMP error the kernel's forwarding would send the
// client about `in`: from our LAN address, quoting `in` from its IP header on.
void check_too_big(const std::vector<uint8_t>& in, const std::vector<uint8_t>& out, bool v6) {
  auto o = test::parse_packet(out);
  REQUIRE(o.ok);
  auto i = test::parse_packet(in);
  CHECK(o.ip_csum_ok);
  CHECK(o.l4_csum_ok);
  CHECK(std::memcmp(o.dst, i.src, 16) == 0);  // to the client, untranslated
  const size_t l4 = 14 + (v6 ? 40 : 20), quote = v6 ? 1232 : 548;
  REQUIRE(out.size() == l4 + 8 + quote);
  if (v6) {
    CHECK(o.src[0] == word("2001:db8:1::1", 0));
    CHECK(o.src[3] == word("2001:db8:1::1", 3));
    CHECK(out[14 + 6] == 58);
    CHECK(out[l4] == 2);  // packet too big
    CHECK(out[l4 + 1] == 0);
    CHECK(be16(out, l4 + 6) == 1400);
  } else {
    CHECK(o.src[0] == word("10.200.0.1"));
    CHECK(out[14 + 9] == 1);
    CHECK(out[l4] == 3);      // destination unreachable
    CHECK(out[l4 + 1] == 4);  // fragmentation needed
    CHECK(be16(out, l4 + 6) == 1400);
  }
  // The packet as it arrived: TTL not decremented, source not translated.
  CHECK(std::memcmp(&out[l4 + 8], &in[14], quote) == 0);
}

}  // namespace

TEST_CASE("kernel: a packet too big for its redirect link is answered as ip_forward() does, then dropped") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  Site s;
  lan_routes();
  auto too_big = [&] { return (*s.site.dp().counters())[CLV_STAT_TOO_BIG]; };
  SUBCASE("IPv4 with DF: fragmentation needed, with the link's MTU") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 17, 42000, 4000);
    p.ipv4_dont_fragment = true;
    p.payload = 1500 - 28;
    auto in = test::build_packet(p);
    const auto before = too_big();
    auto r = s.site.run(in, "lan0");
    CHECK(r.retval == kActRedirect);
    check_too_big(in, r.out, false);
    CHECK(too_big() == before + 1);
    // One that fits goes out translated.
    p.payload = 1400 - 28;
    r = s.site.run(test::build_packet(p), "lan0");
    CHECK(r.retval == kActRedirect);
    auto o = test::parse_packet(r.out);
    CHECK(o.src[0] == word("192.0.2.2"));
    CHECK(o.ttl == 63);
    CHECK(too_big() == before + 1);
    // The MTU is cached per CPU; a raised one is seen at once.
    sh("ip link set wan0 mtu 1500");
    p.payload = 1500 - 28;
    CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActRedirect);
    CHECK(too_big() == before + 1);
    sh("ip link set wan0 mtu 1400");
  }
  SUBCASE("IPv4 without DF is answered the same way (documented: no fragmentation in the program)") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 17, 42001, 4000);
    p.payload = 1401 - 28;
    auto in = test::build_packet(p);
    auto r = s.site.run(in, "lan0");
    CHECK(r.retval == kActRedirect);
    check_too_big(in, r.out, false);
  }
  SUBCASE("IPv6: packet too big") {
    PacketSpec p;
    p.tuple = tuple("2001:db8:1::5", "2001:db8:cafe::10", 6, 42002, 443);
    p.payload = 1500 - 60;
    auto in = test::build_packet(p);
    auto r = s.site.run(in, "lan0");
    CHECK(r.retval == kActRedirect);
    check_too_big(in, r.out, true);
  }
  SUBCASE("an expiring TTL comes first; route links are the stack's to check") {
    PacketSpec p;
    p.tuple = tuple("10.1.0.5", "203.0.113.10", 17, 42003, 4000);
    p.ipv4_dont_fragment = true;
    p.payload = 1500 - 28;
    p.ttl = 1;
    const auto before = too_big();
    CHECK(s.site.run(test::build_packet(p), "lan0").retval == kActOk);
    p.ttl = 64;
    p.tuple.dport = 53;  // the route-mode link
    auto r = s.site.run(test::build_packet(p), "lan0");
    CHECK(r.retval == kActOk);
    CHECK(r.mark == 0x77);
    CHECK(too_big() == before);
  }
}

TEST_CASE("kernel: later fragments follow their datagram's flow: its rule, its link, its NAT, both ways") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  Site s;
  auto stat = [&](int i) { return (*s.site.dp().counters())[static_cast<size_t>(i)]; };
  SUBCASE("IPv4 UDP through the NAT link, and the reply's fragments back to the client") {
    PacketSpec first;
    first.tuple = tuple("10.1.0.5", "203.0.113.10", 17, 43000, 4000);
    first.ipv4_more_fragments = true;
    first.frag_id = 0x1234;
    auto r = s.site.run(test::build_packet(first), "lan0");
    REQUIRE(r.retval == kActRedirect);
    clv_flow f{};
    REQUIRE(s.site.flow(test::flow_key_of(first.tuple), &f));
    REQUIRE((f.flags & CLV_FLOW_NAT));
    PacketSpec later = first;
    later.ipv4_more_fragments = false;
    later.ipv4_frag_offset = 100;
    r = s.site.run(test::build_packet(later), "lan0");
    CHECK(r.retval == kActRedirect);  // before: passed to the stack, untranslated
    auto o = test::parse_packet(r.out);
    CHECK(o.src[0] == word("192.0.2.2"));
    CHECK(o.ttl == 63);
    CHECK(o.ip_csum_ok);
    CHECK(be16(r.out, 14 + 6) == 100);  // offset kept, payload untouched
    CHECK(std::memcmp(&r.out[34], &test::build_packet(later)[34], r.out.size() - 34) == 0);
    // Another datagram of the same flow, its first fragment never seen: dropped.
    later.frag_id = 0x1235;
    const auto unknown = stat(CLV_STAT_FRAG_UNKNOWN);
    CHECK(s.site.run(test::build_packet(later), "lan0").retval == kActShot);
    CHECK(stat(CLV_STAT_FRAG_UNKNOWN) == unknown + 1);
    // The reply, fragmented by the server: to the NAT address and port.
    PacketSpec reply;
    reply.tuple = tuple("203.0.113.10", "192.0.2.2", 17, 4000, f.nat_port);
    reply.ipv4_more_fragments = true;
    reply.frag_id = 0x4321;
    r = s.site.run_wan_in(test::build_packet(reply));
    CHECK(r.retval == kActRedirect);
    PacketSpec reply_later = reply;
    reply_later.ipv4_more_fragments = false;
    reply_later.ipv4_frag_offset = 100;
    r = s.site.run_wan_in(test::build_packet(reply_later));
    CHECK(r.retval == kActRedirect);  // before: passed to the host, which has no such socket
    o = test::parse_packet(r.out);
    CHECK(o.dst[0] == word("10.1.0.5"));
    CHECK(o.ip_csum_ok);
  }
  SUBCASE("IPv6: a later fragment leaves translated by the first one's link") {
    PacketSpec first;
    first.tuple = tuple("2001:db8:1::5", "2001:db8:cafe::10", 17, 43001, 4000);
    first.ipv6_fragment = true;
    first.frag_id = 0xabcdef;
    REQUIRE(s.site.run(test::build_packet(first), "lan0").retval == kActRedirect);
    PacketSpec later = first;
    later.ipv6_frag_offset = 150;
    auto r = s.site.run(test::build_packet(later), "lan0");
    CHECK(r.retval == kActRedirect);
    auto o = test::parse_packet(r.out);
    CHECK(o.src[0] == word("2001:db8:ff::2", 0));
    CHECK(o.src[3] == word("2001:db8:ff::2", 3));
    CHECK(o.ttl == 63);
  }
  SUBCASE("a drop rule drops every fragment of the datagram") {
    PacketSpec first;
    first.tuple = tuple("10.1.0.5", "203.0.113.10", 17, 43002, 9);
    first.ipv4_more_fragments = true;
    CHECK(s.site.run(test::build_packet(first), "lan0").retval == kActShot);  // before: passed
    PacketSpec later = first;
    later.ipv4_more_fragments = false;
    later.ipv4_frag_offset = 50;
    CHECK(s.site.run(test::build_packet(later), "lan0").retval == kActShot);
  }
  SUBCASE("fragments for the host itself go to it, seen or not") {
    PacketSpec later;
    later.tuple = tuple("10.1.0.5", "192.0.2.2", 17, 43003, 4000);
    later.ipv4_frag_offset = 20;
    CHECK(s.site.run(test::build_packet(later), "lan0").retval == kActOk);
  }
}

TEST_CASE("kernel: a packet the parser cannot classify gets the mapping's `unparsed:` verdict, counted") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  Site s;
  auto stat = [&](int i) { return (*s.site.dp().counters())[static_cast<size_t>(i)]; };
  PacketSpec deep;  // more extension headers than the parser walks: its ports are unknown
  deep.tuple = tuple("2001:db8:1::5", "2001:db8:cafe::10", 17, 44000, 9);
  deep.ipv6_dest_opts = 7;
  const auto malformed = stat(CLV_STAT_MALFORMED), dropped = stat(CLV_STAT_UNPARSED_DROP);
  CHECK(s.site.run(test::build_packet(deep), "lan0").retval == kActShot);  // the default: drop
  CHECK(stat(CLV_STAT_MALFORMED) == malformed + 1);
  CHECK(stat(CLV_STAT_UNPARSED_DROP) == dropped + 1);
  PacketSpec walked = deep;  // within the walk: classified, and the drop rule applies
  walked.ipv6_dest_opts = 5;
  CHECK(s.site.run(test::build_packet(walked), "lan0").retval == kActShot);
  walked.tuple.dport = 4000;
  CHECK(s.site.run(test::build_packet(walked), "lan0").retval == kActRedirect);
  std::string pass = std::string(kMapping) + "unparsed: pass\n";
  s.site.apply(pass);
  CHECK(s.site.run(test::build_packet(deep), "lan0").retval == kActOk);
  CHECK(stat(CLV_STAT_UNPARSED_DROP) == dropped + 1);
  std::vector<uint8_t> truncated = test::build_packet(walked);
  truncated.resize(14 + 40 + 5 * 8 + 2);  // half a UDP port
  CHECK(s.site.run(truncated, "lan0").retval == kActOk);
  s.site.apply(kMapping);
  CHECK(s.site.run(truncated, "lan0").retval == kActShot);
  CHECK(stat(CLV_STAT_MALFORMED) == malformed + 4);
}
