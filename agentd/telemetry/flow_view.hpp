// Flow-table entries as the agent shows them: core's flow row (flow_row.hpp:
// names from the rule sets of the last generations) joined with what only
// the agent knows, the proxies' reports about each connection (ext_authz).
#pragma once

#include <optional>
#include <vector>

#include "core/flow_filter.hpp"
#include "core/flow_row.hpp"
#include "telemetry/sessions.hpp"

namespace clovis::agent {

using RulesPtr = std::shared_ptr<const core::CompiledRules>;

class FlowNamer {
 public:
  // `sets`: the running rule set first, then older ones; entries may be null.
  // `sessions`: proxies' reports, joined into each flow's view; may be null.
  explicit FlowNamer(std::vector<RulesPtr> sets, const SessionTable* sessions = nullptr);

  const core::FlowNaming& naming() const { return naming_; }
  core::FlowRow row(const clv_flow_key& k, const clv_flow& f, uint64_t now_ns, core::FlowRowText& text) const {
    return core::flow_row(naming_, k, f, now_ns, text);
  }
  // What a proxy reported about the flow's connection, if anything.
  std::optional<SessionFacts> session(const clv_flow_key& k) const;
  // Whether `filter` selects the flow (names computed only when it needs them).
  bool selects(const core::FlowFilter& filter, const clv_flow_key& k, const clv_flow& f) const;

 private:
  core::FlowNaming naming_;
  const SessionTable* sessions_;
};

}  // namespace clovis::agent
