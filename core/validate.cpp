#include "validate.hpp"

#include <map>
#include <set>
#include <span>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "abi.hpp"

namespace clovis::core {

namespace {

// More names than a valid mapping can have (CLV_MAX_POLICIES) get no
// did-you-mean: a search per unknown name over them was quadratic.
constexpr size_t kMaxSuggestNames = CLV_MAX_POLICIES;

std::string suggest(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = SIZE_MAX;
  const size_t searched = names.size() <= kMaxSuggestNames ? names.size() : 0;
  for (const auto& n : std::span(names.data(), searched)) {
    // Cheap closeness: common prefix/suffix is enough to catch typos in names.
    size_t d = 0;
    size_t len = std::max(word.size(), n.size());
    for (size_t i = 0; i < len; ++i) d += i >= word.size() || i >= n.size() || word[i] != n[i];
    if (d < best_d) best_d = d, best = n;
  }
  if (!best.empty() && best_d <= std::max<size_t>(2, word.size() / 3)) return fmt::format("did you mean '{}'?", best);
  std::string all;
  for (size_t i = 0; i < names.size() && i < 8; ++i) all += (i ? ", " : "") + names[i];
  return names.empty() ? std::string("none are defined") : fmt::format("defined: {}", all);
}

class Validator {
 public:
  explicit Validator(const Mapping& m) : m_(m) {}
  Diagnostics run();

 private:
  void links();
  void health(const Link& l, const std::string& path);
  void policies();
  void policy_sla(const Policy& p, const std::string& path);
  void policy_metered(const Policy& p, const std::string& path);
  void rules();
  // `path()` gives the diagnostic path; formatted only when there is a
  // diagnostic (a big mapping has 100k rules and rarely an error).
  template <typename Path>
  void target(const Target& t, const Path& path);
  template <typename Path>
  void families_reachable(const Target& t, const Path& path, bool v4, bool v6);

  // By name (the first of duplicates, as Mapping::find_*): those scan the
  // lists, and a rule per policy made validate quadratic.
  const Link* find_link(const std::string& name) const;
  const Policy* find_policy(const std::string& name) const;

