# clovis_netlink: the dependency-free rtnetlink client (rules, routes,
# neighbours, links). include() this from the agentd build; it needs
# clovis_core, clovis_warnings() and clovis_agentd_root() to be defined first.
add_library(clovis_netlink STATIC ${CMAKE_CURRENT_LIST_DIR}/netlink.cpp ${CMAKE_CURRENT_LIST_DIR}/netlink_events.cpp)
clovis_agentd_root(clovis_netlink netlink)
target_link_libraries(clovis_netlink PUBLIC clovis_core)
clovis_warnings(clovis_netlink)
