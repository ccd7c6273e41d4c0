#include "agent/sla.hpp"

#include <cstring>

#include <fmt/format.h>

#include "log/log.hpp"

namespace clovis::agent {

const core::CompiledRules& SlaSteering::with_sla(const core::CompiledRules& c,
                                                 std::optional<core::CompiledRules>* tmp) const {
  const std::vector<uint64_t> held = moves_.held_out(c.generation);
  std::vector<clv_policy> pols = core::sla_policies(c, quality_, &held);
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
  if (!running || !core::has_sla(*running)) return false;
  const std::vector<uint64_t> held = moves_.held_out(running->generation);
  return !core::same_policies(core::sla_policies(*running, quality_, &held), programmed_);
}

core::MoveDecision SlaSteering::moves(const core::CompiledRules& c, uint64_t up, uint64_t now_ms) {
  core::MoveDecision d = moves_.evaluate(c, quality_, up, now_ms);
  static constexpr const char* kReason[] = {"out of SLA", "failback", "over budget", "?"};
  for (const auto& e : d.events) {
    const std::string& link = c.link_info[static_cast<size_t>(e.slot)].name;
    if (e.leave)
      log_info(fmt::format("policy {}: live flows leave {} ({}): {}", e.policy, link, kReason[e.reason & 3], e.why));
    else
      log_info(fmt::format("policy {}: live flows no longer leave {}: {}", e.policy, link, e.why));
  }
  return d;
}

void SlaSteering::programmed(const core::CompiledRules& kc, bool reordered) {
  const std::vector<clv_policy> before = std::move(programmed_);
  programmed_ = kc.policies;
  if (!reordered) return;
  for (size_t i = 0; i < programmed_.size() && i < before.size(); ++i)
    if (std::memcmp(&programmed_[i], &before[i], sizeof before[i]) != 0)
      log_info(
          fmt::format("policy {}: members reordered for its SLA (link qualities changed)", kc.policy_info[i].name));
}

}  // namespace clovis::agent
