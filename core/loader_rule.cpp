// policies:, rules: and their match:.
#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "abi.hpp"
#include "loader_impl.hpp"

namespace clovis::core::loader_detail {

namespace {

// A policy and whether its members were given yet (failover: or members:).
struct PolicyRead {
  Policy pol;
  bool have_members = false;
};

void read_members(Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
  auto& r = ld.reader();
  const std::string_view k = kv.key.scalar();
  if (pr.have_members)
    r.error(kv.key, p, "a policy has either 'failover' or 'members', not both",
            "failover: [a, b] is shorthand for members a (tier 1) and b (tier 2)");
  pr.have_members = true;
  if (!ld.within(kv.value, p, CLV_POLICY_MAX_MEMBERS, "members")) return;
  uint32_t tier = 0;
  r.list(kv.value, p, [&](YamlNode item, const YamlPath& ip, size_t) {
    Member mem;
    mem.loc = YamlReader::loc(item);
    mem.tier = k == "failover" ? ++tier : 1;
    if (item.is_scalar() || k == "failover") {
      if (auto s = ld.name(item, ip)) mem.link = *s;
    } else {
      ld.member(item, ip, mem);
    }
    pr.pol.members.push_back(mem);
  });
}

constexpr auto kPolicyKeys = key_table<PolicyRead>({
    {"name",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       if (auto s = ld.name(kv.value, p)) pr.pol.name = *s;
     }},
    {"failover", read_members},
    {"members", read_members},
    {"on-link-down",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       if (auto w = ld.reader().word(kv.value, p, {"migrate", "keep", "drop"}))
         pr.pol.on_link_down = *w == "migrate" ? OnLinkDown::kMigrate
                               : *w == "keep"  ? OnLinkDown::kKeep
                                               : OnLinkDown::kDrop;
     }},
    {"last-resort",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       if (auto w = ld.reader().word(kv.value, p, {"default", "drop"}))
         pr.pol.last_resort = *w == "default" ? LastResort::kDefault : LastResort::kDrop;
     }},
    {"sticky",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       if (auto w = ld.reader().word(kv.value, p, {"flow", "source", "source-dest"}))
         pr.pol.sticky = *w == "flow" ? Sticky::kFlow : *w == "source" ? Sticky::kSource : Sticky::kSourceDest;
     }},
    {"avoid-degraded",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       if (auto b = ld.reader().boolean(kv.value, p)) pr.pol.avoid_degraded = *b;
     }},
    {"sla",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       pr.pol.sla_loc = YamlReader::loc(kv.value);
       if (auto s = ld.name(kv.value, p)) pr.pol.sla = *s;
     }},
    {"strategy",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       if (auto w = ld.reader().word(kv.value, p, {"tiers", "best-quality"}))
         pr.pol.strategy = *w == "tiers" ? Strategy::kTiers : Strategy::kBestQuality;
     }},
    {"metered",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       pr.pol.metered_loc = YamlReader::loc(kv.value);
       if (auto w = ld.reader().word(kv.value, p, {"avoid", "allow"})) pr.pol.metered_allow = *w == "allow";
     }},
    {"fallback",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       pr.pol.fallback_set = true;
       if (auto w = ld.reader().word(kv.value, p, {"best-of-worst", "keep", "last-resort"}))
         pr.pol.fallback = *w == "best-of-worst" ? SlaFallback::kBestOfWorst
                           : *w == "keep"        ? SlaFallback::kKeep
                                                 : SlaFallback::kLastResort;
     }},
    {"on-sla-violation",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       pr.pol.sla_moves_set = true;
       if (auto w = ld.reader().word(kv.value, p, {"migrate", "keep", "force"}))
         pr.pol.on_sla_violation = *w == "migrate" ? OnSlaViolation::kMigrate
                                   : *w == "keep"  ? OnSlaViolation::kKeep
                                                   : OnSlaViolation::kForce;
     }},
    {"hold-down",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       pr.pol.sla_moves_set = true;
       if (auto d = ld.reader().duration_ms(kv.value, p)) pr.pol.hold_down_ms = *d;
     }},
    {"on-link-up",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       if (auto w = ld.reader().word(kv.value, p, {"stay", "return", "force"}))
         pr.pol.on_link_up = *w == "stay" ? OnLinkUp::kStay : *w == "return" ? OnLinkUp::kReturn : OnLinkUp::kForce;
     }},
    {"return-after",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, PolicyRead& pr) {
       if (auto d = ld.reader().duration_ms(kv.value, p)) pr.pol.return_after_ms = *d;
     }},
});

