# SPDX-License-Identifier: GPL-3.0-or-later
# maildsar's loadable modules (core/module.hpp): code whose libraries are large to load, built as
# lib/maildsar/libmaildsar-NAME.so and opened on first use by `USER` (a library target), which
# gets MAILDSAR_<PREFIX>_MODULE_BUILD_PATH, _INSTALL_RELATIVE and _INSTALL_PATH to find it: relative
# to the program first (as maildsar-worker is, so that a tree installed under another prefix
# than configured — the .deb of a /usr/local build — finds its own module), then in the build
# tree, then at the configured prefix.
#
# Sanitizer and fuzz builds link the module's code into USER instead (LINKED sources, default
# SOURCES, and LIBS) and define MAILDSAR_<PREFIX>_LINKED: LeakSanitizer (GCC 12) walks the dynamic
# TLS of libraries opened with dlopen and crashes on some at exit. The loader path is exercised by
# the normal build's tests.
#
#   maildsar_module(TARGET NAME PREFIX USER SOURCES... LIBS ... [LINKED sources...])
include(GNUInstallDirs)
function(maildsar_module target name prefix user)
  cmake_parse_arguments(M "" "" "SOURCES;LIBS;LINKED" ${ARGN})
  add_library(${target} MODULE ${M_SOURCES})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME maildsar-${name}
    LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib/maildsar
    CXX_VISIBILITY_PRESET hidden)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${target} PRIVATE maildsar_settings maildsar_warnings ${M_LIBS})
  add_dependencies(${user} ${target})
  set(file "libmaildsar-${name}.so")
  file(RELATIVE_PATH relative "${CMAKE_INSTALL_FULL_BINDIR}" "${CMAKE_INSTALL_FULL_LIBDIR}/maildsar/${file}")
  target_compile_definitions(${user} PRIVATE
    MAILDSAR_${prefix}_MODULE_BUILD_PATH="${PROJECT_BINARY_DIR}/lib/maildsar/${file}"
    MAILDSAR_${prefix}_MODULE_INSTALL_RELATIVE="${relative}"
    MAILDSAR_${prefix}_MODULE_INSTALL_PATH="${CMAKE_INSTALL_FULL_LIBDIR}/maildsar/${file}")
  install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/maildsar)
  if(MAILDSAR_SANITIZE OR MAILDSAR_FUZZ)
    if(NOT M_LINKED)
      set(M_LINKED ${M_SOURCES})
    endif()
    target_sources(${user} PRIVATE ${M_LINKED})
    target_link_libraries(${user} PRIVATE ${M_LIBS})
    target_compile_definitions(${user} PRIVATE MAILDSAR_${prefix}_LINKED)
  endif()
endfunction()
