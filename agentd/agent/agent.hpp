// The agent: turns a mapping into kernel state and keeps it there. Owns the
// running rule set, resolves what only the host knows (ifindexes, addresses),
// programs policy routing for route-mode links and applies atomically. Keeps
// the last applied mappings (rollback) and reverts an apply that is not
// confirmed in time (commit-confirm, as VyOS has it).
//
// Thread safety: every public method takes one mutex, so the gRPC service's
// threads and the resident loop may call it concurrently. What it hands out
// (rule sets, texts, history) are copies or shared immutable snapshots.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent_state.hpp"
#include "agent/budget_meter.hpp"
#include "agent/confirm.hpp"
#include "agent/health_verdicts.hpp"
#include "agent/link_changes.hpp"
#include "agent/routes.hpp"
#include "agent/sla.hpp"
#include "core/auto_rollback.hpp"
#include "core/compiled.hpp"
#include "core/diff.hpp"
#include "core/model.hpp"
#include "core/pipeline.hpp"
#include "link/link_state.hpp"
#include "ports/dataplane.hpp"
#include "ports/host_network.hpp"

namespace clovis::agent {

struct AgentOptions {
  std::string state_dir = "/var/lib/clovis";  // last applied mapping + link slots
  uint32_t rule_pref_base = 10000;            // ip rule preference of link slot 0
};

struct ApplyReport {
  uint32_t generation = 0;
  core::Diagnostics diagnostics;  // warnings (errors mean it was rejected)
  ApplyStats stats;
  double total_ms = 0;             // check + resolve + routes + kernel writes
  std::vector<std::string> notes;  // e.g. interfaces that do not exist yet
};

struct ApplyOptions {
  bool dry_run = false;            // validate and diff; change nothing
  uint32_t confirm_timeout_s = 0;  // > 0: revert unless confirm() within this time
  // Only the first this many changes of the diff get their detail text
  // (the caller shows no more); every change is still listed.
  size_t diff_detail = static_cast<size_t>(-1);
};

// The result of submit() and rollback(): the report, plus what changed.
struct ApplyOutcome {
  ApplyReport report;  // on a dry run: the running generation, no stats
  bool dry_run = false;
  uint32_t previous_generation = 0;
  std::vector<core::DiffItem> diff;
  int64_t confirm_deadline_unix_ms = 0;  // 0: no confirmation pending
};

enum class ApplyFailure {
  kRejected,      // the mapping is invalid (located diagnostics)
  kHost,          // the kernel or the host refused a write; nothing changed
  kPrecondition,  // e.g. nothing to confirm
  kNotFound,      // e.g. no such generation in the history
};

struct ApplyError {
  ApplyFailure kind = ApplyFailure::kRejected;
  core::Diagnostics diagnostics;  // kRejected: the mapping's; otherwise one error
  std::string message() const;    // the first error's message (and hint)
};

using ApplyResult = core::Result<ApplyOutcome, ApplyError>;
using RulesPtr = std::shared_ptr<const core::CompiledRules>;

struct RunningMapping {
  uint32_t generation = 0;  // 0: none
  std::string text;
  std::string source;
  int64_t applied_unix_ms = 0;
};

// What started an apply the hook is told of: a mapping submitted (API,
// reload, start-up, a followed file), a re-apply of the running mapping
// after an interface change, a revert of an unconfirmed apply, a rollback
// to an earlier generation (clovisctl rollback or auto-rollback).
enum class ApplyCause { kSubmit, kReapply, kRevert, kRollback };

class Agent {
 public:
  // Called after every apply that went for the kernel, whatever started it,
  // with its `source` as logged ("api", a path, "revert to generation 3:
  // ...") and the rule set running afterwards. It runs under the agent's
  // lock: it must not call the agent.
  using ApplyHook = std::function<void(ApplyCause cause, const std::string& source, const ApplyResult& r,
                                       const core::CompiledRules* running)>;

  Agent(AgentOptions opts, Dataplane& dp, HostNetwork& net);
  void set_apply_hook(ApplyHook hook);

