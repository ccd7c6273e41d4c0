# clovis_bpf_skeleton(NAME SOURCE): compile a BPF C program with clang and
# generate its libbpf skeleton header NAME.skel.h in the binary dir.
find_program(CLANG clang REQUIRED)
find_program(BPFTOOL bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

execute_process(COMMAND uname -m OUTPUT_VARIABLE CLOVIS_ARCH OUTPUT_STRIP_TRAILING_WHITESPACE)
set(CLOVIS_BPF_ARCH_INCLUDE /usr/include/${CLOVIS_ARCH}-linux-gnu)

function(clovis_bpf_skeleton name source)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CLANG} -O2 -g -target bpf -D__TARGET_ARCH_x86 -Wall -Werror
            -I${CLOVIS_BPF_ARCH_INCLUDE} -I${PROJECT_SOURCE_DIR}/bpf/include -I${PROJECT_SOURCE_DIR}/bpf
            -c ${source} -o ${obj}
    DEPENDS ${source} ${PROJECT_SOURCE_DIR}/bpf/include/clovis/abi.h ${PROJECT_SOURCE_DIR}/bpf/parse.h
            ${PROJECT_SOURCE_DIR}/bpf/rewrite.h ${PROJECT_SOURCE_DIR}/bpf/nat_icmp.h ${PROJECT_SOURCE_DIR}/bpf/mtu.h ${PROJECT_SOURCE_DIR}/bpf/frag.h
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
