// telemetry/ reads what the dataplane counted through ports/; it holds no
// agent state and never touches the kernel itself.
#if !__has_include("telemetry/flow_view.hpp")
#error "telemetry/flow_view.hpp should be reachable: the include roots are broken"
#endif
#if !__has_include("ports/dataplane.hpp")
#error "ports/dataplane.hpp should be reachable: the include roots are broken"
#endif
#if __has_include("agent/agent.hpp")
#error "telemetry/ must not reach agent/ (agent/agent.hpp)"
#endif
#if __has_include("kernel/bpf_dataplane.hpp")
#error "telemetry/ must not reach kernel/ (kernel/bpf_dataplane.hpp)"
#endif
#if __has_include("service/agent_service.hpp")
#error "telemetry/ must not reach service/ (service/agent_service.hpp)"
#endif
#if __has_include("health/health_manager.hpp")
#error "telemetry/ must not reach health/ (health/health_manager.hpp)"
#endif
