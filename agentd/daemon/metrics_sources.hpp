// The metrics exporter's views of the running agent (metrics/sources.hpp):
// links, policies and apply state from the Agent's own locked snapshots, the
// counters from the Dataplane. The daemon adds health, which it owns.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent.hpp"
#include "health/link_monitor.hpp"
#include "metrics/events.hpp"
#include "metrics/exporter.hpp"
#include "metrics/sources.hpp"

namespace clovis::agent {

metrics::Sources agent_metrics_sources(Agent& agent, Dataplane& dp, std::string version);

// The Prometheus endpoint on `listen` (--metrics-listen; nullptr when empty):
// the agent's sources, the health checker's `verdicts`, and `events`.
core::Result<std::unique_ptr<metrics::Exporter>> start_exporter(const std::string& listen, Agent& agent, Dataplane& dp,
                                                                std::function<std::vector<LinkVerdict>()> verdicts,
                                                                const metrics::Events& events);

// A finished probe round as the metrics count it.
std::vector<metrics::ProbeOutcome> probe_outcomes(const std::vector<health::ProbeResult>& round);

}  // namespace clovis::agent
