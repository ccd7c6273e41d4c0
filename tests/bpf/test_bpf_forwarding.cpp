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

namespace {

constexpr int kActOk = -1;  // TC_ACT_UNSPEC: the stack takes it
constexpr int kActShot = 2;
constexpr int kActRedirect = 7;

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

clv_tuple tuple(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport) {
  clv_tuple t{};
  auto s = core::IpAddr::parse(src), d = core::IpAddr::parse(dst);
  REQUIRE(s);
  REQUIRE(d);
  t.family = s->family == core::Family::kV4 ? CLV_AF_INET : CLV_AF_INET6;
  auto sw = s->words(), dw = d->words();
  std::memcpy(t.src, sw.data(), 16);
  std::memcpy(t.dst, dw.data(), 16);
  t.proto = proto;
  t.sport = sport;
  t.dport = dport;
  return t;
}

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
    } cases[] = {{"10.1.0.5", "198.51.100.70", 6, 443},     // redirect link, NAT
                 {"10.1.0.5", "198.51.100.70", 17, 53},     // route link: no mark either
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

uint32_t word(const char* addr, int i = 0) { return core::IpAddr::parse(addr)->words()[static_cast<size_t>(i)]; }

uint16_t be16(const std::vector<uint8_t>& v, size_t off) { return static_cast<uint16_t>(v[off] << 8 | v[off + 1]); }

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
    CHECK(out[l4] == 3);  // destination unreachable
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
