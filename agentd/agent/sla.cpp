#include "agent/sla.hpp"

#include <cstring>

#include <fmt/format.h>

#include "log/log.hpp"

namespace clovis::agent {

namespace {

std::vector<bool> metered_allow(const core::CompiledRules& c) {
  std::vector<bool> allow;
  for (const auto& pi : c.policy_info) allow.push_back(pi.metered_allow);
  return allow;
}

}  // namespace

std::vector<clv_policy> SlaSteering::policies_for(const core::CompiledRules& c, std::vector<uint64_t>* leave) const {
  const std::vector<uint64_t> held = moves_.held_out(c.generation);
  std::vector<clv_policy> pols = core::sla_policies(c, quality_, &held);
  if (!over_ && !leave) return pols;
  return core::budget_policies(pols, metered_allow(c), over_, leave);
}

std::vector<uint64_t> SlaSteering::budget_leave(const core::CompiledRules& c) const {
  std::vector<uint64_t> leave;
  (void)policies_for(c, &leave);
  return leave;
}

bool SlaSteering::set_over_budget(uint64_t mask, const core::CompiledRules* running) {
  over_ = mask;
  return running && !core::same_policies(policies_for(*running), programmed_);
}

const core::CompiledRules& SlaSteering::with_sla(const core::CompiledRules& c,
                                                 std::optional<core::CompiledRules>* tmp) const {
  std::vector<clv_policy> pols = policies_for(c);
  if (core::same_policies(pols, c.policies)) return c;
  // A copy of the whole rule set: Dataplane::apply takes one. Made only
  // while some SLA is not met (or a best-quality order differs).
  tmp->emplace(c);
  (*tmp)->policies = std::move(pols);
  return **tmp;
}

void SlaSteering::keep(uint64_t kept) {
  for (int s = 0; s < CLV_MAX_LINKS; ++s)
    if (!(kept >> s & 1)) quality_[static_cast<size_t>(s)] = {};
}

bool SlaSteering::stale(const core::CompiledRules* running) const {
  if (!running || (!core::has_sla(*running) && !over_)) return false;
  return !core::same_policies(policies_for(*running), programmed_);
}

core::MoveDecision SlaSteering::moves(const core::CompiledRules& c, uint64_t up, uint64_t now_ms,
                                      std::vector<MoveNote>* said) {
  core::MoveDecision d = moves_.evaluate(c, quality_, up, now_ms);
  static constexpr const char* kReason[] = {"out of SLA", "failback", "over budget", "?"};
  for (const auto& e : d.events) {
    const std::string& link = c.link_info[static_cast<size_t>(e.slot)].name;
    std::string line =
        e.leave ? fmt::format("policy {}: live flows leave {} ({}): {}", e.policy, link, kReason[e.reason & 3], e.why)
                : fmt::format("policy {}: live flows no longer leave {}: {}", e.policy, link, e.why);
    log_info(line);
    if (said) said->push_back({e.slot, e.leave, std::move(line)});
  }
  // Over budget: the third source of the kernel's leave masks. Live flows of
  // the policies without metered: allow leave the link as for an SLA (the
  // translated ones stay: moving them would end their connections; new
  // flows avoid the link either way).
  const std::vector<uint64_t> budget = budget_leave(c);
  if (budget != budget_written_ || c.generation != budget_generation_) d.changed = true;
  for (size_t i = 0; i < d.leave.size() && i < budget.size(); ++i) d.leave[i].links[CLV_MOVE_BUDGET] = budget[i];
  budget_written_ = budget;
  budget_generation_ = c.generation;
  return d;
}

void SlaSteering::programmed(const core::CompiledRules& kc, bool reordered) {
  const std::vector<clv_policy> before = std::move(programmed_);
  programmed_ = kc.policies;
  if (!reordered) return;
  for (size_t i = 0; i < programmed_.size() && i < before.size(); ++i)
    if (std::memcmp(&programmed_[i], &before[i], sizeof before[i]) != 0)
      log_info(fmt::format("policy {}: members reordered for its SLA or links' budgets", kc.policy_info[i].name));
}

}  // namespace clovis::agent
