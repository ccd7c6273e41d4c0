// The health checker's say as the agent keeps it: the kernel's link masks
// from the verdicts it was last given (Agent::set_health), and the verdicts
// with the newest measurements (Agent::set_verdicts) for Agent::links().
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "link/link_state.hpp"
#include "ports/dataplane.hpp"

namespace clovis::agent {

class HealthVerdicts {
 public:
  // New verdicts: their states are the masks from now on. Under the
  // agent's lock (the masks are read under it).
  void judge(std::vector<LinkVerdict> v) {
    masks_ = masks_of(v);
    measure(std::move(v));
  }
  // Newer measurements, the states as judged: for views only. Its own
  // lock, so that the health thread never waits for an apply.
  void measure(std::vector<LinkVerdict> v) {
    std::lock_guard lock(mu_);
    verdicts_ = std::move(v);
  }
  // The masks on `st` for the slots in `trusted`: a judged link is up only
  // when not down, degraded when degraded; links the checker has no verdict
  // on yet keep what resolution said.
  void apply(clv_link_state* st, uint64_t trusted) const {
    const uint64_t judged = masks_.judged & trusted;
    st->up &= masks_.up | ~judged;
    st->degraded = masks_.degraded & judged;
  }
  // The last verdict on the link in `slot` (nullopt: none).
  std::optional<LinkVerdict> verdict(int slot) const {
    std::lock_guard lock(mu_);
    std::optional<LinkVerdict> out;
    for (const auto& v : verdicts_)
      if (v.slot == slot) out = v;
    return out;
  }

 private:
  LinkMasks masks_;
  mutable std::mutex mu_;
  std::vector<LinkVerdict> verdicts_;
};

}  // namespace clovis::agent
