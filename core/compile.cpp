// Mapping -> CompiledRules. Passes: link slots, policies, rule expansion into
// match boxes (the tuple-space tables), shape ordering, L7 table, shadow check.
#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "compiled.hpp"
#include "match_box.hpp"
#include "rule_table.hpp"

namespace clovis::core {

namespace {

class Compiler {
 public:
  Compiler(const Mapping& m, const CompileOptions& o) : m_(m), o_(o) {}
  CompileOutput run();

 private:
  void assign_links();
  void build_policies();
  uint16_t policy_for(const Target& t);
  bool expansion_fits();
  void rules();
  void order_shapes();
  void shadow_check();

  const Mapping& m_;
  const CompileOptions& o_;
  CompileOutput out_;
  CompiledRules& c_ = out_.rules;
  Diagnostics& d_ = out_.diagnostics;
  std::map<std::string, uint16_t> implicit_;  // link name -> implicit policy
  // Policy name -> index (the first of duplicates, as policy_index()), so that
  // 200k rules naming 4k policies do not scan them each.
  std::unordered_map<std::string_view, uint16_t> policy_ids_;
  // Shapes as found, in order of first use; sorted later by min priority.
  std::map<ShapeSig, uint8_t> shape_ids_;
  std::vector<clv_shape> shapes_;
  RuleTable table_;
  // Rule id -> index in m_.rules. Boxes are not kept per rule: the shadow
  // check expands each rule again, so identical rules cost table entries once
  // and their boxes never all at the same time.
  std::vector<size_t> order_;
  // Per box of each kernel rule: its shape + 1 when the rule's own entry went
  // into the table for it, else 0. The shadow check then knows that probe's
  // answer (the rule itself) without making it. Rule id i's boxes are
  // own_shape_[own_first_[i] .. own_first_[i + 1]).
  std::vector<uint8_t> own_shape_;
  std::vector<uint32_t> own_first_;
};

CompileOutput Compiler::run() {
  c_.generation = o_.generation;
  assign_links();
  build_policies();
  if (!expansion_fits()) {
    d_.sort();
    return std::move(out_);
  }
  rules();
  order_shapes();
  if (!d_.has_errors()) shadow_check();
  d_.sort();
  return std::move(out_);
}

void Compiler::assign_links() {
  std::map<std::string, int> prev;
  if (o_.previous)
    for (int s = 0; s < CLV_MAX_LINKS; ++s)
      if (!o_.previous->link_info[s].name.empty()) prev[o_.previous->link_info[s].name] = s;
  std::array<const Link*, CLV_MAX_LINKS> by_slot{};
  std::vector<const Link*> fresh;
  for (const auto& l : m_.links) {
    auto it = prev.find(l.name);
    if (it != prev.end()) by_slot[it->second] = &l;
    else fresh.push_back(&l);
  }
  // A new link takes a slot no link held before when there is one: a slot a
  // removed link leaves stays known to the running rule set until the flip,
  // so handing it over costs the apply an extra step (Dataplane::apply).
  std::array<bool, CLV_MAX_LINKS> held{};
  for (const auto& [name, s] : prev) held[s] = true;
  for (const Link* l : fresh) {
    int slot = -1;
    for (int s = 0; s < CLV_MAX_LINKS && slot < 0; ++s)
      if (!by_slot[s] && !held[s]) slot = s;
    for (int s = 0; s < CLV_MAX_LINKS && slot < 0; ++s)
      if (!by_slot[s]) slot = s;
    if (slot < 0) {
      d_.error(l->loc, "links", fmt::format("no free link slot for '{}' (limit {})", l->name, CLV_MAX_LINKS));
      return;
    }
    by_slot[slot] = l;
  }
  std::map<uint32_t, std::string> marks, tables;
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const Link* l = by_slot[s];
    if (!l) continue;
    clv_link& k = c_.links[s];
    k.mark = l->mark.value_or(kDefaultMarkStep * (s + 1));
    k.table = l->table.value_or(kDefaultTableBase + s);
    bool kept = o_.previous && o_.previous->link_info[s].name == l->name;
    k.epoch = kept ? o_.previous->links[s].epoch : o_.generation;
    k.mode = l->mode == SteerMode::kRoute ? CLV_MODE_ROUTE : CLV_MODE_REDIRECT;
    k.snat = l->snat == SnatMode::kNone      ? CLV_SNAT_NONE
             : l->snat == SnatMode::kAddress ? CLV_SNAT_ADDRESS
                                             : CLV_SNAT_MASQUERADE;
    if (l->gateway4) k.flags |= CLV_LINK_GW4, k.gw4 = l->gateway4->words()[0];
    if (l->gateway6) {
      k.flags |= CLV_LINK_GW6;
      auto w = l->gateway6->words();
      std::memcpy(k.gw6, w.data(), sizeof k.gw6);
    }
    if (l->point_to_point) k.flags |= CLV_LINK_P2P;
    if (l->masquerade) k.flags |= CLV_LINK_MASQ;
    if (l->gateway_mac) k.flags |= CLV_LINK_GWMAC, std::memcpy(k.gw_mac, l->gateway_mac->data(), 6);
    if (l->snat4) k.snat4 = l->snat4->words()[0];
    if (l->snat6) {
      auto w = l->snat6->words();
      std::memcpy(k.snat6, w.data(), sizeof k.snat6);
    }
    c_.link_info[s] = {l->name, l->interface, l->mode, l->labels, l->budget};
    // Defaults are derived from slots, so they can collide with explicit values.
    if (auto [it, ok] = marks.emplace(k.mark, l->name); !ok)
      d_.error(l->loc, "links",
               fmt::format("link '{}' gets mark {:#x}, already used by link '{}'", l->name, k.mark, it->second),
               "set an explicit, distinct mark: on the links");
    if (auto [it, ok] = tables.emplace(k.table, l->name); !ok)
      d_.error(l->loc, "links",
               fmt::format("link '{}' gets routing table {}, already used by link '{}'", l->name, k.table, it->second),
               "set an explicit, distinct table: on the links");
  }
}

void Compiler::build_policies() {
  for (const auto& p : m_.policies) {
    clv_policy k{};
    k.on_down = p.on_link_down == OnLinkDown::kMigrate ? CLV_ONDOWN_MIGRATE
                : p.on_link_down == OnLinkDown::kKeep  ? CLV_ONDOWN_KEEP
                                                       : CLV_ONDOWN_DROP;
    k.last_resort = p.last_resort == LastResort::kDefault ? CLV_LAST_DEFAULT : CLV_LAST_DROP;
    k.sticky = p.sticky == Sticky::kFlow     ? CLV_STICKY_FLOW
               : p.sticky == Sticky::kSource ? CLV_STICKY_SOURCE
                                             : CLV_STICKY_SRC_DST;
    k.flags = p.avoid_degraded ? CLV_POL_AVOID_DEGRADED : 0;
    for (const auto& mem : p.members) {
      int slot = c_.link_slot(mem.link);
      if (slot < 0 || k.n_members >= CLV_POLICY_MAX_MEMBERS) continue;  // validate() reported it
      const Link* l = m_.find_link(mem.link);
      k.members[k.n_members++] = {static_cast<uint8_t>(slot), static_cast<uint8_t>(mem.tier),
                                  static_cast<uint16_t>(mem.weight.value_or(l->weight))};
    }
    policy_ids_.emplace(p.name, static_cast<uint16_t>(c_.policies.size()));
    c_.policies.push_back(k);
    c_.policy_info.push_back({p.name, false, p.metered_allow});
    PolicySla ps;
    if (const SlaClass* sla = p.sla.empty() ? nullptr : m_.find_sla(p.sla)) ps.sla = *sla;
    ps.strategy = p.strategy;
    ps.fallback = p.fallback;
    ps.on_violation = p.on_sla_violation;
    ps.hold_down_ms = p.hold_down_ms;
    ps.on_up = p.on_link_up;
    ps.return_after_ms = p.return_after_ms;
    c_.policy_sla.push_back(std::move(ps));
  }
}

uint16_t Compiler::policy_for(const Target& t) {
  if (t.kind == TargetKind::kPolicy) {
    auto it = policy_ids_.find(t.name);
    return it == policy_ids_.end() ? 0 : it->second;
  }
  if (t.kind != TargetKind::kLink) return 0;
  auto it = implicit_.find(t.name);
  if (it != implicit_.end()) return it->second;
  clv_policy k{};
  int slot = c_.link_slot(t.name);
  if (slot >= 0) k.members[k.n_members++] = {static_cast<uint8_t>(slot), 1, 1};
  k.flags = CLV_POL_AVOID_DEGRADED;
  uint16_t idx = static_cast<uint16_t>(c_.policies.size());
  c_.policies.push_back(k);
  c_.policy_info.push_back({"link:" + t.name, true, true});
  c_.policy_sla.emplace_back();
  implicit_[t.name] = idx;
  return idx;
}

uint8_t action_of(const Target& t) {
  switch (t.kind) {
    case TargetKind::kPolicy:
    case TargetKind::kLink: return CLV_ACT_STEER;
    case TargetKind::kBypass: return CLV_ACT_BYPASS;
    case TargetKind::kDrop: return CLV_ACT_DROP;
  }
  return CLV_ACT_NONE;
}

// Counted in file order, so the error names the rule where the file crosses
// the limit.
bool Compiler::expansion_fits() {
  uint64_t total = 0;
  bool fits = true;
  for (size_t i = 0; i < m_.rules.size(); ++i) {
    const Rule& r = m_.rules[i];
    const uint64_t n = count_boxes(r.match);
    if (n > kMaxEntriesPerRule) {
      d_.error(r.loc, fmt::format("rules[{}]", i),
               fmt::format("rule '{}' expands to {} table entries ({}), over the limit of {} per rule", r.name, n,
                           describe_expansion(r.match), kMaxEntriesPerRule),
               "split the rule, or use wider prefixes and port ranges aligned to powers of two "
               "(1024-2047 is one entry, 1-65534 is 30)");
      fits = false;
      continue;
    }
    const bool was_under = total <= kMaxEntriesPerMapping;
    total += n;
    if (was_under && total > kMaxEntriesPerMapping) {
      d_.error(r.loc, fmt::format("rules[{}]", i),
               fmt::format("rule '{}' expands to {} table entries ({}), which brings the mapping to {}, "
                           "over the limit of {} per mapping",
                           r.name, n, describe_expansion(r.match), total, kMaxEntriesPerMapping),
               "split the rule or use a wider prefix; port ranges aligned to powers of two take "
               "fewer entries (1024-2047 is one, 1-65534 is 30)");
      fits = false;
    }
  }
  return fits;
}

void Compiler::rules() {
  std::vector<size_t>& order = order_;
  order.resize(m_.rules.size());
  std::iota(order.begin(), order.end(), 0);
  auto by_priority = [&](size_t a, size_t b) { return m_.rules[a].priority < m_.rules[b].priority; };
  if (!std::is_sorted(order.begin(), order.end(), by_priority))  // files mostly list rules in order
    std::stable_sort(order.begin(), order.end(), by_priority);
  for (const auto& r : m_.rules)
    if (r.match.interface && c_.iif_id(*r.match.interface) == 0) {
      if (c_.iifs.size() >= CLV_MAX_IIFS) {
        d_.error(r.loc, "rules", fmt::format("more than {} distinct ingress interfaces", CLV_MAX_IIFS));
        return;
      }
      c_.iifs.push_back(*r.match.interface);
    }
  own_first_.assign(order.size() + 1, 0);
  c_.rules.reserve(order.size() + 1);  // exact: growing by doubling held 1.5x at the peak
  table_.reserve(m_.rules.size());     // at least one entry per rule, usually exactly one
  bool shape_limit_reported = false;
  // Consecutive boxes mostly share a shape: remember the last one looked up.
  ShapeSig last_sig{};
  uint8_t last_shape = 0;
  bool have_last = false;
  for (uint32_t id = 0; id < order.size(); ++id) {
    own_first_[id + 1] = own_first_[id] = static_cast<uint32_t>(own_shape_.size());
    const Rule& r = m_.rules[order[id]];
    RuleInfo info{r.name, r.priority, r.loc, r.target.kind, r.target.name, 0, r.match.has_l7(), false};
    const uint8_t action = action_of(r.target);
    const uint16_t policy = policy_for(r.target);
    const uint32_t iif = r.match.interface ? c_.iif_id(*r.match.interface) : 0;
    auto boxes = expand_match(r.match, iif, kMaxEntriesPerRule);
    if (!boxes) throw std::logic_error("count_boxes() and expand_match() disagree on rule " + r.name);
    if (info.l7) {
      L7Rule l7{id, r.priority, r.match.host, r.match.path_prefix, r.match.method, {}, {}, action, policy};
      for (const auto& h : r.match.headers) l7.headers.emplace_back(h.name, h.value);
      bool any = r.match.src.empty() && r.match.dst.empty() && r.match.sport.empty() && r.match.dport.empty() &&
                 r.match.proto.empty() && !r.match.dscp && !r.match.mark && !r.match.interface;
      if (!any) l7.boxes = std::move(*boxes);
      c_.l7.push_back(std::move(l7));
    } else {
      own_shape_.resize(own_shape_.size() + boxes->size(), 0);
      own_first_[id + 1] = static_cast<uint32_t>(own_shape_.size());
      for (size_t bi = 0; bi < boxes->size(); ++bi) {
        const MatchBox& b = (*boxes)[bi];
        const ShapeSig sig = shape_sig(b.shape);
        uint8_t shape;
        if (have_last && sig == last_sig) {
          shape = last_shape;
        } else {
          auto it = shape_ids_.find(sig);
          if (it == shape_ids_.end()) {
            if (shapes_.size() >= CLV_MAX_SHAPES) {
              if (!shape_limit_reported)
                d_.error(r.loc, "rules",
                         fmt::format("rule '{}' needs match shape #{} ({}), over the limit of {}", r.name,
                                     shapes_.size() + 1, describe_shape(b.shape), CLV_MAX_SHAPES),
                         "a shape is a combination of prefix lengths, port masks and matched fields; "
                         "each costs one hash probe per new flow. Use fewer distinct prefix lengths "
                         "or port ranges aligned to powers of two");
              shape_limit_reported = true;
              continue;
            }
            it = shape_ids_.emplace(sig, static_cast<uint8_t>(shapes_.size())).first;
            shapes_.push_back(b.shape);
            shapes_.back().min_priority = r.priority;
          }
          shape = it->second;
          last_sig = sig, last_shape = shape, have_last = true;
        }
        clv_rule_key k = b.key;
        k.shape = shape;
        // Rules come in priority order: an existing entry always wins.
        if (table_.insert(k, clv_rule_val{r.priority, id, policy, action, 0})) {
          ++info.entries;
          own_shape_[own_first_[id] + bi] = static_cast<uint8_t>(shape + 1);
        }
      }
    }
    c_.rules.push_back(info);
  }
  // The default is a pseudo-rule so that flows it catches have a rule id too.
  RuleInfo def{"default", CLV_PRIO_NONE, m_.default_loc, TargetKind::kBypass, "", 0, false, true};
  c_.meta.default_action = CLV_ACT_NONE;
  if (m_.default_target) {
    def.target = m_.default_target->kind;
    def.target_name = m_.default_target->name;
    c_.meta.default_action = action_of(*m_.default_target);
    c_.meta.default_policy = policy_for(*m_.default_target);
  }
  c_.on_drop = m_.proxy.on_drop;
  c_.meta.default_rule_id = static_cast<uint32_t>(c_.rules.size());
  c_.meta.unparsed = m_.unparsed == Unparsed::kPass ? CLV_UNPARSED_PASS : CLV_UNPARSED_DROP;
  c_.rules.push_back(def);
  c_.meta.generation = o_.generation;
  c_.meta.n_rules = static_cast<uint32_t>(c_.rules.size());
  if (c_.policies.size() > CLV_MAX_POLICIES)
    d_.error({}, "policies",
             fmt::format("{} policies (including one per link named directly by a rule), "
                         "over the limit of {}",
                         c_.policies.size(), CLV_MAX_POLICIES));
  for (uint32_t i = 0; i < c_.l7.size(); ++i) {
    const auto& h = c_.l7[i].host;
    if (!h) c_.l7_any_host.push_back(i);
    else if (h->rfind("*.", 0) == 0) c_.l7_wildcard_host.push_back(i);
    else c_.l7_by_host[*h].push_back(i);
  }
}

void Compiler::order_shapes() {
  std::vector<uint8_t> order(shapes_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint8_t a, uint8_t b) { return shapes_[a].min_priority < shapes_[b].min_priority; });
  std::vector<uint8_t> rank(shapes_.size());
  bool identity = true;
  for (size_t i = 0; i < order.size(); ++i) {
    rank[order[i]] = static_cast<uint8_t>(i);
    identity = identity && order[i] == i;
    c_.shapes.push_back(shapes_[order[i]]);
  }
  c_.entries.reserve(table_.size());
  // Rules are expanded in priority order, so shapes are found in the order of
  // their best priority and the ranking is the identity: the table stands.
  if (identity) {
    for (size_t i = 0; i < table_.size(); ++i) c_.entries.emplace_back(table_.key(i), table_.value(i));
  } else {
    RuleTable ranked;
    ranked.reserve(table_.size());
    for (size_t i = 0; i < table_.size(); ++i) {
      clv_rule_key k = table_.key(i);
      k.shape = rank[k.shape];
      c_.entries.emplace_back(k, table_.value(i));
      ranked.insert(k, table_.value(i));
    }
    table_ = std::move(ranked);
  }
  for (auto& own : own_shape_)
    if (own) own = static_cast<uint8_t>(rank[own - 1] + 1);
  c_.meta.n_shapes = static_cast<uint32_t>(c_.shapes.size());
}