constexpr auto kMemberKeys = key_table<Member>({
    {"link",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Member& mem) {
       if (auto s = ld.name(kv.value, p)) mem.link = *s;
     }},
    {"tier",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Member& mem) {
       if (auto u = ld.reader().uint(kv.value, p, 1, 255)) mem.tier = static_cast<uint32_t>(*u);
     }},
    {"weight",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Member& mem) {
       if (auto u = ld.reader().uint(kv.value, p, 0, 1000)) mem.weight = static_cast<uint32_t>(*u);
     }},
});

// policy, link and action are the rule's target, read by Loader::target.
constexpr auto kRuleKeys = key_table<Rule>({
    {"name",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Rule& rl) {
       if (auto s = ld.name(kv.value, p)) rl.name = *s;
     }},
    {"priority",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Rule& rl) {
       if (auto u = ld.reader().uint(kv.value, p, 0, 0xfffffffe)) rl.priority = static_cast<uint32_t>(*u);
     }},
    {"match", [](Loader& ld, YamlEntry kv, const YamlPath& p, Rule& rl) { ld.match(kv.value, p, rl.match); }},
    {"policy", nullptr},
    {"link", nullptr},
    {"action", nullptr},
});

}  // namespace

void Loader::policy(YamlNode n, const YamlPath& path, Mapping& m) {
  if (!r_.check_map(n, path, kPolicyKeys.names)) return;
  PolicyRead pr;
  pr.pol.loc = YamlReader::loc(n);
  KeysSeen seen = read_entries(n, path, kPolicyKeys, pr);
  if (!seen.has("name")) r_.error(n, path, "policy has no 'name'");
  if (!pr.have_members) r_.error(n, path, "policy has no links", "add failover: [link, ...] or members: [...]");
  m.policies.push_back(std::move(pr.pol));
}

void Loader::member(YamlNode item, const YamlPath& path, Member& mem) {
  auto seen = read_map(item, path, kMemberKeys, mem);
  if (seen && !seen->has("link")) r_.error(item, path, "member has no 'link'");
}

std::optional<Target> Loader::target(YamlNode n, const YamlPath& path) {
  std::optional<Target> t;
  for (YamlEntry kv : n.entries()) {
    const std::string_view k = kv.key.scalar();
    if (k != "policy" && k != "link" && k != "action") continue;
    const YamlPath p(path, k);
    if (t) {
      r_.error(kv.key, p, "more than one of 'policy', 'link', 'action'", "keep exactly one");
      return std::nullopt;
    }
    Target tt;
    tt.loc = YamlReader::loc(kv.value);
    if (k == "action") {
      auto w = r_.word(kv.value, p, {"bypass", "drop"});
      if (!w) return std::nullopt;
      tt.kind = *w == "bypass" ? TargetKind::kBypass : TargetKind::kDrop;
    } else {
      auto s = name(kv.value, p);
      if (!s) return std::nullopt;
      tt.kind = k == "policy" ? TargetKind::kPolicy : TargetKind::kLink;
      tt.name = *s;
    }
    t = tt;
  }
  if (!t)
    r_.error(n, path, "no target: say where matching traffic goes",
             "add policy: NAME, link: NAME or action: bypass|drop");
  return t;
}

void Loader::rule(YamlNode n, const YamlPath& path, Mapping& m) {
  if (!r_.check_map(n, path, kRuleKeys.names)) return;
  Rule& rl = m.rules.emplace_back();  // in place: a Rule is large, and there may be 100k
  rl.loc = YamlReader::loc(n);
  rule_is_l7_ = false;
  KeysSeen seen = read_entries(n, path, kRuleKeys, rl);
  if (auto t = target(n, path)) rl.target = std::move(*t);
  if (!seen.has("name")) r_.error(n, path, "rule has no 'name'");
  if (!seen.has("priority"))
    r_.error(n, path, "rule has no 'priority'",
             "rules are evaluated by explicit priority, lowest first; add priority: N");
}

std::optional<PortRange> Loader::port_range(YamlNode n, const YamlPath& path) {
  auto s = r_.view(n, path);
  if (!s) return std::nullopt;
  auto parse_port = [](std::string_view t, uint16_t* out) {
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || p != t.data() + t.size() || v > 65535) return false;
    *out = static_cast<uint16_t>(v);
    return true;
  };
  PortRange r;
  auto dash = s->find('-');
  bool ok = dash == std::string_view::npos
                ? parse_port(*s, &r.lo) && (r.hi = r.lo, true)
                : parse_port(s->substr(0, dash), &r.lo) && parse_port(s->substr(dash + 1), &r.hi);
  if (!ok) {
    r_.error(n, path, fmt::format("'{}' is not a port or port range", *s), "write e.g. 443 or 8000-8080 (0-65535)");
    return std::nullopt;
  }
  if (r.lo > r.hi) {
    r_.error(n, path, fmt::format("port range '{}' is reversed", *s), fmt::format("did you mean {}-{}?", r.hi, r.lo));
    return std::nullopt;
  }
  return r;
}

}  // namespace clovis::core::loader_detail
