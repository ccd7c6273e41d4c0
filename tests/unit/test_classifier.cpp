#include <map>
#include <memory>

#include <doctest/doctest.h>

#include "core/classifier.hpp"
#include "helpers.hpp"

using namespace clovis;

namespace {

struct Sim {
  core::Checked checked;
  std::unique_ptr<core::Classifier> cls;
  explicit Sim(const std::string& yaml) : checked(core::check_mapping(yaml)) {
    INFO(test::dump(checked));
    REQUIRE(checked.ok());
    cls = std::make_unique<core::Classifier>(*checked.compiled);
  }
  const core::CompiledRules& rules() const { return *checked.compiled; }
  clv_link_state all_up() const { return rules().all_up_state(); }

  core::Decision run(const core::FlowQuery& q, clv_link_state st) const { return cls->decide(q, st); }
  core::Decision run(const core::FlowQuery& q) const { return run(q, all_up()); }
  std::string rule(const core::Decision& d) const { return d.rule_id ? rules().rules[*d.rule_id].name : "-"; }
  std::string link(const core::Decision& d) const { return d.link >= 0 ? rules().link_info[d.link].name : "-"; }
  uint64_t bit(const std::string& l) const { return 1ull << rules().link_slot(l); }
};

core::FlowQuery flow(const std::string& src, const std::string& dst, uint8_t proto = 6, uint16_t sport = 40000,
                     uint16_t dport = 443) {
  core::FlowQuery q;
  auto s = core::IpAddr::parse(src), d = core::IpAddr::parse(dst);
  REQUIRE(s);
  REQUIRE(d);
  q.tuple.family = s->family == core::Family::kV4 ? CLV_AF_INET : CLV_AF_INET6;
  auto sw = s->words(), dw = d->words();
  std::copy(sw.begin(), sw.end(), q.tuple.src);
  std::copy(dw.begin(), dw.end(), q.tuple.dst);
  q.tuple.proto = proto;
  q.tuple.sport = sport;
  q.tuple.dport = dport;
  return q;
}

const char* kThree = R"(version: 1
links:
  - {name: a, interface: w0, gateway: [192.0.2.1, "2001:db8::1"]}
  - {name: b, interface: w1, gateway: 198.51.100.1, weight: 3}
  - {name: c, interface: w2, gateway: [203.0.113.1, "2001:db8:2::1"]}
policies:
  - {name: fo, failover: [a, b, c]}
  - name: share
    members: [{link: a}, {link: b}, {link: c, tier: 2}]
  - {name: strict, failover: [b], last-resort: drop}
  - {name: by-client, members: [a, b], sticky: source}
)";

}  // namespace

TEST_CASE("priority decides, not prefix length") {
  Sim s(std::string(kThree) + R"(rules:
  - {name: wide, priority: 10, match: {dst: 10.0.0.0/8}, link: a}
  - {name: narrow, priority: 20, match: {dst: 10.1.0.0/16}, link: b}
  - {name: narrow-first, priority: 5, match: {dst: 10.2.0.0/16}, link: c}
)");
  CHECK(s.rule(s.run(flow("192.168.1.1", "10.1.1.1"))) == "wide");
  CHECK(s.rule(s.run(flow("192.168.1.1", "10.2.1.1"))) == "narrow-first");
  auto none = s.run(flow("192.168.1.1", "11.0.0.1"));
  CHECK(none.verdict == core::Verdict::kNotSteered);
  CHECK(s.rule(none) == "default");
}

