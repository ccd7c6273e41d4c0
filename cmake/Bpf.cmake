# clovis_bpf_skeleton(NAME SOURCE): compile a BPF C program with clang and
# generate its libbpf skeleton header NAME.skel.h in the binary dir.
find_program(CLANG clang REQUIRED)
find_program(BPFTOOL bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

# The target's architecture as libbpf's bpf_tracing.h names it
# (__TARGET_ARCH_<arch>), and the multiarch include dir holding its
# <asm/types.h>: both from the processor CMake builds for, not the build host.
string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _clovis_cpu)
if(_clovis_cpu MATCHES "^(x86_64|amd64|i[3-6]86|x86)$")
  set(CLOVIS_BPF_TARGET_ARCH x86)
elseif(_clovis_cpu MATCHES "^(aarch64|arm64)")
  set(CLOVIS_BPF_TARGET_ARCH arm64)
elseif(_clovis_cpu MATCHES "^arm")
  set(CLOVIS_BPF_TARGET_ARCH arm)
elseif(_clovis_cpu MATCHES "^s390")
  set(CLOVIS_BPF_TARGET_ARCH s390)
elseif(_clovis_cpu MATCHES "^(ppc|powerpc)")
  set(CLOVIS_BPF_TARGET_ARCH powerpc)
elseif(_clovis_cpu MATCHES "^mips")
  set(CLOVIS_BPF_TARGET_ARCH mips)
elseif(_clovis_cpu MATCHES "^riscv")
  set(CLOVIS_BPF_TARGET_ARCH riscv)
elseif(_clovis_cpu MATCHES "^loongarch")
  set(CLOVIS_BPF_TARGET_ARCH loongarch)
else()
  message(FATAL_ERROR "BPF: no __TARGET_ARCH for CMAKE_SYSTEM_PROCESSOR '${CMAKE_SYSTEM_PROCESSOR}'; "
                      "add it to cmake/Bpf.cmake")
endif()
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(CLOVIS_BPF_ARCH_INCLUDE /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
else()
  set(CLOVIS_BPF_ARCH_INCLUDE /usr/include/${CMAKE_SYSTEM_PROCESSOR}-linux-gnu)
endif()

function(clovis_bpf_skeleton name source)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  # clang's depfile lists every header the program includes, so editing one
  # rebuilds the object without a hand-kept list here.
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CLANG} -O2 -g -target bpf -D__TARGET_ARCH_${CLOVIS_BPF_TARGET_ARCH} -Wall -Werror
            -I${CLOVIS_BPF_ARCH_INCLUDE} -I${PROJECT_SOURCE_DIR}/bpf/include -I${PROJECT_SOURCE_DIR}/bpf
            -MD -MF ${obj}.d -c ${source} -o ${obj}
    DEPENDS ${source}
    DEPFILE ${obj}.d
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel DEPENDS ${skel})
  set(${name}_SKEL_DIR ${CMAKE_CURRENT_BINARY_DIR} PARENT_SCOPE)
endfunction()
