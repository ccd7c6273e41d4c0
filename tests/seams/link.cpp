// link/ is the one model of a link's state, shared by health/, agent/ and
// service/: it depends on core only, so that each of them may use it.
#if !__has_include("link/link_state.hpp")
#error "link/link_state.hpp should be reachable: the include roots are broken"
#endif
#if !__has_include("core/model.hpp")
#error "core/model.hpp should be reachable: the include roots are broken"
#endif
#if __has_include("ports/dataplane.hpp")
#error "link/ must not reach ports/ (ports/dataplane.hpp)"
#endif
#if __has_include("log/log.hpp")
#error "link/ must not reach log/ (log/log.hpp)"
#endif
#if __has_include("health/health_manager.hpp")
#error "link/ must not reach health/ (health/health_manager.hpp)"
#endif
#if __has_include("agent/agent.hpp")
#error "link/ must not reach agent/ (agent/agent.hpp)"
#endif
#if __has_include("service/agent_service.hpp")
#error "link/ must not reach service/ (service/agent_service.hpp)"
#endif
