#include "classifier.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include <fmt/format.h>

#include "budget.hpp"
#include "match_box.hpp"

namespace clovis::core {

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::kSteer: return "steer";
    case Verdict::kBypass: return "bypass";
    case Verdict::kDrop: return "drop";
    case Verdict::kNotSteered: return "not-steered";
  }
  return "?";
}

std::string normalize_host(std::string_view host) {
  std::string h(host);
  if (!h.empty() && h[0] == '[') {  // [v6]:port
    auto close = h.find(']');
    h = h.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  } else if (std::count(h.begin(), h.end(), ':') == 1) {
    h = h.substr(0, h.find(':'));
  }
  if (!h.empty() && h.back() == '.') h.pop_back();
  for (auto& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return h;
}

namespace {

// The tuple in clv_rule_key's layout, bank and shape zero.
RuleKeyWords tuple_words(const clv_tuple& t) {
  clv_rule_key k{};
  k.proto = t.proto;
  k.dscp = t.dscp;
  k.sport = t.sport;
  k.dport = t.dport;
  k.mark = t.mark;
  k.iif_id = t.iif_id;
  std::memcpy(k.src, t.src, sizeof k.src);
  std::memcpy(k.dst, t.dst, sizeof k.dst);
  return key_words(k);
}

}  // namespace

Classifier::Classifier(const CompiledRules& c) : c_(c) {
  // Field by field what clv_mask_tuple does; bank and shape are not masked in.
  shapes_.reserve(c.shapes.size());
  for (size_t s = 0; s < c.shapes.size(); ++s) {
    const clv_shape& sh = c.shapes[s];
    clv_rule_key m{};
    m.proto = sh.proto_mask;
    m.dscp = sh.dscp_mask;
    m.sport = sh.sport_mask;
    m.dport = sh.dport_mask;
    m.mark = sh.mark_mask;
    m.iif_id = sh.iif_on ? 0xffffffffu : 0;
    std::memcpy(m.src, sh.src_mask, sizeof m.src);
    std::memcpy(m.dst, sh.dst_mask, sizeof m.dst);
    clv_rule_key tag{};
    tag.shape = static_cast<uint8_t>(s);
    shapes_.push_back({key_words(m), key_words(tag)[0], sh.min_priority, sh.family});
  }
  table_.reserve(c.entries.size());
  for (const auto& [k, v] : c.entries) table_.insert(k, v);
}

// The kernel's walk_shape loop, step for step: same order, same stop, same
// keys, the same strict improvement. Only the key is built a word at a time.
std::optional<clv_rule_val> Classifier::lookup(const clv_tuple& t, std::vector<ShapeProbe>* trace) const {
  const RuleKeyWords tw = tuple_words(t);
  const clv_rule_val* best = nullptr;
  for (size_t s = 0; s < shapes_.size(); ++s) {
    const ShapeMask& sh = shapes_[s];
    if (best && sh.min_priority >= best->priority) break;
    if (sh.family != t.family) continue;
    const RuleKeyWords& m = sh.mask;
    const RuleKeyWords k = {
        (tw[0] & m[0]) | sh.tag, tw[1] & m[1], tw[2] & m[2], tw[3] & m[3], tw[4] & m[4], tw[5] & m[5]};
    const clv_rule_val* v = table_.find(k);
    ShapeProbe p{static_cast<uint8_t>(s), v != nullptr, false, 0, 0};
    if (v) {
      p.rule_id = v->rule_id;
      p.priority = v->priority;
      if (!best || v->priority < best->priority) best = v, p.better = true;
    }
    if (trace) trace->push_back(p);
  }
  if (!best) return std::nullopt;
  return *best;
}

namespace {

bool host_matches(const std::string& pattern, const std::string& host) {
  if (pattern.rfind("*.", 0) != 0) return pattern == host;
  std::string_view suffix = std::string_view(pattern).substr(1);  // ".example.com"
  return host.size() > suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string header_value(const L7Facts& f, const std::string& name, bool* found) {
  for (const auto& [n, v] : f.headers) {
    if (n.size() != name.size()) continue;
    bool eq = std::equal(n.begin(), n.end(), name.begin(),
                         [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
    if (eq) {
      *found = true;
      return v;
    }
  }
  *found = false;
  return {};
}

}  // namespace

std::optional<uint32_t> Classifier::match_l7(const FlowQuery& q, uint32_t below, Decision* d) const {
  const L7Facts& f = *q.l7;
  const std::string host = normalize_host(f.host);
  std::vector<uint32_t> cand = c_.l7_any_host;
  if (auto it = c_.l7_by_host.find(host); it != c_.l7_by_host.end())
    cand.insert(cand.end(), it->second.begin(), it->second.end());
  for (uint32_t i : c_.l7_wildcard_host)
    if (host_matches(*c_.l7[i].host, host)) cand.push_back(i);
  std::sort(cand.begin(), cand.end());  // l7 is sorted by priority, so indices are too
  for (uint32_t i : cand) {
    const L7Rule& r = c_.l7[i];
    if (r.priority >= below) break;
    std::string why;
    if (r.method && *r.method != f.method) why = fmt::format("method {} is not {}", f.method, *r.method);
    else if (r.path_prefix && f.path.rfind(*r.path_prefix, 0) != 0)
      why = fmt::format("path {} does not start with {}", f.path, *r.path_prefix);
    for (const auto& [name, value] : r.headers) {
      if (!why.empty()) break;
      bool found = false;
      std::string v = header_value(f, name, &found);
      if (!found) why = fmt::format("no header {}", name);
      else if (v != value) why = fmt::format("header {} is '{}', not '{}'", name, v, value);
    }
    if (why.empty() && !r.boxes.empty()) {
      bool in =
          std::any_of(r.boxes.begin(), r.boxes.end(), [&](const MatchBox& b) { return box_contains(b, q.tuple); });
      if (!in) why = "L3/L4 fields do not match";
    }
    if (d) d->l7_checked.push_back({r.rule_id, why});
    if (why.empty()) return i;
  }
  return std::nullopt;
}

void Classifier::pick(const clv_tuple& t, uint16_t policy, const clv_link_state& st, const LinkQualities* quality,
                      const std::vector<uint64_t>* held_out, uint64_t over_budget, Decision* d) const {
  SlaDecision sd;
  const PolicySla* ps = policy < c_.policy_sla.size() ? &c_.policy_sla[policy] : nullptr;
  if (quality && ps && ps->active()) {
    sd =
        decide_sla(c_.policies[policy], *ps, *quality, held_out && policy < held_out->size() ? (*held_out)[policy] : 0);
    d->sla_applied = true;
    d->none_in_sla = sd.none_in_sla;
    d->sla = sd.members;
  }
  clv_policy p = d->sla_applied ? sd.programmed : c_.policies[policy];
  const bool allow = policy < c_.policy_info.size() && c_.policy_info[policy].metered_allow;
  uint64_t left = 0;  // members taken out for being over budget
  if (over_budget && !allow) {
    std::vector<uint64_t> leave;
    p = budget_policies({p}, {false}, over_budget, &leave)[0];
    left = leave[0];
  }
  const uint64_t usable = clv_usable_links(&p, &st, t.family);
  d->policy = policy;
  d->hash = clv_flow_hash(&t, p.sticky);
  d->member = clv_pick_member(&p, usable, d->hash);
  const bool v6 = t.family == CLV_AF_INET6;
  int chosen_tier = d->member >= 0 ? p.members[d->member].tier : -1;
  for (int i = 0; i < p.n_members; ++i) {
    const clv_member& m = p.members[i];
    const uint64_t bit = 1ull << (m.link & 63);
    MemberNote n{m.link, m.tier, m.weight, "up", i == d->member, ""};
    if (!(st.up & bit)) n.state = "down";
    else if (!((v6 ? st.v6 : st.v4) & bit)) n.state = v6 ? "no-ipv6" : "no-ipv4";
    else if (st.degraded & bit) n.state = "degraded";
    const bool out = d->sla_applied && !d->sla[static_cast<size_t>(i)].in_sla;
    if (n.chosen && out)
      n.note = fmt::format("chosen, out of SLA (fallback {}): hash {:#010x} among tier {}", to_string(ps->fallback),
                           d->hash, m.tier);
    else if (n.chosen) n.note = fmt::format("chosen: hash {:#010x} among tier {}", d->hash, m.tier);
    else if (n.state == "down") n.note = "skipped: link is down";
    else if (n.state == "no-ipv4" || n.state == "no-ipv6") n.note = "skipped: no next hop for this family";
    else if (!(usable & bit)) n.note = "skipped: degraded while a healthy link exists";
    else if (left & bit) n.note = "skipped: over budget (metered: avoid)";
    else if (out && m.weight == 0) n.note = "skipped: out of SLA (fallback last-resort)";
    else if (out) n.note = "standby: out of SLA";
    else if (m.weight == 0) n.note = "skipped: weight 0";
    else if (chosen_tier >= 0 && m.tier > chosen_tier) n.note = fmt::format("standby: tier {} is in use", chosen_tier);
    else n.note = "not picked by the flow hash";
    d->members.push_back(n);
  }
  if (d->member >= 0) {
    d->link = p.members[d->member].link;
    d->verdict = Verdict::kSteer;
  } else {
    d->last_resort = true;
    d->verdict = p.last_resort == CLV_LAST_DROP ? Verdict::kDrop : Verdict::kBypass;
  }
}

Decision Classifier::decide(const FlowQuery& q, const clv_link_state& state) const {
  return decide(q, state, nullptr, nullptr, 0);
}

Decision Classifier::decide(const FlowQuery& q, const clv_link_state& state, const LinkQualities& quality,
                            const std::vector<uint64_t>& held_out, uint64_t over_budget) const {
  return decide(q, state, &quality, &held_out, over_budget);
}

Decision Classifier::decide(const FlowQuery& query, const clv_link_state& state, const LinkQualities* quality,
                            const std::vector<uint64_t>* held_out, uint64_t over_budget) const {
  FlowQuery q = query;
  q.tuple.iif_id = q.iif.empty() ? 0 : c_.iif_id(q.iif);
  Decision d;
  d.shapes_total = static_cast<int>(c_.shapes.size());
  d.probes.reserve(c_.shapes.size());
  for (const auto& sh : c_.shapes) d.shapes_other_family += sh.family != q.tuple.family;
  auto best = lookup(q.tuple, &d.probes);
  uint8_t action = c_.meta.default_action;
  uint16_t policy = c_.meta.default_policy;
  d.rule_id = c_.meta.default_rule_id;
  if (best) action = best->action, policy = best->policy, d.rule_id = best->rule_id;
  if (q.l7) {
    if (auto i = match_l7(q, best ? best->priority : CLV_PRIO_NONE, &d)) {
      const L7Rule& r = c_.l7[*i];
      action = r.action, policy = r.policy, d.rule_id = r.rule_id, d.by_l7 = true;
    }
  }
  switch (action) {
    case CLV_ACT_STEER: pick(q.tuple, policy, state, quality, held_out, over_budget, &d); break;
    case CLV_ACT_BYPASS: d.verdict = Verdict::kBypass; break;
    case CLV_ACT_DROP: d.verdict = Verdict::kDrop; break;
    default: d.verdict = Verdict::kNotSteered; break;
  }
  return d;
}

}  // namespace clovis::core
