// metrics/ reads the agent through the narrow views the daemon gives it
// (metrics/sources.hpp) and the dataplane through ports/: it never reaches
// the agent, the kernel, the health checker or the gRPC service itself.
#if !__has_include("metrics/collector.hpp")
#error "metrics/collector.hpp should be reachable: the include roots are broken"
#endif
#if !__has_include("ports/dataplane.hpp")
#error "ports/dataplane.hpp should be reachable: the include roots are broken"
#endif
#if __has_include("agent/agent.hpp")
#error "metrics/ must not reach agent/ (agent/agent.hpp)"
#endif
#if __has_include("kernel/bpf_dataplane.hpp")
#error "metrics/ must not reach kernel/ (kernel/bpf_dataplane.hpp)"
#endif
#if __has_include("service/agent_service.hpp")
#error "metrics/ must not reach service/ (service/agent_service.hpp)"
#endif
#if __has_include("health/health_manager.hpp")
#error "metrics/ must not reach health/ (health/health_manager.hpp)"
#endif
