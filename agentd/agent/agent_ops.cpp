// The agent's operations around the apply path (agent.cpp): options, history
// and rollback, commit-confirm, and what it reports about itself.
#include <algorithm>

#include <fmt/format.h>

#include "agent/agent.hpp"
#include "log/log.hpp"

namespace clovis::agent {

namespace {

core::Unexpected<ApplyError> refuse(ApplyFailure kind, const std::string& message, const std::string& hint = {}) {
  core::Diagnostics d;
  d.error({}, "", message, hint);
  return {ApplyError{kind, std::move(d)}};
}

}  // namespace

std::string ApplyError::message() const {
  if (diagnostics.items().empty()) return "failed";
  const auto& d = diagnostics.items()[0];
  return d.hint.empty() ? d.message : d.message + "; " + d.hint;
}

core::Result<ApplyReport, core::Diagnostics> Agent::apply(const std::string& text, const std::string& source) {
  std::lock_guard lock(mu_);
  auto r = apply_locked(text, source, {});
  if (!r) return core::Unexpected<core::Diagnostics>{std::move(r).error().diagnostics};
  return std::move(r->report);
}

ApplyResult Agent::submit(const std::string& text, const std::string& source, const ApplyOptions& opts) {
  std::lock_guard lock(mu_);
  return apply_locked(text, source, opts);
}

// A confirmation timeout keeps the fallback of an apply already waiting: a
// second try replaces the first, but what comes back is what ran before both.
ApplyResult Agent::apply_locked(const std::string& text, const std::string& source, const ApplyOptions& opts,
                                ApplyCause cause) {
  if (opts.dry_run) {
    auto r = commit(text, source, true, opts.diff_detail);
    if (r) r->confirm_deadline_unix_ms = confirms_.deadline_unix_ms();
    return r;
  }
  std::optional<PendingConfirm> next;
  if (opts.confirm_timeout_s) {
    if (!running_)
      return refuse(ApplyFailure::kPrecondition, "no mapping runs yet, so there is nothing to revert to",
                    "apply the first mapping without a confirmation timeout");
    auto armed =
        confirms_.arm(opts.confirm_timeout_s,
                      PendingConfirm{0, 0, running_->generation, running_source_, running_text_}, now_unix_ms());
    if (!armed)
      return notify(cause, source,
                    refuse(ApplyFailure::kHost, "cannot save the confirmation deadline: " + armed.error().what(),
                           "nothing was applied; free space in the state directory and apply again"));
    next = std::move(*armed);
  }
  const uint32_t before = generation_locked();
  const bool had_link = before && any_link_usable();
  auto r = commit(text, source, false, opts.diff_detail);
  if (!r) {
    if (next) confirms_.disarm();
    return notify(cause, source, std::move(r));
  }
  guard_.reset();
  if (!next && running_mapping_ && running_mapping_->auto_rollback)
    next = arm_auto_rollback(before, had_link, &r->report.notes);
  confirms_.applied(std::move(next), r->report.generation, &r->report.notes);
  r->confirm_deadline_unix_ms = confirms_.deadline_unix_ms();
  return notify(cause, source, std::move(r));
}

void Agent::set_apply_hook(ApplyHook hook) {
  std::lock_guard lock(mu_);
  hook_ = std::move(hook);
}

ApplyResult Agent::notify(ApplyCause cause, const std::string& source, ApplyResult r) {
  if (hook_) hook_(cause, source, r, running_.get());
  return r;
}

ApplyResult Agent::rollback(uint32_t generation, bool dry, size_t diff_detail) {
  std::lock_guard lock(mu_);
  const auto& entries = history_.entries();
  if (generation == 0) {
    const uint32_t now = generation_locked();
    for (auto it = entries.rbegin(); it != entries.rend(); ++it)
      if (it->generation < now) {
        generation = it->generation;
        break;
      }
    if (generation == 0)
      return refuse(ApplyFailure::kNotFound, "the history holds no mapping before the running one",
                    "see clovisctl history");
  }
  const HistoryEntry* e = history_.find(generation);
  if (!e) {
    std::string kept;
    for (const auto& x : entries) kept += (kept.empty() ? "" : ", ") + std::to_string(x.generation);
    return refuse(ApplyFailure::kNotFound, fmt::format("generation {} is not in the history", generation),
                  kept.empty() ? "the history is empty" : "it keeps generations " + kept);
  }
  auto text = history_.text(generation);
  if (!text) return refuse(ApplyFailure::kNotFound, fmt::format("generation {}: {}", generation, text.error().what()));
  const std::string source = fmt::format("rollback to generation {} ({})", generation, e->source);
  ApplyOptions o;
  o.dry_run = dry;
  o.diff_detail = diff_detail;
  return apply_locked(*text, source, o, ApplyCause::kRollback);
}

core::Result<uint32_t, ApplyError> Agent::confirm() {
  std::lock_guard lock(mu_);
  if (!confirms_.confirm())
    return refuse(ApplyFailure::kPrecondition, "nothing to confirm: no apply is waiting for confirmation");
  return generation_locked();
}

bool Agent::any_link_usable() {
  auto st = dp_.link_state();
  return st && st->up != 0;
}

// The mapping just applied asks for auto-rollback: the guard's fallback is
// the mapping before it (or, when an apply already waits, that apply's
// fallback: what ran before both, as for commit-confirm). Not armed when
// the mapping before had no usable link either: rolling back would not
// bring one.
std::optional<PendingConfirm> Agent::arm_auto_rollback(uint32_t before, bool had_link,
                                                       std::vector<std::string>* notes) {
  const uint32_t after_ms = running_mapping_->auto_rollback->after_ms;
  std::optional<PendingConfirm> next;
  if (const auto& p = confirms_.pending()) {
    next = *p;
  } else if (!before) {
    notes->push_back("auto-rollback: no mapping ran before this one, so there is none to roll back to");
  } else if (!had_link) {
    notes->push_back(fmt::format("auto-rollback: not armed, no link was usable under generation {} either", before));
  } else if (auto text = history_.text(before); !text) {
    notes->push_back(fmt::format("auto-rollback: not armed, generation {}: {}", before, text.error().what()));
  } else {
    const HistoryEntry* e = history_.find(before);
    next = PendingConfirm{0, 0, before, e ? e->source : std::string(), std::move(*text)};
  }
  if (!next) return next;
  next->deadline_unix_ms = 0;
  next->auto_rollback_ms = after_ms;
  guard_.emplace(after_ms);
  (void)guard_->step(now_unix_ms(), any_link_usable());
  return next;
}

std::optional<ApplyResult> Agent::check_auto_rollback(const PendingConfirm& p, int64_t now) {
  if (!guard_) guard_.emplace(p.auto_rollback_ms);  // armed by an earlier run of clovisd
  const auto verdict = guard_->step(now, any_link_usable());
  if (verdict == core::AutoRollbackGuard::Verdict::kWait) return std::nullopt;
  const uint32_t gen = generation_locked();
  const double after_s = p.auto_rollback_ms / 1000.0;
  if (verdict == core::AutoRollbackGuard::Verdict::kKeep) {
    confirms_.set(std::nullopt, nullptr);
    guard_.reset();
    log_info(fmt::format("auto-rollback: generation {} stays, a link was usable for {} s", gen, after_s));
    changes_.push(config_event(now, "kept", fmt::format("generation {}: a link was usable for {} s", gen, after_s)));
    return std::nullopt;
  }
  const std::string why = fmt::format("auto-rollback: generation {} left no usable link for {} s", gen, after_s);
  const std::string source =
      fmt::format("rollback to generation {} ({}): {}", p.fallback_generation, p.fallback_source, why);
  log_warning(fmt::format("{}; rolling back to generation {}", why, p.fallback_generation));
  auto r = commit(p.fallback_text, source, false);
  if (r) rolled_back_ = gen;
  // The kernel refused: try again at the next look (the guard stays decided).
  if (r || r.error().kind != ApplyFailure::kHost) {
    confirms_.set(std::nullopt, r ? &r->report.notes : nullptr);
    guard_.reset();
  }
  changes_.push(config_event(now, "rolled back",
                             r ? fmt::format("{}: generation {} runs generation {}'s mapping", why,
                                             r->report.generation, p.fallback_generation)
                               : fmt::format("{}: the rollback failed: {}", why, r.error().message())));
  return notify(ApplyCause::kRollback, source, std::move(r));
}

std::optional<ApplyResult> Agent::check_confirm(int64_t now) {
  std::lock_guard lock(mu_);
  if (const auto& p = confirms_.pending(); p && p->auto_rollback_ms) {
    const PendingConfirm copy = *p;  // check_auto_rollback replaces it
    return check_auto_rollback(copy, now);
  }
  const auto due = confirms_.due(now);
  if (!due) return std::nullopt;
  const PendingConfirm& p = *due;
  const std::string source =
      fmt::format("revert to generation {}: generation {} was not confirmed", p.fallback_generation, p.generation);
  auto r = commit(p.fallback_text, source, false);
  // The kernel refused: try again next time. Anything else is final.
  if (r || r.error().kind != ApplyFailure::kHost) confirms_.set(std::nullopt, r ? &r->report.notes : nullptr);
  return notify(ApplyCause::kRevert, source, std::move(r));
}

int64_t Agent::confirm_deadline_unix_ms() const {
  std::lock_guard lock(mu_);
  return confirms_.deadline_unix_ms();
}

uint32_t Agent::auto_rollback_after_ms() const {
  std::lock_guard lock(mu_);
  const auto& p = confirms_.pending();
  return p ? p->auto_rollback_ms : 0;
}

uint32_t Agent::auto_rolled_back() const {
  std::lock_guard lock(mu_);
  return rolled_back_;
}

void Agent::record_history(const std::string& text, const std::string& source, ApplyReport* report) {
  // A restart applies the last mapping again, as the same generation: not a
  // change worth a place in the rollback history (ten restarts would push
  // every real one out).
  if (restoring_ && history_.find(report->generation)) return;
  if (auto st = history_.record({report->generation, applied_unix_ms_, source}, text); !st)
    report->notes.push_back("not kept in the history: " + st.error().what());
}

// A link's state as the kernel uses it; `since` moves when it changes (or
// the slot gets another link).
void Agent::observe(const clv_link_state& st) {
  const int64_t now = now_unix_ms();
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const std::string* name = running_ ? &running_->link_info[s].name : nullptr;
    if (!name || name->empty()) {
      seen_[s] = {};
      continue;
    }
    const LinkState state = !(st.up >> s & 1)        ? LinkState::kDown
                            : (st.degraded >> s & 1) ? LinkState::kDegraded
                                                     : LinkState::kUp;
    if (seen_[s].name != *name || seen_[s].state != state) seen_[s] = {*name, state, now};
  }
}

