// agent/ drives the kernel only through ports/ (fakes in tests/unit), and
// knows nothing of how it is presented or served.
#if !__has_include("agent/agent.hpp")
#error "agent/agent.hpp should be reachable: the include roots are broken"
#endif
#if !__has_include("ports/host_network.hpp")
#error "ports/host_network.hpp should be reachable: the include roots are broken"
#endif
#if !__has_include("log/log.hpp")
#error "log/log.hpp should be reachable: the include roots are broken"
#endif
#if __has_include("kernel/bpf_dataplane.hpp")
#error "agent/ must not reach kernel/ (kernel/bpf_dataplane.hpp)"
#endif
#if __has_include("netlink/netlink.hpp")
#error "agent/ must not reach netlink/ (netlink/netlink.hpp)"
#endif
#if __has_include("telemetry/flow_view.hpp")
#error "agent/ must not reach telemetry/ (telemetry/flow_view.hpp)"
#endif
#if __has_include("service/agent_service.hpp")
#error "agent/ must not reach service/ (service/agent_service.hpp)"
#endif
#if __has_include("health/health_manager.hpp")
#error "agent/ must not reach health/ (health/health_manager.hpp)"
#endif
#if __has_include("daemon/daemon.hpp")
#error "agent/ must not reach daemon/ (daemon/daemon.hpp)"
#endif
