// Live flows and link quality: which links each policy's pinned flows must
// leave (clv_leave), with anti-flap. Pure: time is passed in (milliseconds
// of a monotonic clock), the agent programs what this decides
// (Dataplane::set_leave) and logs its events.
//
// Two sources, one mask per reason (the kernel ORs them, so a third source,
// e.g. a metered link over its budget, is one more CLV_MOVE_* mask):
//  - SLA (on-sla-violation: migrate | force): a member out of the policy's
//    SLA class is left, at most once per hold-down per (policy, link): a link
//    that leaves the SLA again within hold-down of the last time keeps its
//    flows until the hold-down has passed (and is still out by then).
//    Hysteresis: a member out of SLA counts as back in only when it meets
//    every limit of the class with kSlaMargin to spare (latency <= 90% of the
//    limit, ...); a link near a threshold does not flip in and out.
//  - Failback (on-link-up: return | force): once the best-tier member that
//    is up (and in SLA) has been so for return-after, the members of worse
//    tiers are left for kReturnWindowMs: the flows there that send a packet
//    meanwhile go back to it. A window, not a standing mark: a standing one
//    would cost every flow of other policies on the backup link a look-up
//    per packet for as long as the primary is fine, i.e. always.
// A member is left only while another member is up and in SLA: with nowhere
// better to go, flows stay (and the fallback orders new ones).
// `force` also moves translated flows (clovis's snat, a link with
// masquerade: true): they restart, their connections end.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "abi.hpp"
#include "compiled.hpp"
#include "sla.hpp"

namespace clovis::core {

// How long a return (on-link-up) marks the worse members to be left.
inline constexpr uint64_t kReturnWindowMs = 30000;

struct MoveEvent {
  std::string policy;
  int slot = -1;
  int reason = CLV_MOVE_SLA;  // CLV_MOVE_*
  bool leave = true;          // the policy's flows start leaving the link; false: they no longer do
  std::string why;            // "latency 182 ms > voice 150 ms", "wan1 up and within voice for 60 s"
};

struct MoveDecision {
  std::vector<clv_leave> leave;  // per policy of the rule set, for Dataplane::set_leave
  std::vector<MoveEvent> events;
  bool changed = false;  // leave differs from the previous decision
};

class SlaMoves {
 public:
  // Decides at `now_ms` for rule set `c`, link qualities `q` and the links
  // that are up (clv_link_state.up). A rule set of another generation than
  // the last one starts afresh (no hold-down carried over).
  MoveDecision evaluate(const CompiledRules& c, const LinkQualities& q, uint64_t up, uint64_t now_ms);

  // Each policy's SLA standing with hysteresis: the members out of SLA.
  uint64_t out_of_sla(size_t policy) const { return policy < pol_.size() ? pol_[policy].out : 0; }
  // All of them, for sla_policies(), when they are of rule set `generation`.
  std::vector<uint64_t> held_out(uint32_t generation) const;
  // Times a policy started leaving a link, by CLV_MOVE_* (since the rule set
  // was applied): per-policy counts of SLA moves and returns.
  std::array<uint64_t, CLV_MOVE_REASONS> decisions(size_t policy) const {
    return policy < pol_.size() ? pol_[policy].decisions : std::array<uint64_t, CLV_MOVE_REASONS>{};
  }

 private:
  struct PolicyState {
    uint64_t out = 0;                                                     // members out of SLA (hysteretic)
    std::array<std::optional<uint64_t>, CLV_MAX_LINKS> last_sla_leave{};  // hold-down start
    std::array<std::optional<uint64_t>, CLV_MAX_LINKS> healthy_since{};   // up and in SLA since
    std::array<std::string, CLV_MAX_LINKS> why{};                         // why a member is out of SLA
    uint32_t returned_tier = 0x100;  // the best tier returnable at the last evaluation
    int returned_slot = -1;          // and its member
    uint64_t return_until = 0;       // end of the return window
    clv_leave leave{};
    std::array<uint64_t, CLV_MOVE_REASONS> decisions{};
  };
  void sla_leave(const CompiledRules& c, size_t i, const LinkQualities& q, uint64_t up, uint64_t now, MoveDecision* d);
  void return_leave(const CompiledRules& c, size_t i, uint64_t now, MoveDecision* d);

  uint32_t generation_ = 0;
  std::vector<PolicyState> pol_;
};

}  // namespace clovis::core
