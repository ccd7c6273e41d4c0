// Commit-confirm (as VyOS has it): an apply made with a confirmation timeout
// reverts to what ran before it unless confirmed by its deadline. Keeps the
// pending confirmation and confirm.json in step; the Agent runs the applies
// (the timed one and the revert) under its lock, which this object has none
// of its own besides.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent_state.hpp"
#include "core/result.hpp"

namespace clovis::agent {

class Confirmations {
 public:
  // Reads confirm.json: a confirmation an earlier run left pending keeps
  // its deadline.
  explicit Confirmations(std::string state_dir);

  const std::optional<PendingConfirm>& pending() const { return pending_; }
  int64_t deadline_unix_ms() const { return pending_ ? pending_->deadline_unix_ms : 0; }

  // Before an apply with a timeout of `timeout_s` runs: the confirmation it
  // will wait for, on disk already (a crash from here on still reverts at
  // the deadline). A confirmation already waiting keeps its fallback: a
  // second try replaces the first, but what comes back is what ran before
  // both. An error: nothing was saved, the apply must not run.
  core::Result<PendingConfirm> arm(uint32_t timeout_s, const PendingConfirm& running, int64_t now_unix_ms);
  // The armed apply failed: confirm.json as it was.
  void disarm();
  // The apply ran as `generation`: `next` (from arm(), or nullopt for an
  // apply without a timeout) replaces what was pending, with a note saying
  // what became of a confirmation that was waiting.
  void applied(std::optional<PendingConfirm> next, uint32_t generation, std::vector<std::string>* notes);
  // Confirms what is pending; false when nothing is.
  bool confirm();
  // The confirmation overdue at `now_unix_ms` (its fallback must run again);
  // never an auto-rollback guard, which has no deadline (Agent::check_confirm).
  std::optional<PendingConfirm> due(int64_t now_unix_ms) const;
  // Replaces the pending confirmation; a note when it cannot be persisted.
  void set(std::optional<PendingConfirm> p, std::vector<std::string>* notes);

 private:
  std::string state_dir_;
  std::optional<PendingConfirm> pending_;
};

}  // namespace clovis::agent