// A rule is shadowed when every one of its boxes is covered by a single
// higher-priority kernel rule: that rule's shape is coarser in every field
// and its entry equals the box masked with that shape. Found with the same
// tables the kernel probes; covers by several rules together are not seen.
void Compiler::shadow_check() {
  for (uint32_t id = 0; id + 1 < c_.rules.size(); ++id) {
    const RuleInfo& info = c_.rules[id];
    const Match& match = m_.rules[order_[id]].match;
    const uint32_t iif = match.interface ? c_.iif_id(*match.interface) : 0;
    const std::vector<MatchBox> boxes = expand_match(match, iif, kMaxEntriesPerRule).value_or(std::vector<MatchBox>{});
    std::vector<uint32_t> by;
    bool all = !boxes.empty();
    for (size_t bi = 0; bi < boxes.size(); ++bi) {
      const MatchBox& b = boxes[bi];
      // The probe of the box's own shape finds the rule's own entry, which
      // never shadows it: skip it when the rule put that entry there.
      const size_t own = own_first_[id] + bi < own_first_[id + 1] ? own_shape_[own_first_[id] + bi] : 0;
      uint32_t best = CLV_PRIO_NONE, best_id = 0;
      for (size_t s = 0; s < c_.shapes.size(); ++s) {
        const clv_shape& sh = c_.shapes[s];
        if (sh.min_priority >= info.priority) break;
        if (s + 1 == own || !shape_covers(sh, b.shape)) continue;
        clv_rule_key k;
        clv_tuple t = box_tuple(b);
        clv_mask_tuple(&sh, &t, 0, static_cast<uint8_t>(s), &k);
        const clv_rule_val* v = table_.find(k);
        if (v && v->priority < info.priority && v->priority < best) best = v->priority, best_id = v->rule_id;
      }
      if (best == CLV_PRIO_NONE) {
        all = false;
        break;
      }
      if (std::find(by.begin(), by.end(), best_id) == by.end()) by.push_back(best_id);
    }
    if (!all) continue;
    if (d_.full()) {  // counted, not listed: not worth formatting
      d_.warning(info.loc, {}, {});
      continue;
    }
    std::string names;
    for (size_t i = 0; i < by.size() && i < 4; ++i)
      names += fmt::format("{}'{}' (priority {}, line {})", i ? ", " : "", c_.rules[by[i]].name,
                           c_.rules[by[i]].priority, c_.rules[by[i]].loc.line);
    d_.warning(info.loc, fmt::format("rules.{}", info.name),
               fmt::format("rule '{}' never matches: everything it matches is matched first by {}", info.name, names),
               "give it a lower priority number than the rule(s) above, or narrow those");
  }
}

}  // namespace

CompileOutput compile(const Mapping& m, const CompileOptions& opts) {
  return Compiler(m, opts).run();
}

}  // namespace clovis::core
