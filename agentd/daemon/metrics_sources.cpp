#include "daemon/metrics_sources.hpp"

namespace clovis::agent {

metrics::Sources agent_metrics_sources(Agent& agent, Dataplane& dp, std::string version) {
  metrics::Sources s;
  s.dp = &dp;
  s.table_fill = [&agent] { return agent.table_fill(); };
  s.version = std::move(version);
  s.links = [&agent]() -> core::Result<std::vector<metrics::LinkView>> {
    auto links = agent.links();  // what `clovisctl links` reads: the kernel's state
    if (!links) return core::error_of(links);
    const RulesPtr rules = agent.running();
    std::vector<metrics::LinkView> out;
    for (const auto& l : *links) {
      const bool nat = rules && l.slot >= 0 && l.slot < CLV_MAX_LINKS && rules->links[static_cast<size_t>(l.slot)].snat;
      out.push_back({l.slot, l.name, l.interface, l.mode == core::SteerMode::kRedirect ? "redirect" : "route",
                     std::string(to_string(l.state)), l.since_unix_ms, nat});
    }
    return out;
  };
  s.policies = [&agent] {
    const RulesPtr rules = agent.running();
    return rules ? metrics::policy_views(*rules) : std::vector<metrics::PolicyView>{};
  };
  s.control = [&agent] {
    metrics::ControlView c;
    c.generation = agent.generation();
    for (const auto& h : agent.history())  // a few dozen entries, without their texts
      if (h.generation == c.generation) c.applied_unix_ms = h.applied_unix_ms;
    c.confirm_deadline_unix_ms = agent.confirm_deadline_unix_ms();
    return c;
  };
  return s;
}

}  // namespace clovis::agent