  const Mapping& m_;
  Diagnostics d_;
  std::unordered_map<std::string_view, const Link*> links_by_name_;
  std::unordered_map<std::string_view, const Policy*> policies_by_name_;
  std::vector<std::string> link_names_, policy_names_, sla_names_;
  std::unordered_set<std::string_view> used_policies_;
  bool site4_ = false, site6_ = false;  // some link has an IPv4 (IPv6) next hop
};

const Link* Validator::find_link(const std::string& name) const {
  auto it = links_by_name_.find(name);
  return it == links_by_name_.end() ? nullptr : it->second;
}

const Policy* Validator::find_policy(const std::string& name) const {
  auto it = policies_by_name_.find(name);
  return it == policies_by_name_.end() ? nullptr : it->second;
}

Diagnostics Validator::run() {
  for (const auto& l : m_.links) {
    link_names_.push_back(l.name);
    links_by_name_.emplace(l.name, &l);
  }
  for (const auto& p : m_.policies) {
    policy_names_.push_back(p.name);
    policies_by_name_.emplace(p.name, &p);
  }
  for (const auto& c : m_.slas) sla_names_.push_back(c.name);
  for (const auto& l : m_.links) {
    site4_ = site4_ || l.gateway4 || l.point_to_point;
    site6_ = site6_ || l.gateway6 || l.point_to_point;
  }
  links();
  policies();
  rules();
  if (m_.default_target) target(*m_.default_target, [] { return std::string("default"); });
  for (size_t i = 0; i < m_.policies.size(); ++i)
    if (!used_policies_.count(m_.policies[i].name))
      d_.warning(m_.policies[i].loc, fmt::format("policies[{}]", i),
                 fmt::format("policy '{}' is not used by any rule or the default", m_.policies[i].name));
  d_.sort();
  return std::move(d_);
}

void Validator::links() {
  if (m_.links.empty())
    d_.error({}, "links", "the mapping declares no links", "declare at least one WAN link (name, interface, gateway)");
  std::map<std::string, const Link*> names;
  std::map<uint32_t, const Link*> marks, tables;
  if (m_.links.size() > CLV_MAX_LINKS)
    d_.error(m_.links[CLV_MAX_LINKS].loc, "links",
             fmt::format("{} links, over the limit of {}", m_.links.size(), CLV_MAX_LINKS));
  for (size_t i = 0; i < m_.links.size(); ++i) {
    const Link& l = m_.links[i];
    const std::string path = fmt::format("links[{}]", i);
    if (!l.name.empty() && !names.emplace(l.name, &l).second)
      d_.error(l.loc, path, fmt::format("duplicate link name '{}'", l.name),
               fmt::format("first defined at line {}", names[l.name]->loc.line));
    if (l.mark) {
      if (!marks.emplace(*l.mark, &l).second)
        d_.error(l.loc, path + ".mark",
                 fmt::format("mark {:#x} is also used by link '{}'", *l.mark, marks[*l.mark]->name),
                 "each link needs its own mark so policy routing can tell them apart");
    }
    if (l.table) {
      if (!tables.emplace(*l.table, &l).second)
        d_.error(l.loc, path + ".table",
                 fmt::format("table {} is also used by link '{}'", *l.table, tables[*l.table]->name));
      if (*l.table == 253 || *l.table == 254 || *l.table == 255)
        d_.error(l.loc, path + ".table",
                 fmt::format("table {} is one of the kernel's own (default/main/local)", *l.table),
                 "pick another number, or leave it out and clovis assigns one");
    }
    bool has_gw = l.gateway4 || l.gateway6;
    if (!has_gw && !l.point_to_point)
      d_.error(l.loc, path, fmt::format("link '{}' has no next hop for mode {}", l.name, to_string(l.mode)),
               "add gateway: <address> (IPv4 and/or IPv6), or point-to-point: true for a tunnel "
               "interface without a link layer");
    if (l.gateway_mac && l.mode != SteerMode::kRedirect)
      d_.error(l.loc, path + ".gateway-mac", "gateway-mac is used only by mode: redirect",
               "route mode lets the kernel resolve the neighbour; remove gateway-mac");
    if (l.gateway_mac && l.point_to_point)
      d_.error(l.loc, path + ".gateway-mac", "a point-to-point link has no gateway MAC");
    if (l.snat != SnatMode::kNone && l.mode == SteerMode::kRoute)
      d_.error(l.loc, path + ".snat",
               "snat is done by clovis only in mode: redirect; route mode leaves NAT to the kernel",
               fmt::format("remove snat and masquerade in nftables (oifname \"{}\" masquerade), or "
                           "use mode: redirect",
                           l.interface));
    if (l.masquerade && l.mode != SteerMode::kRoute)
      d_.error(l.loc, path + ".masquerade",
               "masquerade: says the host masquerades on a route-mode link; in mode: redirect clovis translates",
               "use snat: masquerade in mode: redirect, or remove masquerade");
    if (l.snat == SnatMode::kAddress) {
      if (l.snat4 && !l.gateway4 && !l.point_to_point)
        d_.error(l.loc, path + ".snat", "IPv4 snat address on a link without an IPv4 gateway");
      if (l.snat6 && !l.gateway6 && !l.point_to_point)
        d_.error(l.loc, path + ".snat", "IPv6 snat address on a link without an IPv6 gateway");
    }
    if (l.health) health(l, path + ".health");
  }
}

void Validator::health(const Link& l, const std::string& path) {
  const Health& h = *l.health;
  if (h.probes.empty())
    d_.error(h.loc, path + ".probes", "health has no probes",
             "add probes: [{icmp: <gateway or a stable address beyond it>}]");
  if (h.interval_ms < 100)
    d_.error(h.loc, path + ".interval", fmt::format("interval {}ms is below 100ms", h.interval_ms));
  if (h.timeout_ms == 0 || h.timeout_ms > h.interval_ms)
    d_.error(h.loc, path + ".timeout",
             fmt::format("timeout {}ms must be between 1ms and the interval ({}ms)", h.timeout_ms, h.interval_ms),
             "a probe must be answered before the next one is sent");
  if (h.reliability > h.probes.size() && !h.probes.empty())
    d_.error(h.loc, path + ".reliability",
             fmt::format("reliability {} needs at least {} probes, there are {}", h.reliability, h.reliability,
                         h.probes.size()));
  for (const auto& p : h.probes) {
    bool ok = p.target.family == Family::kV4 ? (l.gateway4 || l.point_to_point) : (l.gateway6 || l.point_to_point);
    if (!ok)
      d_.error(p.loc, path + ".probes",
               fmt::format("probe target {} is {} but link '{}' has no such gateway", p.target.str(),
                           p.target.family == Family::kV4 ? "IPv4" : "IPv6", l.name));
  }
}

void Validator::policies() {
  std::map<std::string, const Policy*> names;
  if (m_.policies.size() > CLV_MAX_POLICIES)
    d_.error(m_.policies[CLV_MAX_POLICIES].loc, "policies",
             fmt::format("{} policies, over the limit of {}", m_.policies.size(), CLV_MAX_POLICIES));
  for (size_t i = 0; i < m_.policies.size(); ++i) {
    const Policy& p = m_.policies[i];
    const std::string path = fmt::format("policies[{}]", i);
    if (!p.name.empty() && !names.emplace(p.name, &p).second)
      d_.error(p.loc, path, fmt::format("duplicate policy name '{}'", p.name),
               fmt::format("first defined at line {}", names[p.name]->loc.line));
    if (p.members.size() > CLV_POLICY_MAX_MEMBERS)
      d_.error(p.loc, path, fmt::format("{} members, over the limit of {}", p.members.size(), CLV_POLICY_MAX_MEMBERS));
    std::set<std::string> seen;
    std::map<uint32_t, uint32_t> tier_weight;
    for (size_t j = 0; j < p.members.size(); ++j) {
      const Member& mem = p.members[j];
      const std::string mp = fmt::format("{}.members[{}]", path, j);
      const Link* l = find_link(mem.link);
      if (!mem.link.empty() && !l)
        d_.error(mem.loc, mp, fmt::format("unknown link '{}'", mem.link), suggest(mem.link, link_names_));
      if (!mem.link.empty() && !seen.insert(mem.link).second)
        d_.error(mem.loc, mp, fmt::format("link '{}' appears twice in policy '{}'", mem.link, p.name));
      tier_weight[mem.tier] += mem.weight.value_or(l ? l->weight : 1);
    }
    policy_sla(p, path);
    policy_metered(p, path);
    for (auto [tier, w] : tier_weight)
      if (w == 0)
        d_.warning(
            p.loc, path,
            fmt::format("every link in tier {} of policy '{}' has weight 0: the tier is never used", tier, p.name));
  }
}

void Validator::policy_sla(const Policy& p, const std::string& path) {
  if (p.sla.empty()) {
    if (p.fallback_set)
      d_.warning(p.loc, path + ".fallback", fmt::format("policy '{}' has a fallback but no sla:", p.name),
                 "fallback: says what to do when no member meets the policy's SLA class; add sla: NAME");
    if (p.sla_moves_set)
      d_.warning(p.loc, path + ".on-sla-violation",
                 fmt::format("policy '{}' says what its flows do on an SLA violation but has no sla:", p.name),
                 "on-sla-violation: and hold-down: act on the policy's SLA class; add sla: NAME");
    return;
  }
  if (!m_.find_sla(p.sla)) {
    d_.error(p.sla_loc, path + ".sla", fmt::format("unknown SLA class '{}'", p.sla),
             sla_names_.empty() ? std::string("declare it under the top-level sla: (e.g. sla: {voice: {latency: "
                                              "150ms}})")
                                : suggest(p.sla, sla_names_));
    return;
  }
  for (size_t j = 0; j < p.members.size(); ++j) {
    const Link* l = find_link(p.members[j].link);
    if (l && (!l->health || l->health->probes.empty()))
      d_.warning(p.members[j].loc, fmt::format("{}.members[{}]", path, j),
                 fmt::format("link '{}' has no health probes: it is never measured, so always within SLA '{}'", l->name,
                             p.sla),
                 "add health: {probes: [...]} to the link");
  }
}

// Over budget, a metered link leaves the policies that do not allow it: one
// whose members are all metered then has none, and falls to its last-resort.
void Validator::policy_metered(const Policy& p, const std::string& path) {
  size_t metered = 0, known = 0;
  for (const Member& mem : p.members)
    if (const Link* l = find_link(mem.link)) ++known, metered += l->budget.has_value();
  if (p.metered_allow && metered == 0 && p.metered_loc.line)
    d_.warning(p.metered_loc, path + ".metered",
               fmt::format("policy '{}' allows metered links but none of its members has a budget", p.name),
               "metered: allow matters only for links with budget:; remove it");
  else if (!p.metered_allow && known > 0 && metered == known)
    d_.warning(p.loc, path,
               fmt::format("every member of policy '{}' is metered: once they are all over budget, its flows go "
                           "to its last-resort ({})",
                           p.name, to_string(p.last_resort)),
               "add an unmetered link, or metered: allow if the policy may use them over budget");
}

void Validator::rules() {
  std::unordered_map<std::string_view, const Rule*> names;
  std::unordered_map<uint32_t, const Rule*> prios;
  names.reserve(m_.rules.size());
  prios.reserve(m_.rules.size());
  constexpr size_t kMaxRules = kMaxRulesPerMapping;  // as the loader; for mappings built in code
  if (m_.rules.size() > kMaxRules)
    d_.error(m_.rules[kMaxRules].loc, "rules",
             fmt::format("{} rules, over the limit of {}", m_.rules.size(), kMaxRules));
  for (size_t i = 0; i < m_.rules.size(); ++i) {
    const Rule& r = m_.rules[i];
    const Match& mt = r.match;
    auto path = [i] { return fmt::format("rules[{}]", i); };
    if (!r.name.empty()) {
      auto [at, fresh] = names.emplace(r.name, &r);
      if (!fresh)
        d_.error(r.loc, path(), fmt::format("duplicate rule name '{}'", r.name),
                 fmt::format("first defined at line {}", at->second->loc.line));
    }
    if (auto [at, fresh] = prios.emplace(r.priority, &r); !fresh)
      d_.error(r.loc, path() + ".priority",
               fmt::format("priority {} is also used by rule '{}' (line {})", r.priority, at->second->name,
                           at->second->loc.line),
               "priorities decide which rule wins; give each rule its own");
    if (!mt.sport.empty() || !mt.dport.empty()) {
      bool ok = !mt.proto.empty();
      for (uint8_t p : mt.proto) ok = ok && (p == 6 || p == 17 || p == 132 || p == 136);
      if (!ok)
        d_.error(r.loc, path() + ".match", "ports are matched only with proto tcp, udp, sctp or udplite",
                 "add proto: tcp (or [tcp, udp])");
    }
    // Which families each list has, found once: testing every prefix of one
    // list against the other was quadratic in a rule's list sizes.
    struct Families {
      bool v4 = false, v6 = false;
      bool has(Family f) const { return f == Family::kV4 ? v4 : v6; }
    };
    auto families = [](const std::vector<Cidr>& v) {
      Families fs;
      for (const auto& c : v) (c.addr.family == Family::kV4 ? fs.v4 : fs.v6) = true;
      return fs;
    };
    const Families src_fam = families(mt.src), dst_fam = families(mt.dst);
    auto has = [&](const std::vector<Cidr>& v, Family f) { return (&v == &mt.src ? src_fam : dst_fam).has(f); };
    for (const auto* list : {&mt.src, &mt.dst}) {
      const auto* other = list == &mt.src ? &mt.dst : &mt.src;
      if (other->empty()) continue;
      for (const auto& c : *list)
        if (!has(*other, c.addr.family))
          d_.warning(r.loc, path() + ".match",
                     fmt::format("{} {} can never match: {} has no {} prefix", list == &mt.src ? "src" : "dst", c.str(),
                                 list == &mt.src ? "dst" : "src", c.addr.family == Family::kV4 ? "IPv4" : "IPv6"),
                     "add a prefix of that family to the other side, or remove this one");
    }
    bool v4 = (mt.src.empty() || has(mt.src, Family::kV4)) && (mt.dst.empty() || has(mt.dst, Family::kV4));
    bool v6 = (mt.src.empty() || has(mt.src, Family::kV6)) && (mt.dst.empty() || has(mt.dst, Family::kV6));
    if (!v4 && !v6)
      d_.error(r.loc, path() + ".match", "src and dst are of different address families: the rule can never match",
               "give src and dst prefixes of the same family (IPv4 or IPv6)");
    for (uint8_t p : mt.proto) {
      if ((p == 1 && !v4) || (p == 58 && !v6))
        d_.warning(r.loc, path() + ".match.proto",
                   fmt::format("proto {} never occurs in the rule's address family", proto_name(p)));
    }
    target(r.target, path);
    if (r.target.kind == TargetKind::kPolicy || r.target.kind == TargetKind::kLink)
      families_reachable(r.target, path, v4, v6);
  }
}

template <typename Path>
void Validator::target(const Target& t, const Path& path) {
  if (t.kind == TargetKind::kPolicy) {
    used_policies_.insert(t.name);
    if (!find_policy(t.name))
      d_.error(t.loc, path() + ".policy", fmt::format("unknown policy '{}'", t.name), suggest(t.name, policy_names_));
  } else if (t.kind == TargetKind::kLink) {
    if (!find_link(t.name))
      d_.error(t.loc, path() + ".link", fmt::format("unknown link '{}'", t.name), suggest(t.name, link_names_));
  }
}

template <typename Path>
void Validator::families_reachable(const Target& t, const Path& path, bool v4, bool v6) {
  bool found = false, any4 = false, any6 = false;
  auto use = [&](const Link* l) {
    if (!l) return;
    found = true;
    any4 = any4 || l->gateway4 || l->point_to_point;
    any6 = any6 || l->gateway6 || l->point_to_point;
  };
  if (t.kind == TargetKind::kLink) {
    use(find_link(t.name));
  } else if (auto* p = find_policy(t.name)) {
    for (const auto& mem : p->members) use(find_link(mem.link));
  }
  if (!found) return;
  const bool only_v4 = v4 && !v6, only_v6 = v6 && !v4;
  // An IPv4-only (or IPv6-only) site: "any family" rules need no warning.
  const char* what = t.kind == TargetKind::kLink ? "link" : "policy";
  if (only_v6 && !any6)
    d_.error(t.loc, path(), fmt::format("the rule matches only IPv6 but {} '{}' has no IPv6 next hop", what, t.name),
             "add an IPv6 gateway to a link it uses");
  else if (only_v4 && !any4)
    d_.error(t.loc, path(), fmt::format("the rule matches only IPv4 but {} '{}' has no IPv4 next hop", what, t.name),
             "add an IPv4 gateway to a link it uses");
  else if (v4 && v6 && site4_ && site6_ && !(any4 && any6))
    d_.warning(t.loc, path(),
               fmt::format(
                   "{} '{}' has no {} next hop: {} flows matching this rule {}", what, t.name, any4 ? "IPv6" : "IPv4",
                   any4 ? "IPv6" : "IPv4",
                   t.kind == TargetKind::kLink ? "are left to the host's routing" : "fall to the policy's last resort"),
               "restrict the rule to one family with src/dst, or add a gateway");
}

}  // namespace

Diagnostics validate(const Mapping& m) {
  return Validator(m).run();
}

}  // namespace clovis::core
