#include "reference.hpp"

#include <algorithm>
#include <cctype>

namespace clovis::core {

namespace {

IpAddr addr_of(const uint32_t w[4], uint8_t family) {
  return IpAddr::from_words(family == CLV_AF_INET ? Family::kV4 : Family::kV6, w);
}

bool any_cidr(const std::vector<Cidr>& list, const IpAddr& a) {
  return list.empty() || std::any_of(list.begin(), list.end(), [&](const Cidr& c) { return c.contains(a); });
}

bool any_port(const std::vector<PortRange>& list, uint16_t p) {
  return list.empty() ||
         std::any_of(list.begin(), list.end(), [&](const PortRange& r) { return p >= r.lo && p <= r.hi; });
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool l7_matches(const Match& m, const L7Facts& f) {
  std::string host = normalize_host(f.host);
  if (m.host) {
    const std::string& p = *m.host;
    bool ok = p.rfind("*.", 0) == 0
                  ? host.size() > p.size() - 1 && host.substr(host.size() - (p.size() - 1)) == p.substr(1)
                  : host == p;
    if (!ok) return false;
  }
  if (m.path_prefix && f.path.compare(0, m.path_prefix->size(), *m.path_prefix) != 0) return false;
  if (m.method && *m.method != f.method) return false;
  for (const auto& h : m.headers) {
    bool ok = false;
    for (const auto& [n, v] : f.headers)
      if (lower(n) == h.name) {
        ok = v == h.value;
        break;
      }
    if (!ok) return false;
  }
  return true;
}

bool rule_matches(const Rule& r, const FlowQuery& q) {
  const Match& m = r.match;
  const clv_tuple& t = q.tuple;
  if (m.has_l7() && !(q.l7 && l7_matches(m, *q.l7))) return false;
  if (!any_cidr(m.src, addr_of(t.src, t.family)) || !any_cidr(m.dst, addr_of(t.dst, t.family))) return false;
  if (!m.proto.empty() && std::find(m.proto.begin(), m.proto.end(), t.proto) == m.proto.end()) return false;
  if (!any_port(m.sport, t.sport) || !any_port(m.dport, t.dport)) return false;
  if (m.dscp && *m.dscp != t.dscp) return false;
  if (m.mark && (t.mark & m.mark->second) != m.mark->first) return false;
  if (m.interface && *m.interface != q.iif) return false;
  return true;
}

}  // namespace

std::optional<size_t> reference_match(const Mapping& m, const FlowQuery& q) {
  std::optional<size_t> best;
  for (size_t i = 0; i < m.rules.size(); ++i)
    if ((!best || m.rules[i].priority < m.rules[*best].priority) && rule_matches(m.rules[i], q)) best = i;
  return best;
}

}  // namespace clovis::core
