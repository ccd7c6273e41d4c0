// core/ is included by path ("core/net.hpp"), never by a bare name that means
// whichever header is nearest (#15 item 4): clovis_core's include root holds
// only the core/ link, so a bare "net.hpp" does not resolve from outside core/.
#if !__has_include("core/net.hpp")
#error "core/net.hpp should be reachable: the include roots are broken"
#endif
#if !__has_include("core/json/flow_json.hpp")
#error "core/json/flow_json.hpp should be reachable: the include roots are broken"
#endif
#if __has_include("net.hpp")
#error "core's headers must only be reachable qualified (\"core/net.hpp\")"
#endif
#if __has_include("yaml/yaml_doc.hpp")
#error "core's headers must only be reachable qualified (\"core/yaml/yaml_doc.hpp\")"
#endif
#if __has_include("agentd/agent/agent.hpp") || __has_include("cli/app.hpp")
#error "core's include root must not expose the source tree's top"
#endif
