#include "agent/confirm.hpp"

#include <fmt/format.h>

namespace clovis::agent {

Confirmations::Confirmations(std::string state_dir)
    : state_dir_(std::move(state_dir)), pending_(load_pending_confirm(state_dir_)) {}

core::Result<PendingConfirm> Confirmations::arm(uint32_t timeout_s, const PendingConfirm& running,
                                                int64_t now_unix_ms) {
  PendingConfirm next = pending_ ? *pending_ : running;
  next.deadline_unix_ms = now_unix_ms + int64_t{timeout_s} * 1000;
  next.generation = running.fallback_generation + 1;
  if (auto st = save_pending_confirm(state_dir_, next); !st) return core::error_of(st);
  return next;
}

void Confirmations::disarm() {
  (void)save_pending_confirm(state_dir_, pending_);
}

void Confirmations::applied(std::optional<PendingConfirm> next, uint32_t generation, std::vector<std::string>* notes) {
  if (next) {
    next->generation = generation;
    if (pending_)
      notes->push_back(
          fmt::format("replaces generation {}, which was waiting for confirmation; "
                      "unconfirmed, generation {}'s mapping comes back",
                      pending_->generation, next->fallback_generation));
  } else if (pending_) {
    notes->push_back(
        fmt::format("generation {} was waiting for confirmation; this apply replaces it "
                    "and stays without one",
                    pending_->generation));
  }
  set(std::move(next), notes);
}

bool Confirmations::confirm() {
  if (!pending_) return false;
  set(std::nullopt, nullptr);
  return true;
}

std::optional<PendingConfirm> Confirmations::due(int64_t now_unix_ms) const {
  if (!pending_ || pending_->auto_rollback_ms || now_unix_ms < pending_->deadline_unix_ms) return std::nullopt;
  return pending_;
}

void Confirmations::set(std::optional<PendingConfirm> p, std::vector<std::string>* notes) {
  pending_ = std::move(p);
  if (auto st = save_pending_confirm(state_dir_, pending_); !st && notes)
    notes->push_back("the confirmation deadline is not persisted (a restart forgets it): " + st.error().what());
}

}  // namespace clovis::agent