TEST_CASE("ports, ranges, protocols, DSCP, marks, interfaces") {
  Sim s(std::string(kThree) + R"(rules:
  - {name: web-alt, priority: 1, match: {proto: tcp, dport: 8000-8080}, link: a}
  - {name: dns, priority: 2, match: {proto: [tcp, udp], dport: 53}, link: b}
  - {name: voice, priority: 3, match: {dscp: ef}, link: c}
  - {name: marked, priority: 4, match: {mark: 0x10/0xf0}, link: b}
  - {name: guest, priority: 5, match: {interface: guest0}, action: drop}
  - {name: icmp, priority: 6, match: {proto: icmp}, action: bypass}
  - {name: hi-src, priority: 7, match: {proto: udp, sport: 40000-40010}, link: c}
)");
  CHECK(s.rule(s.run(flow("10.0.0.1", "1.1.1.1", 6, 1, 7999))) == "default");
  CHECK(s.rule(s.run(flow("10.0.0.1", "1.1.1.1", 6, 1, 8000))) == "web-alt");
  CHECK(s.rule(s.run(flow("10.0.0.1", "1.1.1.1", 6, 1, 8080))) == "web-alt");
  CHECK(s.rule(s.run(flow("10.0.0.1", "1.1.1.1", 6, 1, 8081))) == "default");
  CHECK(s.rule(s.run(flow("10.0.0.1", "1.1.1.1", 17, 1, 8000))) == "default");
  CHECK(s.rule(s.run(flow("10.0.0.1", "1.1.1.1", 17, 1, 53))) == "dns");
  auto q = flow("10.0.0.1", "1.1.1.1", 17, 1, 5004);
  q.tuple.dscp = 46;
  CHECK(s.rule(s.run(q)) == "voice");
  q.tuple.dscp = 0;
  q.tuple.mark = 0x1f;
  CHECK(s.rule(s.run(q)) == "marked");
  q.tuple.mark = 0x20;
  CHECK(s.rule(s.run(q)) == "default");
  q.iif = "guest0";
  auto g = s.run(q);
  CHECK(s.rule(g) == "guest");
  CHECK(g.verdict == core::Verdict::kDrop);
  q.iif = "lan0";
  CHECK(s.rule(s.run(q)) == "default");
  auto icmp = s.run(flow("10.0.0.1", "1.1.1.1", 1, 0, 0));
  CHECK(icmp.verdict == core::Verdict::kBypass);
  CHECK(s.rule(s.run(flow("10.0.0.1", "1.1.1.1", 17, 40005, 9))) == "hi-src");
  CHECK(s.rule(s.run(flow("10.0.0.1", "1.1.1.1", 17, 40011, 9))) == "default");
}

TEST_CASE("IPv6 flows match IPv6 rules and links with an IPv6 next hop") {
  Sim s(std::string(kThree) + R"(rules:
  - {name: v6net, priority: 1, match: {dst: "2001:db8:100::/48"}, policy: share}
  - {name: any, priority: 2, policy: fo}
)");
  auto d = s.run(flow("2001:db8:1::5", "2001:db8:100::7"));
  CHECK(s.rule(d) == "v6net");
  CHECK(s.rule(s.run(flow("10.0.0.1", "10.0.0.2"))) == "any");
  // Link b has no IPv6 gateway: an IPv6 flow never lands there.
  for (uint16_t p = 1; p < 200; ++p) CHECK(s.link(s.run(flow("2001:db8:1::5", "2001:db8:100::7", 6, p))) != "b");
  auto st = s.all_up();
  st.up &= ~s.bit("a");
  auto f = s.run(flow("2001:db8:1::5", "2001:db8:9::1"), st);
  CHECK(s.link(f) == "c");  // fo: a down, b has no IPv6, c is next
  bool saw_no_ipv6 = false;
  for (const auto& m : f.members) saw_no_ipv6 = saw_no_ipv6 || m.state == "no-ipv6";
  CHECK(saw_no_ipv6);
}

TEST_CASE("failover tiers, last resort and degraded links") {
  Sim s(std::string(kThree) + R"(rules:
  - {name: f, priority: 1, match: {proto: tcp, dport: 1}, policy: fo}
  - {name: st, priority: 2, match: {proto: tcp, dport: 2}, policy: strict}
default: {policy: fo}
)");
  auto q = flow("10.0.0.1", "1.1.1.1", 6, 5, 1);
  CHECK(s.link(s.run(q)) == "a");
  auto st = s.all_up();
  st.up &= ~s.bit("a");
  CHECK(s.link(s.run(q, st)) == "b");
  st.up &= ~s.bit("b");
  CHECK(s.link(s.run(q, st)) == "c");
  st.up &= ~s.bit("c");
  auto none = s.run(q, st);
  CHECK(none.verdict == core::Verdict::kBypass);
  CHECK(none.last_resort);
  auto strict = s.run(flow("10.0.0.1", "1.1.1.1", 6, 5, 2), st);
  CHECK(strict.verdict == core::Verdict::kDrop);
  CHECK(strict.last_resort);
  // Degraded a is avoided while b is healthy, and used when it is the only one.
  auto deg = s.all_up();
  deg.degraded |= s.bit("a");
  CHECK(s.link(s.run(q, deg)) == "b");
  deg.degraded |= s.bit("b") | s.bit("c");
  CHECK(s.link(s.run(q, deg)) == "a");
  CHECK(s.rule(s.run(flow("10.0.0.1", "1.1.1.1", 17, 5, 9))) == "default");
}

