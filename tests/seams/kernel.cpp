// kernel/ implements ports/ with libbpf and rtnetlink; it does not call up
// into the agent, the API or the health checker.
#if !__has_include("kernel/bpf_dataplane.hpp")
#error "kernel/bpf_dataplane.hpp should be reachable: the include roots are broken"
#endif
#if !__has_include("ports/dataplane.hpp")
#error "ports/dataplane.hpp should be reachable: the include roots are broken"
#endif
#if __has_include("agent/agent.hpp")
#error "kernel/ must not reach agent/ (agent/agent.hpp)"
#endif
#if __has_include("telemetry/flow_view.hpp")
#error "kernel/ must not reach telemetry/ (telemetry/flow_view.hpp)"
#endif
#if __has_include("service/agent_service.hpp")
#error "kernel/ must not reach service/ (service/agent_service.hpp)"
#endif
#if __has_include("health/health_manager.hpp")
#error "kernel/ must not reach health/ (health/health_manager.hpp)"
#endif
