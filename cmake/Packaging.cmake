# The installed files and the Debian package of them (`cpack` in the build
# directory: clovis_VERSION_ARCH.deb and clovis-dbgsym_VERSION_ARCH.ddeb).
# CPack packages the binaries the build just made and the tests ran, not a
# third compile (docs/PACKAGING.md says why CPack and not debhelper).
set(clovis_pkg ${PROJECT_SOURCE_DIR}/packaging)
set(clovis_gz ${PROJECT_BINARY_DIR}/packaging-gz)

# Debian wants man pages and the changelog compressed with gzip -9n (-n: no
# name or time stamp, so the same input gives the same bytes).
set(clovis_gz_files)
foreach(src man/clovisctl.8 man/clovisd.8 man/clovis-wan.yaml.5 packaging/deb/changelog)
  get_filename_component(name ${src} NAME)
  add_custom_command(OUTPUT ${clovis_gz}/${name}.gz
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${clovis_gz}
                     COMMAND sh -c "gzip -9nc '${PROJECT_SOURCE_DIR}/${src}' > '${clovis_gz}/${name}.gz'"
                     DEPENDS ${PROJECT_SOURCE_DIR}/${src}
                     COMMENT "gzip ${src}" VERBATIM)
  list(APPEND clovis_gz_files ${clovis_gz}/${name}.gz)
endforeach()
add_custom_target(clovis-gz ALL DEPENDS ${clovis_gz_files})

# The changelog's newest entry names the version the package gets.
file(STRINGS ${clovis_pkg}/deb/changelog clovis_changelog_top LIMIT_COUNT 1)
if(NOT clovis_changelog_top MATCHES "^clovis \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "packaging/deb/changelog starts with '${clovis_changelog_top}', "
                      "not version ${PROJECT_VERSION}: add an entry for it (dch -v ${PROJECT_VERSION})")
endif()

install(FILES ${clovis_pkg}/deb/copyright ${clovis_gz}/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES examples/edge-site.yaml examples/demo-site.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES docs/METRICS.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${clovis_gz}/clovisctl.8.gz ${clovis_gz}/clovisd.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${clovis_gz}/clovis-wan.yaml.5.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
# bash-completion loads completions by command name.
install(FILES completions/clovisctl.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME clovisctl)
install(FILES completions/_clovisctl DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
install(FILES completions/clovisctl.fish DESTINATION ${CMAKE_INSTALL_DATADIR}/fish/vendor_completions.d)
install(FILES ${clovis_pkg}/systemd/clovisd.service DESTINATION lib/systemd/system)
install(FILES ${clovis_pkg}/systemd/clovis.sysusers DESTINATION lib/sysusers.d RENAME clovis.conf)
# Absolute: /etc, not <prefix>/etc, so the unit finds it (and dpkg keeps it as a conffile).
install(FILES ${clovis_pkg}/systemd/clovisd.default DESTINATION /etc/default RENAME clovisd)
# The monitoring kit: read from here by Prometheus and Grafana (packaging/prometheus/README.md);
# the rules' unit tests come along so that edited thresholds can be re-tested with promtool.
install(FILES ${clovis_pkg}/prometheus/clovis-alerts.yml ${clovis_pkg}/prometheus/clovis-alerts.test.yml
              ${clovis_pkg}/prometheus/prometheus.example.yml ${clovis_pkg}/prometheus/README.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/clovis/prometheus)
install(FILES ${clovis_pkg}/grafana/clovis-dashboard.json DESTINATION ${CMAKE_INSTALL_DATADIR}/clovis/grafana)

# The maintainer: the address the project's commits are made with, until it
# has a list of its own (-DCLOVIS_DEB_MAINTAINER= for a build of your own).
set(CLOVIS_DEB_MAINTAINER "clovis maintainers <maintainers@users.noreply.h-seed-08aa8acb.example>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGE_NAME clovis)
set(CPACK_PACKAGE_CONTACT "${CLOVIS_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "clovis steers the traffic that enters an edge host from its LAN across its\n"
    "WAN links (MPLS, broadband, LTE) by policy: a TC eBPF program classifies\n"
    "each flow and sends it out by the link its rule chooses, by routing mark or\n"
    "by redirect with NAT, and health probes move flows off a failing link.\n"
    "\n"
    "This package has the agent clovisd (a systemd service, installed but not\n"
    "enabled: set CLOVIS_LAN in /etc/default/clovisd and write\n"
    "/etc/clovis/wan.yaml first), the command-line client clovisctl for members\n"
    "of group clovis, their manual pages and shell completions, and Prometheus\n"
    "alert rules and a Grafana dashboard.")
string(REPLACE ";" "" CPACK_DEBIAN_PACKAGE_DESCRIPTION "${CPACK_DEBIAN_PACKAGE_DESCRIPTION}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# adduser: the postinst's addgroup.
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
# Stripped binaries in the package; their debug information, by build ID, in
# clovis-dbgsym_VERSION_ARCH.ddeb, as dh_strip makes it (packaging/deb/dbgsym.sh).
set(CPACK_PRE_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/DebDbgsym.cmake)
set(CPACK_CLOVIS_DBGSYM_SCRIPT ${clovis_pkg}/deb/dbgsym.sh)
set(CPACK_CLOVIS_DBGSYM_BINARIES usr/sbin/clovisd usr/bin/clovisctl)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${clovis_pkg}/deb/conffiles ${clovis_pkg}/deb/postinst
                                       ${clovis_pkg}/deb/prerm ${clovis_pkg}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_GENERATOR DEB)
include(CPack)
