# clovis-netlink-tests: privileged tests of clovis_netlink, each in a
# throw-away network namespace. include() this after netlink.cmake; they skip
# without root unless CLOVIS_REQUIRE_PRIVILEGED=1, which makes a skip a failure.
find_package(doctest REQUIRED)

add_executable(clovis-netlink-tests
  ${CMAKE_CURRENT_LIST_DIR}/doctest_main.cpp ${CMAKE_CURRENT_LIST_DIR}/test_netlink.cpp)
target_link_libraries(clovis-netlink-tests PRIVATE clovis_netlink doctest::doctest)
target_include_directories(clovis-netlink-tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../support)
clovis_warnings(clovis-netlink-tests)

add_test(NAME privileged/netlink COMMAND clovis-netlink-tests)
set_tests_properties(privileged/netlink PROPERTIES LABELS privileged)
