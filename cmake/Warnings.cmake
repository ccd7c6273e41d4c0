# clovis_warnings(target): the project's warning set, errors in CI.
option(CLOVIS_WERROR "Treat warnings as errors" OFF)
function(clovis_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
    -Wunused -Woverloaded-virtual -Wdouble-promotion -Wformat=2
    -Wimplicit-fallthrough)
  if(CLOVIS_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