TEST_CASE("weights spread new flows in proportion") {
  Sim s(std::string(kThree) + "default: {policy: share}\n");
  std::map<std::string, int> n;
  const int kFlows = 40000;
  for (int i = 0; i < kFlows; ++i) {
    auto q =
        flow("10.0.0.1", "1.1.1.1", 6, static_cast<uint16_t>(1024 + i % 60000), static_cast<uint16_t>(i / 60000 + 1));
    q.tuple.src[0] ^= static_cast<uint32_t>(i) << 8;
    n[s.link(s.run(q))]++;
  }
  // a:b = 1:3 in tier 1; c (tier 2) unused while tier 1 has links.
  CHECK(n["c"] == 0);
  double share_b = static_cast<double>(n["b"]) / kFlows;
  CHECK(share_b > 0.72);
  CHECK(share_b < 0.78);
}

TEST_CASE("sticky source keeps a client on one link") {
  Sim s(std::string(kThree) + "default: {policy: by-client}\n");
  std::map<std::string, int> links_of_client;
  for (int c = 0; c < 50; ++c) {
    std::string first;
    for (int p = 0; p < 20; ++p) {
      auto q = flow("10.0.0." + std::to_string(c + 1), "1.1.1." + std::to_string(p + 1), 6,
                    static_cast<uint16_t>(30000 + p * 7), 443);
      auto l = s.link(s.run(q));
      if (first.empty()) first = l;
      CHECK(l == first);
    }
    links_of_client[first]++;
  }
  CHECK(links_of_client.size() == 2);  // both links get clients
}

TEST_CASE("L7 rules match requests, never bare flows") {
  Sim s(std::string(kThree) + R"(rules:
  - name: minions
    priority: 10
    match: {proto: tcp, dport: 8000, headers: {end-user: minions}}
    link: b
  - {name: api-v2, priority: 15, match: {host: "*.example.com", path-prefix: /v2/, method: POST}, link: c}
  - {name: exact-host, priority: 16, match: {host: api.example.com}, link: c}
  - {name: service, priority: 20, match: {proto: tcp, dport: 8000}, link: a}
  - {name: l7-after, priority: 30, match: {host: late.example.com}, link: b}
)");
  auto q = flow("10.0.0.1", "198.51.100.10", 6, 40000, 8000);
  CHECK(s.rule(s.run(q)) == "service");  // what the kernel sees
  q.l7 = core::L7Facts{"video.example.com", "/", "GET", {{"End-User", "minions"}}};
  auto d = s.run(q);
  CHECK(s.rule(d) == "minions");
  CHECK(d.by_l7);
  CHECK(s.link(d) == "b");
  q.l7->headers = {{"end-user", "boss"}};
  d = s.run(q);
  CHECK(s.rule(d) == "service");
  REQUIRE(!d.l7_checked.empty());
  CHECK(d.l7_checked[0].why_not == "header end-user is 'boss', not 'minions'");
  // An L7 rule with a worse priority than the matching L4 rule never wins.
  q.l7->host = "late.example.com";
  CHECK(s.rule(s.run(q)) == "service");
  auto r = flow("10.0.0.1", "1.1.1.1", 6, 40000, 443);
  r.l7 = core::L7Facts{"API.example.com:443", "/v2/items", "POST", {}};
  CHECK(s.rule(s.run(r)) == "api-v2");
  r.l7->method = "GET";
  CHECK(s.rule(s.run(r)) == "exact-host");
  r.l7->host = "example.com";  // the wildcard needs a subdomain
  CHECK(s.rule(s.run(r)) == "default");
}

TEST_CASE("the walk stops once no shape can beat the best hit") {
  Sim s(std::string(kThree) + R"(rules:
  - {name: first, priority: 1, match: {dst: 10.0.0.0/8}, link: a}
  - {name: second, priority: 2, match: {dst: 10.1.0.0/16}, link: b}
  - {name: third, priority: 3, match: {dst: 10.1.2.0/24}, link: c}
)");
  auto d = s.run(flow("1.1.1.1", "10.1.2.3"));
  CHECK(s.rule(d) == "first");
  CHECK(d.probes.size() == 1);
  CHECK(d.shapes_total == 3);
  auto miss = s.run(flow("1.1.1.1", "11.1.2.3"));
  CHECK(miss.probes.size() == 3);
}
