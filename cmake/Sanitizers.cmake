# CLOVIS_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer everywhere.
option(CLOVIS_SANITIZE "Build with ASan and UBSan" OFF)
if(CLOVIS_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()
