#include "daemon/metrics_sources.hpp"

#include <fmt/format.h>

#include "log/log.hpp"

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
      metrics::LinkView v{l.slot,
                          l.name,
                          l.interface,
                          l.mode == core::SteerMode::kRedirect ? "redirect" : "route",
                          std::string(to_string(l.state)),
                          l.since_unix_ms,
                          nat};
      if (l.budget) {
        v.metered = true;
        v.budget_bytes = l.budget->limit_bytes;
        v.budget_used_bytes = l.budget->used_bytes;
        v.budget_resets_unix_s = l.budget->resets_unix_s;
        v.over_budget = l.budget->over;
      }
      out.push_back(std::move(v));
    }
    return out;
  };
  s.policies = [&agent] {
    const RulesPtr rules = agent.running();
    return rules ? metrics::policy_views(*rules, agent.sla_decisions()) : std::vector<metrics::PolicyView>{};
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

core::Result<std::unique_ptr<metrics::Exporter>> start_exporter(const std::string& listen, Agent& agent, Dataplane& dp,
                                                                std::function<std::vector<LinkVerdict>()> verdicts,
                                                                const metrics::Events& events) {
  if (listen.empty()) return std::unique_ptr<metrics::Exporter>{};
  metrics::Sources src = agent_metrics_sources(agent, dp, CLOVIS_VERSION);
  src.health = [verdicts = std::move(verdicts)] {
    std::vector<metrics::HealthView> out;
    for (const auto& h : verdicts())
      out.push_back(
          {h.slot, h.quality.latency_ms, h.quality.jitter_ms, h.quality.loss_pct, h.quality.measured, h.transitions});
    return out;
  };
  auto e = metrics::Exporter::start(listen, std::make_shared<metrics::Collector>(std::move(src), events));
  if (e) log_info(fmt::format("metrics on {}", (*e)->url()));
  return e;
}

std::vector<metrics::ProbeOutcome> probe_outcomes(const std::vector<health::ProbeResult>& round) {
  std::vector<metrics::ProbeOutcome> out;
  out.reserve(round.size());
  for (const auto& p : round) out.push_back({p.target, p.cannot_probe.empty(), p.ok, p.rtt_ms / 1000});
  return out;
}

}  // namespace clovis::agent
