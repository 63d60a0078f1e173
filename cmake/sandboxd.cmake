# Project-wide compile settings, applied per target (no global include paths).

set(SANDBOXD_WARNINGS
  -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor -Wcast-qual
  # (-Wnull-dereference is left out: after inlining it fires inside Asio.)
  -Wold-style-cast -Wuseless-cast
  # g++ 12 reports a false positive on every Asio awaitable frame (see STYLE.md).
  -Wno-mismatched-new-delete)

if(SANDBOXD_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# sandboxd_module(NAME SOURCES ... DEPS ...): a module library with public headers under
# NAME/include/NAME/ and private sources under NAME/src/.
function(sandboxd_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${M_SOURCES})
  add_library(sandboxd::${name} ALIAS ${name})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                     PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  target_compile_options(${name} PRIVATE ${SANDBOXD_WARNINGS})
endfunction()
