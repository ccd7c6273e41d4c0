// health/ judges links from probes and carrier events; it reports through
// log/ and sees nothing of the agent, the kernel's dataplane or the API.
#if !__has_include("health/health_manager.hpp")
#error "health/health_manager.hpp should be reachable: the include roots are broken"
#endif
#if !__has_include("link/link_state.hpp")
#error "link/link_state.hpp should be reachable: the include roots are broken"
#endif
#if !__has_include("log/log.hpp")
#error "log/log.hpp should be reachable: the include roots are broken"
#endif
#if __has_include("agent/agent.hpp")
#error "health/ must not reach agent/ (agent/agent.hpp)"
#endif
#if __has_include("ports/dataplane.hpp")
#error "health/ must not reach ports/ (ports/dataplane.hpp)"
#endif
#if __has_include("kernel/bpf_dataplane.hpp")
#error "health/ must not reach kernel/ (kernel/bpf_dataplane.hpp)"
#endif
#if __has_include("telemetry/flow_view.hpp")
#error "health/ must not reach telemetry/ (telemetry/flow_view.hpp)"
#endif
#if __has_include("service/agent_service.hpp")
#error "health/ must not reach service/ (service/agent_service.hpp)"
#endif
#if __has_include("daemon/daemon.hpp")
#error "health/ must not reach daemon/ (daemon/daemon.hpp)"
#endif
