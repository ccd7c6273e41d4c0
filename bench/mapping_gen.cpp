#include "mapping_gen.hpp"

#include <arpa/inet.h>

#include <array>
#include <iterator>
#include <unordered_set>

#include <fmt/format.h>

namespace clovis::bench {

namespace {

// Three links, two policies, a default: the edge-site example's layout.
constexpr const char* kHeader = R"(version: 1
links:
  - name: mpls
    interface: wan0
    gateway: [192.0.2.1, "2001:db8:0:1::1"]
    mode: route
    health:
      probes: [{icmp: 192.0.2.1}, {tcp: "203.0.113.53:53"}]
      interval: 200ms
      timeout: 150ms
  - name: broadband
    interface: wan1
    gateway: 198.18.0.1
    mode: redirect
    snat: 198.18.0.2
    weight: 3
  - name: lte
    interface: wwan0
    gateway: 100.64.0.1
    mode: redirect
    snat: masquerade
policies:
  - name: low-latency
    failover: [mpls, broadband, lte]
  - name: bulk
    members:
      - {link: mpls, tier: 1, weight: 1}
      - {link: broadband, tier: 1}
      - {link: lte, tier: 2}
    sticky: source
default:
  policy: bulk
rules:
)";

constexpr std::array<const char*, 6> kTargets = {"policy: low-latency", "policy: bulk", "link: mpls",
                                                 "link: broadband",     "link: lte",    "action: bypass"};

constexpr std::array<uint16_t, 20> kPorts = {80,   443,  53,   22,   25,   123,  389,  636,  993,  995,
                                             1194, 1433, 3306, 3389, 5060, 5432, 8080, 8443, 9000, 51820};

constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1;

uint32_t host_mask(uint8_t plen) {
  return plen == 0 ? 0xffffffffu : plen >= 32 ? 0 : 0xffffffffu >> plen;
}

// Any unicast address in 1.0.0.0-223.255.255.255.
uint32_t random_unicast(Rng& rng) {
  return (rng.range(1, 223) << 24) | (rng.below(1u << 24));
}

// A prefix not drawn before for this rule set (dst prefixes stay distinct).
Prefix4 fresh_prefix(Rng& rng, uint8_t plen, std::unordered_set<uint64_t>& seen) {
  for (;;) {
    Prefix4 p{random_unicast(rng) & ~host_mask(plen), plen};
    if (seen.insert((uint64_t{p.addr} << 8) | plen).second) return p;
  }
}

uint16_t random_port(Rng& rng) {
  return rng.below(4) == 0 ? static_cast<uint16_t>(rng.range(1024, 65535)) : kPorts[rng.below(kPorts.size())];
}

uint8_t tcp_or_udp(Rng& rng) {
  return rng.below(3) == 0 ? kUdp : kTcp;
}

RuleSpec simple_rule(Rng& rng, std::unordered_set<uint64_t>& seen) {
  RuleSpec r;
  r.dst = fresh_prefix(rng, rng.below(2) ? 24 : 32, seen);
  r.protos = {tcp_or_udp(rng)};
  uint16_t p = random_port(rng);
  r.dports = {{p, p}};
  r.target = static_cast<int>(rng.below(5));
  return r;
}

RuleSpec mixed_rule(Rng& rng, std::unordered_set<uint64_t>& seen) {
  RuleSpec r;
  const uint32_t d = rng.below(10);
  r.dst = fresh_prefix(rng, d < 2 ? 16 : d < 6 ? 24 : 32, seen);
  if (rng.below(10) < 3) r.src = {random_unicast(rng) & 0xffff0000u, 16};
  const uint32_t kind = rng.below(100);
  if (kind < 45) {  // one port
    uint16_t p = random_port(rng);
    r.protos = {tcp_or_udp(rng)}, r.dports = {{p, p}};
  } else if (kind < 60) {  // an aligned pair, e.g. 5060-5061: one box, mask 0xfffe
    uint16_t lo = static_cast<uint16_t>(rng.range(512, 32767) * 2);
    r.protos = {kUdp}, r.dports = {{lo, static_cast<uint16_t>(lo + 1)}};
  } else if (kind < 75) {  // lo..lo+80, lo 64-aligned: boxes /10, /12 and /16 of port space
    uint16_t lo = static_cast<uint16_t>(rng.range(16, 1000) * 64);
    r.protos = {kTcp}, r.dports = {{lo, static_cast<uint16_t>(lo + 80)}};
  } else if (kind < 85) {  // [tcp, udp] and a port: two boxes, one shape
    uint16_t p = random_port(rng);
    r.protos = {kTcp, kUdp}, r.dports = {{p, p}};
  } else if (kind < 95) {  // a protocol, any port
    r.protos = {tcp_or_udp(rng)};
  }  // else: destination only
  r.target = static_cast<int>(rng.below(20) == 0 ? 5 : rng.below(5));
  return r;
}

std::string ipv4(uint32_t a) {
  return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

const char* proto_word(uint8_t p) {
  return p == kTcp ? "tcp" : p == kUdp ? "udp" : "icmp";
}

void render_rule(std::string& out, size_t i, const RuleSpec& r) {
  auto it = std::back_inserter(out);
  fmt::format_to(it, "  - name: r{}\n    priority: {}\n    match:\n", i, (i + 1) * 10);
  if (r.src.plen) fmt::format_to(it, "      src: {}/{}\n", ipv4(r.src.addr), r.src.plen);
  fmt::format_to(it, "      dst: {}/{}\n", ipv4(r.dst.addr), r.dst.plen);
  if (r.protos.size() == 1) fmt::format_to(it, "      proto: {}\n", proto_word(r.protos[0]));
  if (r.protos.size() > 1) fmt::format_to(it, "      proto: [tcp, udp]\n");
  for (const auto& p : r.dports) {
    if (p.lo == p.hi) fmt::format_to(it, "      dport: {}\n", p.lo);
    else fmt::format_to(it, "      dport: {}-{}\n", p.lo, p.hi);
  }
  fmt::format_to(it, "    {}\n", kTargets[static_cast<size_t>(r.target)]);
}

uint32_t in_prefix(const Prefix4& p, Rng& rng) {
  if (p.plen == 0) return random_unicast(rng);
  return p.addr | (static_cast<uint32_t>(rng.next()) & host_mask(p.plen));
}

}  // namespace

const char* to_string(Mix m) {
  return m == Mix::kSimple ? "simple" : "mixed";
}

Generated generate_mapping(Mix mix, size_t n_rules, uint64_t seed) {
  Rng rng(seed);
  Generated g;
  std::unordered_set<uint64_t> seen;
  g.rules.reserve(n_rules);
  g.yaml.reserve(1024 + n_rules * 120);
  g.yaml += kHeader;
  for (size_t i = 0; i < n_rules; ++i) {
    g.rules.push_back(mix == Mix::kSimple ? simple_rule(rng, seen) : mixed_rule(rng, seen));
    render_rule(g.yaml, i, g.rules.back());
  }
  return g;
}

clv_tuple tuple_in(const RuleSpec& r, Rng& rng) {
  clv_tuple t{};
  t.family = CLV_AF_INET;
  t.src[0] = htonl(in_prefix(r.src, rng));
  t.dst[0] = htonl(in_prefix(r.dst, rng));
  const uint32_t any = rng.below(3);
  const uint8_t any_proto = any == 0 ? kIcmp : any == 1 ? kUdp : kTcp;
  t.proto = r.protos.empty() ? any_proto : r.protos[rng.below(static_cast<uint32_t>(r.protos.size()))];
  if (t.proto != kIcmp) {
    t.sport = static_cast<uint16_t>(rng.range(1024, 65535));
    if (r.dports.empty()) {
      t.dport = random_port(rng);
    } else {
      const PortSpan& s = r.dports[rng.below(r.dports.size())];
      t.dport = static_cast<uint16_t>(rng.range(s.lo, s.hi));
    }
  }
  return t;
}

clv_tuple tuple_miss(Rng& rng) {
  clv_tuple t{};
  t.family = CLV_AF_INET;
  t.src[0] = htonl(random_unicast(rng));
  t.dst[0] = htonl(0xf0000000u | rng.below(1u << 28));
  t.proto = tcp_or_udp(rng);
  t.sport = static_cast<uint16_t>(rng.range(1024, 65535));
  t.dport = random_port(rng);
  return t;
}

namespace {

std::string filler_dst(size_t i) {
  return fmt::format("10.{}.{}.{}", 128 + (i >> 16), (i >> 8) & 255, i & 255);
}

// rule_list(): (dst, wan) in file order.
template <typename F>
void peer_rules(PeerRules r, F each) {
  for (size_t k = 0, filler = 0; k < r.n; ++k) {
    if (k == r.pos) each(k, std::string("203.0.113.10"), 1);
    else each(k, filler_dst(filler), static_cast<int>(filler % 2)), ++filler;
  }
}

}  // namespace

size_t peers_random_pos(size_t n) {
  switch (n) {
    case 10: return 3;
    case 1000: return 616;
    case 10000: return 180;
    case 100000: return 87504;
    default: return n / 2;
  }
}

std::string peers_mapping(PeerRules r) {
  std::string out = "version: 1\nlinks:\n";
  for (int i : {0, 1})
    out += fmt::format("  - name: l{0}\n    interface: wan{0}\n    gateway: 100.64.{0}.1\n    mode: route\n", i);
  out += "rules:\n";
  out.reserve(out.size() + r.n * 80);
  peer_rules(r, [&](size_t k, const std::string& dst, int wan) {
    fmt::format_to(std::back_inserter(out), "  - {{name: r{}, priority: {}, match: {{dst: {}/32}}, link: l{}}}\n", k,
                   k + 1, dst, wan);
  });
  return out + "default:\n  link: l0\n";
}

std::string peers_nft_script(PeerRules r) {
  std::string elems;
  peer_rules(r, [&](size_t k, const std::string& dst, int wan) {
    fmt::format_to(std::back_inserter(elems), "{}    {} : {:#x}", k ? ",\n" : "", dst, wan ? 0x200 : 0x100);
  });
  return "table ip clvbench {\n  map m {\n    type ipv4_addr : mark\n    elements = {\n" + elems +
         "\n    }\n  }\n  chain pre {\n    type filter hook prerouting priority mangle; policy accept;\n"
         "    iifname \"lan0\" meta mark set ip daddr map @m\n  }\n}\n";
}

std::string peers_iptables_script(PeerRules r) {
  std::string out = "*mangle\n:clvrules - [0:0]\n-A PREROUTING -i lan0 -j clvrules\n";
  peer_rules(r, [&](size_t, const std::string& dst, int wan) {
    fmt::format_to(std::back_inserter(out),
                   "-A clvrules -d {}/32 -m mark --mark 0x0/0xff00 -j MARK --set-xmark {:#x}/0xff00\n", dst,
                   wan ? 0x200 : 0x100);
  });
  return out + "COMMIT\n";
}

}  // namespace clovis::bench
