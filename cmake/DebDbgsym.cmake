# CPack pre-build script (cmake/Packaging.cmake): the staged tree's binaries
# are stripped and their debug information goes to the -dbgsym package, by
# packaging/deb/dbgsym.sh, before CPack packs the tree.
set(staging "${CPACK_TEMPORARY_DIRECTORY}")
set(arch "${CPACK_DEBIAN_PACKAGE_ARCHITECTURE}")  # CPackDeb sets it after this script
if(NOT arch)
  execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE arch OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()
execute_process(
  COMMAND sh "${CPACK_CLOVIS_DBGSYM_SCRIPT}" "${staging}" "${CPACK_PACKAGE_DIRECTORY}" "${CPACK_PACKAGE_NAME}"
          "${CPACK_PACKAGE_VERSION}" "${arch}" "${CPACK_PACKAGE_CONTACT}"
          ${CPACK_CLOVIS_DBGSYM_BINARIES}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "packaging/deb/dbgsym.sh failed (${rc}) on ${staging}")
endif()
