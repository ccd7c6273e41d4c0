#include "diff.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

namespace clovis::core {

namespace {

using Changes = std::vector<std::string>;

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

template <typename T, typename F>
std::string list_str(const std::vector<T>& v, F f, const char* empty = "any") {
  if (v.empty()) return empty;
  std::vector<std::string> parts;
  for (const auto& x : v) parts.push_back(f(x));
  return join(parts);
}

void field(Changes& c, const std::string& name, const std::string& a, const std::string& b) {
  if (a != b) c.push_back(fmt::format("{} {} -> {}", name, a, b));
}

std::string addr_str(const std::optional<IpAddr>& a) { return a ? a->str() : "none"; }

template <typename T>
std::string num_str(const std::optional<T>& v, const char* none = "auto") {
  return v ? fmt::format("{}", *v) : none;
}

std::string snat_str(const Link& l) {
  if (l.snat != SnatMode::kAddress) return to_string(l.snat);
  std::vector<std::string> a;
  if (l.snat4) a.push_back(l.snat4->str());
  if (l.snat6) a.push_back(l.snat6->str());
  return join(a);
}

std::string health_str(const std::optional<Health>& h) {
  if (!h) return "none";
  auto probe = [](const Probe& p) {
    return p.kind == ProbeKind::kTcp ? fmt::format("tcp {}:{}", p.target.str(), p.port) : "icmp " + p.target.str();
  };
  return fmt::format("[{}] every {}ms timeout {}ms down {} up {} reliability {} loss {} latency {} jitter {}",
                     list_str(h->probes, probe, ""), h->interval_ms, h->timeout_ms, h->down_after, h->up_after,
                     h->reliability, num_str(h->max_loss_pct, "-"), num_str(h->max_latency_ms, "-"),
                     num_str(h->max_jitter_ms, "-"));
}

Changes link_changes(const Link& a, const Link& b) {
  Changes c;
  field(c, "interface", a.interface, b.interface);
  field(c, "gateway", addr_str(a.gateway4), addr_str(b.gateway4));
  field(c, "gateway6", addr_str(a.gateway6), addr_str(b.gateway6));
  auto mac = [](const Link& l) { return l.gateway_mac ? format_mac(*l.gateway_mac) : "none"; };
  field(c, "gateway-mac", mac(a), mac(b));
  field(c, "point-to-point", a.point_to_point ? "yes" : "no", b.point_to_point ? "yes" : "no");
  field(c, "mode", to_string(a.mode), to_string(b.mode));
  field(c, "snat", snat_str(a), snat_str(b));
  field(c, "mark", num_str(a.mark), num_str(b.mark));
  field(c, "table", num_str(a.table), num_str(b.table));
  auto same = [](const std::string& s) { return s; };
  field(c, "labels", list_str(a.labels, same, "none"), list_str(b.labels, same, "none"));
  field(c, "weight", std::to_string(a.weight), std::to_string(b.weight));
  if (health_str(a.health) != health_str(b.health)) {
    c.push_back(!a.health ? "health added" : !b.health ? "health removed" : "health changed");
  }
  return c;
}

std::string member_str(const Member& m) {
  std::string s = m.link;
  if (m.tier != 1) s += fmt::format(" tier {}", m.tier);
  if (m.weight) s += fmt::format(" weight {}", *m.weight);
  return s;
}

Changes policy_changes(const Policy& a, const Policy& b) {
  Changes c;
  field(c, "members", list_str(a.members, member_str, "none"), list_str(b.members, member_str, "none"));
  field(c, "on-link-down", to_string(a.on_link_down), to_string(b.on_link_down));
  field(c, "last-resort", to_string(a.last_resort), to_string(b.last_resort));
  field(c, "sticky", to_string(a.sticky), to_string(b.sticky));
  field(c, "avoid-degraded", a.avoid_degraded ? "yes" : "no", b.avoid_degraded ? "yes" : "no");
  return c;
}

std::string ports_str(const std::vector<PortRange>& v) {
  return list_str(v, [](const PortRange& r) {
    return r.lo == r.hi ? fmt::format("{}", r.lo) : fmt::format("{}-{}", r.lo, r.hi);
  });
}

// Formats a field only when the values differ (most rules of an apply are
// unchanged); field() still compares the texts, so the output is the same as
// formatting every field.
template <typename T, typename F>
void field_if(Changes& c, const char* name, const T& a, const T& b, F str) {
  if (!(a == b)) field(c, name, str(a), str(b));
}

bool same_headers(const std::vector<Header>& a, const std::vector<Header>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const Header& x, const Header& y) { return x.name == y.name && x.value == y.value; });
}

