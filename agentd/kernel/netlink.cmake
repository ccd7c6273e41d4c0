# clovis_netlink: the dependency-free rtnetlink client (rules, routes,
# neighbours, links). include() this from the agentd build; it needs
# clovis_core and clovis_warnings() to be defined first.
add_library(clovis_netlink STATIC ${CMAKE_CURRENT_LIST_DIR}/netlink.cpp)
target_include_directories(clovis_netlink PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(clovis_netlink PUBLIC clovis_core)
clovis_warnings(clovis_netlink)
