// The agent: turns a mapping into kernel state and keeps it there. Owns the
// running rule set, resolves what only the host knows (ifindexes, addresses),
// programs policy routing for route-mode links and applies atomically.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiled.hpp"
#include "dataplane.hpp"
#include "host_network.hpp"
#include "model.hpp"
#include "pipeline.hpp"

namespace clovis::agent {

struct AgentOptions {
  std::string state_dir = "/var/lib/clovis";  // last applied mapping + link slots
  uint32_t rule_pref_base = 10000;            // ip rule preference of link slot 0
};

struct ApplyReport {
  uint32_t generation = 0;
  core::Diagnostics diagnostics;  // warnings (errors mean it was rejected)
  ApplyStats stats;
  double total_ms = 0;  // check + resolve + routes + kernel writes
  std::vector<std::string> notes;  // e.g. interfaces that do not exist yet
};

class Agent {
 public:
  Agent(AgentOptions opts, Dataplane& dp, HostNetwork& net);

  // Validates, compiles against the running rule set, resolves, programs the
  // kernel and persists. On any error nothing is changed and the error (with
  // diagnostics, for a bad mapping) is returned.
  core::Result<ApplyReport, core::Diagnostics> apply(const std::string& text, const std::string& source);

  // Re-applies the persisted mapping (agent restart). No state: nothing to do.
  core::Result<std::optional<ApplyReport>, core::Diagnostics> restore();

  // Re-reads interface states and updates the kernel's link state.
  core::Status refresh_link_state();

  // Removes what apply installed outside BPF (ip rules and routes).
  core::Status remove_routes();

  const core::CompiledRules* running() const { return running_ ? &*running_ : nullptr; }
  const std::string& running_text() const { return running_text_; }
  uint32_t generation() const { return running_ ? running_->generation : 0; }

 private:
  core::Result<ResolvedRules> resolve(const core::CompiledRules& c, std::vector<std::string>* notes);
  std::vector<RouteLink> route_links(const core::CompiledRules& c, const ResolvedRules& r) const;
  core::Status persist(const std::string& text, const core::CompiledRules& c);
  std::optional<core::CompiledRules> load_previous_slots();

  AgentOptions opts_;
  Dataplane& dp_;
  HostNetwork& net_;
  std::optional<core::CompiledRules> running_;
  std::string running_text_;
  std::vector<RouteLink> installed_routes_;
};

// The running rule set as the agent last applied it (same generation and link
// slots, so rule ids and slots match the kernel's), from the state directory.
std::optional<core::CompiledRules> load_persisted(const std::string& state_dir);

}  // namespace clovis::agent