  // Validates, compiles against the running rule set, resolves, programs the
  // kernel and persists. On any error nothing is changed and the error (with
  // diagnostics, for a bad mapping) is returned. Cancels a pending
  // confirmation: this mapping stays.
  core::Result<ApplyReport, core::Diagnostics> apply(const std::string& text, const std::string& source);
  // apply() with options and the diff against the running mapping.
  ApplyResult submit(const std::string& text, const std::string& source, const ApplyOptions& opts);
  // Applies the text of a history entry again, as a new generation. 0: the
  // entry before the running one.
  ApplyResult rollback(uint32_t generation, bool dry_run, size_t diff_detail = static_cast<size_t>(-1));
  // Keeps the apply waiting for confirmation; returns the running generation.
  core::Result<uint32_t, ApplyError> confirm();
  // When a confirmation is overdue at `now_unix_ms`, applies the fallback
  // again and returns what that did; nullopt when there was nothing to do.
  // Also judges a mapping's auto-rollback (core::AutoRollbackGuard): its
  // fallback runs again when no link was usable for its `after`, and the
  // guard ends when one was; the caller looks about once a second.
  std::optional<ApplyResult> check_confirm(int64_t now_unix_ms);
  int64_t confirm_deadline_unix_ms() const;
  // The `after` of the auto-rollback guard waiting on the running mapping; 0: none.
  uint32_t auto_rollback_after_ms() const;
  // The generation an auto-rollback last rolled back (0: none since start).
  uint32_t auto_rolled_back() const;

  // Re-applies the persisted mapping (agent restart). No state: nothing to
  // do. A pending confirmation survives: its deadline still holds.
  core::Result<std::optional<ApplyReport>, core::Diagnostics> restore();

  // The health checker's verdicts (masks_of(): links with a verdict are up
  // only when not down, degraded when degraded): re-reads interface states
  // and updates the kernel's link state. `change`, when given, is kept for
  // events(). links() shows the verdicts.
  core::Status set_health(std::vector<LinkVerdict> verdicts, const LinkChange* change);
  // Newer measurements from the checker (a probe round), its states as
  // last given to set_health: kept for links() only, the kernel is not
  // touched. Takes no lock an apply holds.
  void set_verdicts(std::vector<LinkVerdict> verdicts);
  // The health checker's smoothed link qualities, by slot. Policies with an
  // SLA class or strategy: best-quality are given to the kernel as
  // core::sla_policies() makes them for these; the kernel is written again
  // (as for an interface change: same rule set and generation) only when
  // that changes what it holds.
  // Then decides which links the policies' live flows must leave (SLA,
  // failback: core/sla_moves.hpp) and writes that when it changed.
  core::Status set_quality(const core::LinkQualities& q);
  core::LinkQualities quality() const;
  // Reads the metered links' interface counters and counts them against
  // their budgets (BudgetMeter); a link over budget leaves the policies
  // that do not allow metered links, and the kernel is written again (as for
  // set_quality) when that changes what it holds. A crossing is an event.
  core::Status sample_budgets(int64_t now_unix_s);
  // Per policy of the running rule set, the links it leaves for being over
  // budget (SlaSteering::budget_leave).
  std::vector<uint64_t> budget_leave() const;
  uint64_t over_budget() const;  // links over budget now, by slot of the running rule set
  // Per policy of the running rule set, the links held out of its SLA by
  // hysteresis (Classifier::decide's held_out: simulate explains the same).
  std::vector<uint64_t> sla_held_out() const;
  // Per policy of the running rule set, the times its live flows were told
  // to leave a link, by CLV_MOVE_* (since that rule set was applied).
  std::vector<std::array<uint64_t, CLV_MOVE_REASONS>> sla_decisions() const;
  // The running mapping's links (empty before the first apply): what the
  // health checker probes. Not the whole mapping: copying 10k rules per apply
  // cost more than the health checker itself.
  std::vector<core::Link> links_of_model() const;
  // Recent link changes, the checker's and the host's (oldest first), and
  // their sequence number.
  std::vector<LinkChange> events(uint64_t* seq = nullptr) const;
  // An event of the mapping's (LinkChange::Source::kConfig) for events().
  void note_event(LinkChange c);
  // Waits until an event newer than `seq` arrives (or the timeout).
  bool wait_event(uint64_t seq, std::chrono::milliseconds timeout) const;

  // host_event: a netlink notification says the host changed (else a
  // periodic look, which retries refused routing only every few seconds).
  core::Status refresh_link_state(bool host_event = true);
  // Runs fn under the agent's lock, with the running rule set (null before
  // the first apply): host work that must not interleave with an apply's
  // (attaching the programs, which shares rtnetlink with it).
  void run_locked(const std::function<void(const core::CompiledRules* running)>& fn);

  // Removes what apply installed outside BPF (ip rules and routes).
  core::Status remove_routes();

  RulesPtr running() const;
  // The running rule set first, then the one before (the other rule bank):
  // what names the flows in the table.
  std::vector<RulesPtr> recent_rules() const;
  RunningMapping running_mapping() const;
  uint32_t generation() const;
  std::vector<HistoryEntry> history() const;
  core::Result<std::string> history_text(uint32_t generation) const;
  // Reads the live link state from the kernel and reports each link, with
  // the checker's verdict on it as last given.
  core::Result<std::vector<LinkView>> links();
  core::Result<std::vector<MapFill>> map_fill();
  core::Result<TableFill> table_fill();  // Dataplane::table_fill, serialized with apply

