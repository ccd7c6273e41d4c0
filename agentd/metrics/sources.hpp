// What the collector reads at scrape time, as narrow views: the daemon fills
// them from the snapshots the agent, the health checker and the dataplane
// already keep (the same locked reads the gRPC service makes). Nothing here
// walks the flow table.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/compiled.hpp"
#include "core/result.hpp"
#include "ports/dataplane.hpp"

namespace clovis::agent::metrics {

struct LinkView {
  int slot = 0;
  std::string name, interface;
  std::string mode;           // route | redirect
  std::string state;          // up | degraded | down, as the kernel uses it
  int64_t since_unix_ms = 0;  // when that state began
  bool nat = false;           // the link translates sources (its NAT port range counts)
  // A metered link (budget: in the mapping): its budget in the current period.
  bool metered = false;
  uint64_t budget_bytes = 0, budget_used_bytes = 0;
  int64_t budget_resets_unix_s = 0;
  bool over_budget = false;
};

struct HealthView {
  int slot = 0;
  double latency_ms = 0, jitter_ms = 0, loss_pct = 0;
  bool measured = false;  // a probe was answered: latency and jitter mean something
  uint64_t transitions = 0;
};

struct PolicyView {
  std::string name;
  std::vector<int> slots;  // its members' link slots
  // Times its live flows were told to leave a link, by CLV_MOVE_* (since the
  // rule set was applied: core::SlaMoves::decisions).
  std::array<uint64_t, CLV_MOVE_REASONS> leave_decisions{};
};

struct ControlView {
  uint32_t generation = 0;
  int64_t applied_unix_ms = 0;           // 0: nothing applied
  int64_t confirm_deadline_unix_ms = 0;  // 0: no confirmation pending
};

struct Sources {
  Dataplane* dp = nullptr;  // link_counters, counters (any thread): no flow table reads
  // Dataplane::table_fill, serialized with applies (Agent::table_fill).
  std::function<core::Result<TableFill>()> table_fill;
  std::function<core::Result<std::vector<LinkView>>()> links;
  std::function<std::vector<HealthView>()> health;
  std::function<std::vector<PolicyView>()> policies;
  std::function<ControlView()> control;
  std::string version;
};

// The named policies of a rule set with their member slots (the implicit
// policies of rules that name a link are that link's state: left out).
// `decisions`: per policy index, its leave decisions (Agent::sla_decisions).
std::vector<PolicyView> policy_views(const core::CompiledRules& rules,
                                     const std::vector<std::array<uint64_t, CLV_MOVE_REASONS>>& decisions = {});

}  // namespace clovis::agent::metrics
