#include "random_mapping.hpp"

#include <set>

namespace clovis::test {

core::IpAddr RandomMapping::addr(core::Family f) {
  // 10.{0,1}.{0..3}.x and 2001:db8:{0,1}::{0..3}:x — dense, so prefixes overlap.
  core::IpAddr a;
  a.family = f;
  if (f == core::Family::kV4) {
    a.bytes[0] = 10;
    a.bytes[1] = static_cast<uint8_t>(pick(2));
    a.bytes[2] = static_cast<uint8_t>(pick(4));
    a.bytes[3] = static_cast<uint8_t>(pick(256));
  } else {
    a.bytes[0] = 0x20, a.bytes[1] = 0x01, a.bytes[2] = 0x0d, a.bytes[3] = 0xb8;
    a.bytes[5] = static_cast<uint8_t>(pick(2));
    a.bytes[13] = static_cast<uint8_t>(pick(4));
    a.bytes[15] = static_cast<uint8_t>(pick(256));
  }
  return a;
}

core::Cidr RandomMapping::cidr(core::Family f) {
  // Few distinct lengths, as in real mappings: every (src, dst, port mask)
  // combination is a table shape, and shapes are limited (CLV_MAX_SHAPES).
  static const uint8_t v4[] = {8, 16, 23, 32};
  static const uint8_t v6[] = {32, 48, 111, 128};
  core::Cidr c{addr(f), f == core::Family::kV4 ? v4[pick(4)] : v6[pick(4)]};
  return c.normalized();
}

core::PortRange RandomMapping::ports() {
  static const uint16_t aligned[][2] = {{80, 80}, {443, 443}, {53, 53}, {8000, 8063}, {1024, 65535}, {0, 1023}};
  if (chance(85)) {
    const auto& r = aligned[pick(6)];
    return {r[0], r[1]};
  }
  uint16_t a = static_cast<uint16_t>(pick(100)), b = static_cast<uint16_t>(pick(100));
  return {std::min(a, b), std::max(a, b)};
}

core::Mapping RandomMapping::mapping(int n_rules, bool with_l7) {
  core::Mapping m;
  for (int i = 0; i < 3; ++i) {
    core::Link l;
    l.name = "l" + std::to_string(i);
    l.interface = "wan" + std::to_string(i);
    l.gateway4 = core::IpAddr::parse("192.0.2." + std::to_string(i + 1));
    if (i != 1) l.gateway6 = core::IpAddr::parse("2001:db8:ff::" + std::to_string(i + 1));
    l.weight = static_cast<uint32_t>(1 + pick(3));
    m.links.push_back(l);
  }
  core::Policy p;
  p.name = "p";
  p.members = {{"l0", 1, std::nullopt, {}}, {"l1", 1, std::nullopt, {}}, {"l2", 2, std::nullopt, {}}};
  p.sticky = static_cast<core::Sticky>(pick(3));
  m.policies.push_back(p);
  std::set<uint32_t> prios;
  for (int i = 0; i < n_rules; ++i) {
    core::Rule r;
    r.name = "r" + std::to_string(i);
    do r.priority = static_cast<uint32_t>(pick(n_rules * 10 + 10));
    while (!prios.insert(r.priority).second);
    core::Match& mt = r.match;
    const int fam = pick(3);  // 0 v4, 1 v6, 2 any
    for (core::Family f : {core::Family::kV4, core::Family::kV6}) {
      if ((fam == 0 && f == core::Family::kV6) || (fam == 1 && f == core::Family::kV4)) continue;
      if (fam != 2 && chance(70)) mt.src.push_back(cidr(f));
      if (fam != 2 && chance(70)) mt.dst.push_back(cidr(f));
      if (fam != 2 && chance(10)) mt.dst.push_back(cidr(f));
    }
    if (chance(60)) {
      mt.proto.push_back(chance(50) ? 6 : 17);
      if (chance(15)) mt.proto.push_back(mt.proto[0] == 6 ? 17 : 6);
      if (chance(50)) mt.dport.push_back(ports());
      if (chance(10)) mt.sport.push_back(ports());
    } else if (chance(20)) {
      mt.proto.push_back(1);
    }
    if (chance(10)) mt.dscp = static_cast<uint8_t>(pick(2) ? 46 : 10);
    if (chance(10)) mt.mark = std::make_pair(static_cast<uint32_t>(pick(4)) << 4, 0xf0u);
    if (chance(10)) mt.interface = pick(2) ? "lan0" : "lan1";
    if (with_l7 && chance(25)) {
      if (chance(60)) mt.host = pick(3) == 0 ? "*.example.com" : pick(2) ? "a.example.com" : "b.example.com";
      if (chance(30)) mt.path_prefix = pick(2) ? "/v1/" : "/v";
      if (chance(30)) mt.method = pick(2) ? "GET" : "POST";
      if (chance(40) || !mt.has_l7()) mt.headers.push_back({"end-user", pick(2) ? "minions" : "boss", {}});
    }
    const int t = pick(10);
    r.target.kind = t < 5   ? core::TargetKind::kPolicy
                    : t < 8 ? core::TargetKind::kLink
                    : t < 9 ? core::TargetKind::kBypass
                            : core::TargetKind::kDrop;
    r.target.name = r.target.kind == core::TargetKind::kPolicy ? "p"
                    : r.target.kind == core::TargetKind::kLink ? "l" + std::to_string(fam == 1 ? 2 * pick(2) : pick(3))
                                                               : "";
    m.rules.push_back(r);
  }
  if (chance(70)) m.default_target = core::Target{core::TargetKind::kPolicy, "p", {}};
  return m;
}

core::FlowQuery RandomMapping::flow(const core::Mapping& m, bool with_l7) {
  core::FlowQuery q;
  const core::Family f = chance(60) ? core::Family::kV4 : core::Family::kV6;
  auto near = [&](bool src) {
    // Half the time inside a rule's prefix, so matches are frequent.
    if (!m.rules.empty() && chance(50)) {
      const auto& mt = m.rules[static_cast<size_t>(pick(static_cast<int>(m.rules.size())))].match;
      const auto& list = src ? mt.src : mt.dst;
      for (const auto& c : list)
        if (c.addr.family == f) {
          core::IpAddr a = addr(f);
          auto w = a.words(), n = c.addr.words(), mask = core::prefix_mask(f, c.plen);
          for (int i = 0; i < 4; ++i) w[i] = (n[i] & mask[i]) | (w[i] & ~mask[i]);
          return core::IpAddr::from_words(f, w.data());
        }
    }
    return addr(f);
  };
  auto s = near(true), d = near(false);
  clv_tuple& t = q.tuple;
  t.family = f == core::Family::kV4 ? CLV_AF_INET : CLV_AF_INET6;
  auto sw = s.words(), dw = d.words();
  std::copy(sw.begin(), sw.end(), t.src);
  std::copy(dw.begin(), dw.end(), t.dst);
  static const uint8_t protos[] = {6, 17, 1, 58, 47};
  t.proto = protos[pick(5)];
  static const uint16_t ports[] = {0, 22, 53, 80, 443, 1023, 1024, 8000, 8063, 8064, 65535};
  t.sport = chance(50) ? ports[pick(11)] : static_cast<uint16_t>(pick(100));
  t.dport = chance(50) ? ports[pick(11)] : static_cast<uint16_t>(pick(100));
  t.dscp = chance(20) ? (pick(2) ? 46 : 10) : 0;
  t.mark = chance(20) ? static_cast<uint32_t>(pick(8)) << 4 | static_cast<uint32_t>(pick(16)) : 0;
  q.iif = chance(30) ? (pick(2) ? "lan0" : "lan1") : "";
  if (with_l7) {
    static const char* hosts[] = {"a.example.com", "b.example.com", "x.a.example.com", "example.com", "other.org"};
    core::L7Facts l{hosts[pick(5)], pick(2) ? "/v1/items" : "/w", pick(2) ? "GET" : "POST", {}};
    if (chance(70)) l.headers.emplace_back(pick(2) ? "End-User" : "end-user", pick(2) ? "minions" : "boss");
    q.l7 = l;
  }
  return q;
}

}  // namespace clovis::test
