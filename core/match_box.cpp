#include "match_box.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace clovis::core {

ShapeSig shape_sig(const clv_shape& s) {
  clv_shape c = s;
  c.min_priority = 0;
  ShapeSig sig;
  std::memcpy(sig.data(), &c, sizeof c);
  return sig;
}

namespace {

struct Prefix {
  std::array<uint32_t, 4> addr{};
  uint8_t plen = 0;
};

std::vector<Prefix> prefixes_of(const std::vector<Cidr>& list, Family f, bool* applies) {
  std::vector<Prefix> out;
  if (list.empty()) {
    out.push_back({});
    return out;
  }
  for (const auto& c : list)
    if (c.addr.family == f) out.push_back({c.addr.words(), c.plen});
  *applies = *applies && !out.empty();
  return out;
}

std::vector<PortPrefix> ports_of(const std::vector<PortRange>& list) {
  std::vector<PortPrefix> out;
  if (list.empty()) return {{0, 0}};
  for (const auto& r : list)
    for (auto p : port_range_prefixes(r)) out.push_back(p);
  return out;
}

uint64_t mul_sat(uint64_t a, uint64_t b) {
  return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

uint64_t port_blocks(const std::vector<PortRange>& list) {
  if (list.empty()) return 1;
  uint64_t n = 0;
  for (const auto& r : list) n += port_range_prefix_count(r);
  return n;
}

uint64_t family_count(const std::vector<Cidr>& list, Family f) {
  if (list.empty()) return 1;
  return static_cast<uint64_t>(
      std::count_if(list.begin(), list.end(), [f](const Cidr& c) { return c.addr.family == f; }));
}

}  // namespace

uint64_t count_boxes(const Match& m) {
  const uint64_t per_family =
      mul_sat(mul_sat(std::max<uint64_t>(1, m.proto.size()), port_blocks(m.sport)), port_blocks(m.dport));
  uint64_t total = 0;
  for (Family f : {Family::kV4, Family::kV6}) {
    const uint64_t n = mul_sat(mul_sat(family_count(m.src, f), family_count(m.dst, f)), per_family);
    total = n > UINT64_MAX - total ? UINT64_MAX : total + n;
  }
  return total;
}

std::string describe_expansion(const Match& m) {
  std::string out;
  auto factor = [&](uint64_t n, const char* what) {
    if (n > 1) out += fmt::format("{}{} {}", out.empty() ? "" : " x ", n, what);
  };
  factor(m.src.size(), "src");
  factor(m.dst.size(), "dst");
  factor(m.proto.size(), "proto");
  factor(port_blocks(m.sport), "sport blocks");
  factor(port_blocks(m.dport), "dport blocks");
  if (out.empty()) return "one entry";
  // Then src and dst pair only within a family, and the count is less than the product.
  auto mixed = [](const std::vector<Cidr>& l) {
    return family_count(l, Family::kV4) > 0 && family_count(l, Family::kV6) > 0;
  };
  const bool paired = !m.src.empty() && !m.dst.empty() && (mixed(m.src) || mixed(m.dst));
  return paired ? out + ", pairing IPv4 with IPv4 and IPv6 with IPv6" : out;
}

std::optional<std::vector<MatchBox>> expand_match(const Match& m, uint32_t iif_id, size_t max_boxes) {
  std::vector<MatchBox> out;
  const auto sports = ports_of(m.sport), dports = ports_of(m.dport);
  std::vector<int> protos(m.proto.begin(), m.proto.end());
  if (protos.empty()) protos.push_back(-1);
  for (Family f : {Family::kV4, Family::kV6}) {
    bool applies = true;
    auto srcs = prefixes_of(m.src, f, &applies);
    auto dsts = prefixes_of(m.dst, f, &applies);
    if (!applies) continue;
    size_t n = srcs.size() * dsts.size() * protos.size() * sports.size() * dports.size();
    if (out.size() + n > max_boxes) return std::nullopt;
    for (const auto& s : srcs)
      for (const auto& d : dsts)
        for (int proto : protos)
          for (const auto& sp : sports)
            for (const auto& dp : dports) {
              MatchBox b{};
              clv_shape& sh = b.shape;
              sh.family = f == Family::kV4 ? CLV_AF_INET : CLV_AF_INET6;
              sh.src_plen = s.plen;
              sh.dst_plen = d.plen;
              sh.proto_mask = proto >= 0 ? 0xff : 0;
              sh.dscp_mask = m.dscp ? 0x3f : 0;
              sh.iif_on = iif_id ? 1 : 0;
              sh.sport_mask = sp.mask;
              sh.dport_mask = dp.mask;
              sh.mark_mask = m.mark ? m.mark->second : 0;
              auto sm = prefix_mask(f, s.plen), dm = prefix_mask(f, d.plen);
              std::memcpy(sh.src_mask, sm.data(), 16);
              std::memcpy(sh.dst_mask, dm.data(), 16);
              clv_rule_key& k = b.key;
              k.proto = proto >= 0 ? static_cast<uint8_t>(proto) : 0;
              k.dscp = m.dscp.value_or(0);
              k.sport = sp.value;
              k.dport = dp.value;
              k.mark = m.mark ? m.mark->first : 0;
              k.iif_id = iif_id;
              for (int i = 0; i < 4; ++i) {
                k.src[i] = s.addr[i] & sm[i];
                k.dst[i] = d.addr[i] & dm[i];
              }
              out.push_back(b);
            }
  }
  return out;
}

bool shape_covers(const clv_shape& o, const clv_shape& i) {
  return o.family == i.family && o.src_plen <= i.src_plen && o.dst_plen <= i.dst_plen &&
         (o.proto_mask & ~i.proto_mask) == 0 && (o.dscp_mask & ~i.dscp_mask) == 0 && o.iif_on <= i.iif_on &&
         (o.sport_mask & ~i.sport_mask) == 0 && (o.dport_mask & ~i.dport_mask) == 0 &&
         (o.mark_mask & ~i.mark_mask) == 0;
}

clv_tuple box_tuple(const MatchBox& b) {
  clv_tuple t{};
  std::memcpy(t.src, b.key.src, sizeof t.src);
  std::memcpy(t.dst, b.key.dst, sizeof t.dst);
  t.sport = b.key.sport;
  t.dport = b.key.dport;
  t.proto = b.key.proto;
  t.dscp = b.key.dscp;
  t.family = b.shape.family;
  t.mark = b.key.mark;
  t.iif_id = b.key.iif_id;
  return t;
}

bool box_contains(const MatchBox& b, const clv_tuple& t) {
  clv_rule_key k{};
  if (!clv_mask_tuple(&b.shape, &t, 0, 0, &k)) return false;
  clv_rule_key want = b.key;
  want.bank = 0;
  want.shape = 0;
  return std::memcmp(&k, &want, sizeof k) == 0;
}

std::string describe_shape(const clv_shape& s) {
  std::string out = fmt::format("{} src/{} dst/{}", s.family == CLV_AF_INET ? "ipv4" : "ipv6", s.src_plen, s.dst_plen);
  if (s.proto_mask) out += " proto";
  if (s.sport_mask) out += fmt::format(" sport&{:#06x}", s.sport_mask);
  if (s.dport_mask) out += fmt::format(" dport&{:#06x}", s.dport_mask);
  if (s.dscp_mask) out += " dscp";
  if (s.mark_mask) out += fmt::format(" mark&{:#x}", s.mark_mask);
  if (s.iif_on) out += " iif";
  return out;
}

}  // namespace clovis::core
