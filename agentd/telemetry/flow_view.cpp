#include "telemetry/flow_view.hpp"

namespace clovis::agent {

FlowNamer::FlowNamer(std::vector<RulesPtr> sets, const SessionTable* sessions)
    : naming_(std::move(sets)), sessions_(sessions && sessions->size() ? sessions : nullptr) {}

std::optional<SessionFacts> FlowNamer::session(const clv_flow_key& k) const {
  if (!sessions_) return std::nullopt;
  return sessions_->find(k);
}

bool FlowNamer::selects(const core::FlowFilter& filter, const clv_flow_key& k, const clv_flow& f) const {
  if (!filter.needs_names()) return filter.matches(k, f.state, {});
  core::TextBuf rb, lb;
  const std::string_view r = core::flow_local(f) ? std::string_view() : naming_.rule(f, rb);
  const std::string_view l = core::flow_steered(f) ? naming_.link(f, lb) : std::string_view();
  return filter.matches(k, f.state, {r, l});
}

}  // namespace clovis::agent
