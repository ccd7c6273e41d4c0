#include "sla_moves.hpp"

#include <bit>
#include <cstring>

#include <fmt/format.h>

namespace clovis::core {

namespace {

uint64_t bit(int slot) {
  return uint64_t{1} << (slot & (CLV_MAX_LINKS - 1));
}

int member_count(const clv_policy& p) {
  return std::min<int>(p.n_members, CLV_POLICY_MAX_MEMBERS);
}

std::string seconds(uint64_t ms) {
  return ms % 1000 ? fmt::format("{} ms", ms) : fmt::format("{} s", ms / 1000);
}

}  // namespace

std::vector<uint64_t> SlaMoves::held_out(uint32_t generation) const {
  std::vector<uint64_t> out;
  if (generation != generation_) return out;
  for (const PolicyState& st : pol_) out.push_back(st.out);
  return out;
}

MoveDecision SlaMoves::evaluate(const CompiledRules& c, const LinkQualities& q, uint64_t up, uint64_t now_ms) {
  MoveDecision d;
  std::vector<clv_leave> before;
  for (const PolicyState& st : pol_) before.push_back(st.leave);
  if (c.generation != generation_ || pol_.size() != c.policies.size()) {
    pol_.assign(c.policies.size(), PolicyState{});
    generation_ = c.generation;
  }
  for (size_t i = 0; i < c.policies.size(); ++i) {
    pol_[i].leave.generation = c.generation;
    sla_leave(c, i, q, up, now_ms, &d);
    return_leave(c, i, now_ms, &d);
    const PolicySla ps = i < c.policy_sla.size() ? c.policy_sla[i] : PolicySla{};
    clv_leave& l = pol_[i].leave;
    l.force = (ps.on_violation == OnSlaViolation::kForce ? l.links[CLV_MOVE_SLA] : 0) |
              (ps.on_up == OnLinkUp::kForce ? l.links[CLV_MOVE_RETURN] : 0);
    d.leave.push_back(l);
  }
  d.changed = before.size() != d.leave.size() ||
              (!before.empty() && std::memcmp(before.data(), d.leave.data(), before.size() * sizeof before[0]) != 0);
  return d;
}

void SlaMoves::sla_leave(const CompiledRules& c, size_t i, const LinkQualities& q, uint64_t up, uint64_t now,
                         MoveDecision* d) {
  const clv_policy& p = c.policies[i];
  const PolicySla ps = i < c.policy_sla.size() ? c.policy_sla[i] : PolicySla{};
  PolicyState& st = pol_[i];
  const int n = member_count(p);
  // The standing, with hysteresis: out past a limit, back in with margin.
  for (int m = 0; m < n; ++m) {
    const int s = p.members[m].link & (CLV_MAX_LINKS - 1);
    const LinkQuality& lq = q[static_cast<size_t>(s)];
    std::string why;
    if (ps.sla && lq.measured) {
      why = sla_violation(*ps.sla, lq);
      if (why.empty() && (st.out & bit(s))) why = sla_reentry_block(*ps.sla, lq);
    }
    st.why[static_cast<size_t>(s)] = why;
    st.out = why.empty() ? st.out & ~bit(s) : st.out | bit(s);
    const bool healthy = (up & bit(s)) && why.empty();
    auto& since = st.healthy_since[static_cast<size_t>(s)];
    if (!healthy) since.reset();
    else if (!since) since = now;
  }
  uint64_t good = 0;  // members to go to: up, in SLA, of weight > 0
  for (int m = 0; m < n; ++m)
    if (p.members[m].weight && (up & bit(p.members[m].link)) && !(st.out & bit(p.members[m].link)))
      good |= bit(p.members[m].link);
  __u64& leave = st.leave.links[CLV_MOVE_SLA];
  const uint64_t was = leave;
  if (!ps.sla || ps.on_violation == OnSlaViolation::kKeep) leave = 0;
  for (int m = 0; m < n && ps.sla && ps.on_violation != OnSlaViolation::kKeep; ++m) {
    const int s = p.members[m].link & (CLV_MAX_LINKS - 1);
    const bool out = st.out & bit(s), elsewhere = good & ~bit(s);
    auto& last = st.last_sla_leave[static_cast<size_t>(s)];
    if (!out || !elsewhere) {
      leave &= ~bit(s);
    } else if (!(leave & bit(s)) && (!last || now - *last >= ps.hold_down_ms)) {
      leave |= bit(s);
      last = now;
    }
  }
  for (uint64_t changed = was ^ leave; changed; changed &= changed - 1) {
    const int s = std::countr_zero(changed);
    MoveEvent e{c.policy_info[i].name, s, CLV_MOVE_SLA, (leave & bit(s)) != 0, {}};
    if (e.leave) {
      e.why = st.why[static_cast<size_t>(s)];
      ++st.decisions[CLV_MOVE_SLA];
    } else {
      e.why = (st.out & bit(s)) ? "no other member up and within " + ps.sla->name : "back within " + ps.sla->name;
    }
    d->events.push_back(std::move(e));
  }
}

void SlaMoves::return_leave(const CompiledRules& c, size_t i, uint64_t now, MoveDecision* d) {
  const clv_policy& p = c.policies[i];
  const PolicySla ps = i < c.policy_sla.size() ? c.policy_sla[i] : PolicySla{};
  PolicyState& st = pol_[i];
  __u64& leave = st.leave.links[CLV_MOVE_RETURN];
  const uint64_t was = leave;
  const int n = member_count(p);
  // The best tier a flow can return to: a member healthy for return-after.
  uint32_t best = 0x100;
  int best_slot = -1;
  for (int m = 0; m < n; ++m) {
    const auto& since = st.healthy_since[static_cast<size_t>(p.members[m].link & (CLV_MAX_LINKS - 1))];
    if (p.members[m].weight && since && now - *since >= ps.return_after_ms && p.members[m].tier < best)
      best = p.members[m].tier, best_slot = p.members[m].link;
  }
  const bool returns = ps.on_up != OnLinkUp::kStay && ps.strategy == Strategy::kTiers;
  if (returns && best < st.returned_tier) {
    // Better than before: the worse members are left for the window. At
    // the first evaluation of a rule set too: flows an earlier failover
    // left on a backup go back.
    uint64_t worse = 0;
    for (int m = 0; m < n; ++m)
      if (p.members[m].tier > best) worse |= bit(p.members[m].link);
    worse &= ~bit(best_slot);
    leave = worse;
    st.return_until = now + kReturnWindowMs;
  } else if (!returns || now >= st.return_until || best_slot < 0) {
    leave = 0;
  } else {
    // Within the window, only members worse than the best returnable one
    // are left: when the member flows return to is no longer up and in
    // SLA, its window ends (or narrows) in the same decision. A stale mark
    // would have the kernel avoid the very member an SLA move or failover
    // now sends flows to, and the flows would stay where they are.
    uint64_t worse = 0;
    for (int m = 0; m < n; ++m)
      if (p.members[m].tier > best) worse |= bit(p.members[m].link);
    leave &= worse & ~bit(best_slot);
  }
  const int was_slot = st.returned_slot;
  st.returned_tier = best;
  st.returned_slot = best_slot;
  for (uint64_t changed = was ^ leave; changed; changed &= changed - 1) {
    const int s = std::countr_zero(changed);
    MoveEvent e{c.policy_info[i].name, s, CLV_MOVE_RETURN, (leave & bit(s)) != 0, {}};
    if (e.leave) {
      const std::string& to = c.link_info[static_cast<size_t>(best_slot & (CLV_MAX_LINKS - 1))].name;
      e.why = fmt::format("{} up{} for {} (return-after)", to, ps.sla ? " and within " + ps.sla->name : "",
                          seconds(ps.return_after_ms));
      ++st.decisions[CLV_MOVE_RETURN];
    } else if (now >= st.return_until || !returns) {
      e.why = "return window over";
    } else {
      e.why = fmt::format("{} no longer up{}", c.link_info[static_cast<size_t>(was_slot & (CLV_MAX_LINKS - 1))].name,
                          ps.sla ? " and within " + ps.sla->name : "");
    }
    d->events.push_back(std::move(e));
  }
}

}  // namespace clovis::core
