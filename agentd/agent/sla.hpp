// The policies' SLAs as the agent programs them: the health checker's
// smoothed link qualities (Agent::set_quality) and the policies the kernel
// was last given. A policy with an SLA class or strategy: best-quality gets
// its members ordered by core::sla_policies() over these qualities; then
// links over their budget leave the policies that do not allow metered
// links (core::budget_policies(), a separate step after the SLAs). Under
// the agent's lock.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/compiled.hpp"
#include "core/sla.hpp"
#include "core/sla_moves.hpp"

namespace clovis::agent {

// One decision of moves() as logged: the link, whether the policy's live
// flows start (true) or stop leaving it, and the line.
struct MoveNote {
  int slot = -1;
  bool leave = true;
  std::string line;
};

class SlaSteering {
 public:
  // `c` as the kernel is to hold it: `c` itself, or `*tmp`, a copy with the
  // SLA-applied policies.
  const core::CompiledRules& with_sla(const core::CompiledRules& c, std::optional<core::CompiledRules>* tmp) const;
  // The links over budget (a mask of slots of the rule set to be given).
  // True when `running` is given and its kernel policies must be written
  // again for it.
  bool set_over_budget(uint64_t mask, const core::CompiledRules* running);
  uint64_t over_budget() const { return over_; }
  // Per policy of `c`, the slots it leaves because they are over budget:
  // what a per-policy leave mask (moving live flows off a link) ORs in.
  std::vector<uint64_t> budget_leave(const core::CompiledRules& c) const;
  // Measurements are of the link that held a slot: the slots not in `kept`
  // start unmeasured.
  void keep(uint64_t kept);
  void set_quality(const core::LinkQualities& q) { quality_ = q; }
  // True when the kernel must be written again: the running rule set has an
  // SLA and its policies over the qualities (and the hysteresis of moves())
  // differ from the kernel's.
  bool stale(const core::CompiledRules* running) const;
  // The kernel now holds `kc`'s policies. `reordered`: log the policies whose
  // members moved (an SLA update, not an apply).
  void programmed(const core::CompiledRules& kc, bool reordered = false);
  const core::LinkQualities& quality() const { return quality_; }
  // Which links each policy's live flows must leave (core/sla_moves.hpp)
  // for `c` over the last qualities, the links `up` and the time, and the
  // links over budget (CLV_MOVE_BUDGET, from budget_leave); its events are
  // logged here, with their reasons.
  // `said`, when given, gets each event.
  core::MoveDecision moves(const core::CompiledRules& c, uint64_t up, uint64_t now_ms,
                           std::vector<MoveNote>* said = nullptr);
  const core::SlaMoves& move_state() const { return moves_; }

 private:
  // sla_policies then budget_policies: what the kernel is to hold for `c`.
  std::vector<clv_policy> policies_for(const core::CompiledRules& c, std::vector<uint64_t>* leave = nullptr) const;

  core::LinkQualities quality_{};
  uint64_t over_ = 0;                   // links over budget, by slot
  std::vector<clv_policy> programmed_;  // the policies the kernel was last given
  core::SlaMoves moves_;
  std::vector<uint64_t> budget_written_;  // the budget masks of the last moves()
  uint32_t budget_generation_ = 0;        // of this rule set
};

}  // namespace clovis::agent
