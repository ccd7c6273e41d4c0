// The metrics exporter's views of the running agent (metrics/sources.hpp):
// links, policies and apply state from the Agent's own locked snapshots, the
// counters from the Dataplane. The daemon adds health, which it owns.
#pragma once

#include "agent/agent.hpp"
#include "metrics/sources.hpp"

namespace clovis::agent {

metrics::Sources agent_metrics_sources(Agent& agent, Dataplane& dp, std::string version);

}  // namespace clovis::agent
