# CLOVIS_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer everywhere.
option(CLOVIS_SANITIZE "Build with ASan and UBSan" OFF)
if(CLOVIS_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()

# CLOVIS_FUZZ=ON (clang): the core instrumented for libFuzzer, with ASan and
# UBSan, and only the core and tests/fuzz are built (tests/fuzz/run.sh).
option(CLOVIS_FUZZ "Build the core's libFuzzer targets only (clang)" OFF)
if(CLOVIS_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CLOVIS_FUZZ needs clang (e.g. -DCMAKE_CXX_COMPILER=clang++-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()
