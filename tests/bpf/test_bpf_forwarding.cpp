// Forwarding duties of the kernel path that the stack would otherwise have
// done: routes the host refuses stay refused.
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