Changes match_changes(const Match& a, const Match& b) {
  Changes c;
  auto cidrs = [](const std::vector<Cidr>& v) { return list_str(v, [](const Cidr& x) { return x.str(); }); };
  auto any = [](const std::optional<std::string>& s) { return s.value_or("any"); };
  field_if(c, "match.src", a.src, b.src, cidrs);
  field_if(c, "match.dst", a.dst, b.dst, cidrs);
  field_if(c, "match.sport", a.sport, b.sport, ports_str);
  field_if(c, "match.dport", a.dport, b.dport, ports_str);
  field_if(c, "match.proto", a.proto, b.proto, [](const std::vector<uint8_t>& v) { return list_str(v, proto_name); });
  field_if(c, "match.dscp", a.dscp, b.dscp, [](const std::optional<uint8_t>& d) { return num_str(d, "any"); });
  field_if(c, "match.mark", a.mark, b.mark, [](const std::optional<std::pair<uint32_t, uint32_t>>& m) {
    return m ? fmt::format("{:#x}/{:#x}", m->first, m->second) : "any";
  });
  field_if(c, "match.interface", a.interface, b.interface, any);
  field_if(c, "match.host", a.host, b.host, any);
  field_if(c, "match.path-prefix", a.path_prefix, b.path_prefix, any);
  field_if(c, "match.method", a.method, b.method, any);
  if (!same_headers(a.headers, b.headers)) {
    auto header = [](const Header& h) { return h.name + ": " + h.value; };
    field(c, "match.headers", list_str(a.headers, header), list_str(b.headers, header));
  }
  return c;
}

std::string target_str(const Target& t) {
  if (t.kind == TargetKind::kBypass || t.kind == TargetKind::kDrop) return to_string(t.kind);
  return fmt::format("{} {}", to_string(t.kind), t.name);
}

Changes rule_changes(const Rule& a, const Rule& b) {
  Changes c;
  if (a.priority != b.priority) field(c, "priority", std::to_string(a.priority), std::to_string(b.priority));
  for (auto& m : match_changes(a.match, b.match)) c.push_back(std::move(m));
  if (a.target.kind != b.target.kind || a.target.name != b.target.name)
    field(c, "target", target_str(a.target), target_str(b.target));
  return c;
}

template <typename T, typename F>
void diff_named(const char* kind, const std::vector<T>* before, const std::vector<T>& after, F changes,
                std::vector<DiffItem>& out) {
  auto compare = [&](const T* a, const T& b) {
    if (!a) {
      out.push_back({kind, b.name, "added", {}});
      return;
    }
    Changes c = changes(*a, b);
    if (!c.empty()) out.push_back({kind, b.name, "changed", join(c)});
  };
  // Names are unique (validated). When they line up entry by entry, as they
  // do after most edits, pair them by position; otherwise through a hash
  // index: 100k rules must not mean 10^10 comparisons.
  if (before && before->size() == after.size() &&
      std::equal(before->begin(), before->end(), after.begin(), [](const T& a, const T& b) { return a.name == b.name; })) {
    for (size_t i = 0; i < after.size(); ++i) compare(&(*before)[i], after[i]);
    return;
  }
  std::unordered_map<std::string_view, const T*> old_by_name, new_by_name;
  if (before) {
    old_by_name.reserve(before->size());
    for (const auto& x : *before) old_by_name.emplace(x.name, &x);
  }
  new_by_name.reserve(after.size());
  for (const auto& x : after) new_by_name.emplace(x.name, &x);
  for (const auto& b : after) {
    auto it = old_by_name.find(b.name);
    compare(it == old_by_name.end() ? nullptr : it->second, b);
  }
  if (!before) return;
  for (const auto& a : *before)
    if (!new_by_name.count(a.name)) out.push_back({kind, a.name, "removed", {}});
}

}  // namespace

std::vector<DiffItem> diff_mappings(const Mapping* before, const Mapping& after) {
  std::vector<DiffItem> out;
  diff_named("link", before ? &before->links : nullptr, after.links, link_changes, out);
  diff_named("policy", before ? &before->policies : nullptr, after.policies, policy_changes, out);
  diff_named("rule", before ? &before->rules : nullptr, after.rules, rule_changes, out);
  const std::optional<Target> none;
  const auto& was = before ? before->default_target : none;
  const auto& now = after.default_target;
  if (!was && now) out.push_back({"default", "default", "added", target_str(*now)});
  else if (was && !now) out.push_back({"default", "default", "removed", target_str(*was)});
  else if (was && now && target_str(*was) != target_str(*now))
    out.push_back({"default", "default", "changed", fmt::format("{} -> {}", target_str(*was), target_str(*now))});
  return out;
}

}  // namespace clovis::core