 private:
  struct Prepared;
  ApplyResult commit(const std::string& text, const std::string& source, bool dry_run,
                     size_t diff_detail = static_cast<size_t>(-1));
  core::Result<Prepared, ApplyError> prepare(const std::string& text);
  ApplyResult dry_run(Prepared p, size_t diff_detail);
  ApplyResult program(Prepared p, const std::string& text, const std::string& source, size_t diff_detail);
  core::Result<core::Ok, ApplyError> write_kernel(const core::CompiledRules& c, ResolvedRules& resolved,
                                                  ApplyStats* stats);
  ApplyResult apply_locked(const std::string& text, const std::string& source, const ApplyOptions& opts,
                           ApplyCause cause = ApplyCause::kSubmit);
  core::Result<ResolvedRules> resolve(const core::CompiledRules& c, std::vector<std::string>* notes);
  void set_neighbors(ResolvedRules& r);
  // The live flows' leave decisions for the running rule set, now, written
  // to the kernel when they changed. Under mu_, with a running rule set.
  core::Status program_moves();
  core::Status write_moves(const core::MoveDecision& d);
  void note_moves(const std::vector<MoveNote>& said);
  void note_host_changes(const ResolvedRules& r);
  core::Status persist(const std::string& text, const core::CompiledRules& c);
  // The running rule set's policies written again with sla_'s qualities and
  // over-budget links (same rule set and generation).
  core::Status rewrite_policies(const std::string& what);
  void record_history(const std::string& text, const std::string& source, ApplyReport* report);
  ApplyResult notify(ApplyCause cause, const std::string& source, ApplyResult r);
  std::optional<PendingConfirm> arm_auto_rollback(uint32_t before, bool had_link, std::vector<std::string>* notes);
  std::optional<ApplyResult> check_auto_rollback(const PendingConfirm& p, int64_t now);
  bool any_link_usable();
  void observe(const clv_link_state& st);
  std::optional<core::CompiledRules> load_previous_slots();
  uint32_t generation_locked() const { return running_ ? running_->generation : 0; }

  mutable std::mutex mu_;
  ApplyHook hook_;
  AgentOptions opts_;
  Dataplane& dp_;
  HostNetwork& net_;
  RouteKeeper routes_;  // the policy routing and routes.json
  // Written under both locks; running() takes only running_mu_, so a proxy's
  // Check never waits for the agent's work under mu_ (an apply, a netlink
  // refresh of the interfaces).
  mutable std::mutex running_mu_;
  RulesPtr running_;
  RulesPtr previous_;  // the rule set before the running one (the other bank)
  std::optional<core::Mapping> running_mapping_;
  std::string running_text_, running_source_;
  int64_t applied_unix_ms_ = 0;
  bool restoring_ = false;                                // restore() is applying the persisted mapping
  std::array<std::string, CLV_MAX_LINKS> host_reason_{};  // ResolvedRules::down_reason, as last seen
  uint64_t host_no_carrier_ = 0;                          // ResolvedRules::no_carrier, as last seen
  std::array<clv_link, CLV_MAX_LINKS> resolved_links_{};  // as last written to the kernel
  SlaSteering sla_;                                       // the checker's qualities and the policies the kernel holds
  BudgetMeter budget_;                                    // metered links' counts and budget.json
  HealthVerdicts health_;                                 // the checker's say: masks and the verdicts for views
  LinkChanges changes_;                                   // events(): its own lock
  History history_;
  Confirmations confirms_;                        // commit-confirm: the pending confirmation and confirm.json
  std::optional<core::AutoRollbackGuard> guard_;  // while confirms_ holds an auto-rollback
  uint32_t rolled_back_ = 0;                      // auto_rolled_back()
  struct Seen {
    std::string name;
    LinkState state = LinkState::kDown;
    int64_t since_unix_ms = 0;
  };
  std::array<Seen, CLV_MAX_LINKS> seen_{};
};

// The running rule set as the agent last applied it (same generation and link
// slots, so rule ids and slots match the kernel's), from the state directory.
std::optional<core::CompiledRules> load_persisted(const std::string& state_dir);

// Removes the policy routing of the persisted mapping's route-mode links
// (uninstall, when no agent is running).
core::Status remove_persisted_routes(const AgentOptions& opts, HostNetwork& net);

}  // namespace clovis::agent