core::Result<std::vector<LinkView>> Agent::links() {
  std::lock_guard lock(mu_);
  std::vector<LinkView> out;
  if (!running_) return out;
  auto st = dp_.link_state();
  if (!st) return core::error_of(st);
  observe(*st);
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const auto& li = running_->link_info[s];
    if (li.name.empty()) continue;
    out.push_back({s, li.name, li.interface, li.mode, li.labels, seen_[s].state, seen_[s].since_unix_ms,
                   host_reason_[s], health_.verdict(s), budget_.status(*running_, s, now_unix_ms() / 1000)});
  }
  return out;
}

core::Result<std::vector<MapFill>> Agent::map_fill() {
  std::lock_guard lock(mu_);
  return dp_.map_fill();
}

core::Result<TableFill> Agent::table_fill() {
  std::lock_guard lock(mu_);  // it reads what apply() keeps, as map_fill
  return dp_.table_fill();
}

RulesPtr Agent::running() const {
  std::lock_guard lock(running_mu_);
  return running_;
}

std::vector<RulesPtr> Agent::recent_rules() const {
  std::lock_guard lock(mu_);
  return {running_, previous_};
}

RunningMapping Agent::running_mapping() const {
  std::lock_guard lock(mu_);
  return {generation_locked(), running_text_, running_source_, applied_unix_ms_};
}

uint32_t Agent::generation() const {
  std::lock_guard lock(mu_);
  return generation_locked();
}

std::vector<HistoryEntry> Agent::history() const {
  std::lock_guard lock(mu_);
  return history_.entries();
}

core::Result<std::string> Agent::history_text(uint32_t generation) const {
  std::lock_guard lock(mu_);
  return history_.text(generation);
}

}  // namespace clovis::agent
