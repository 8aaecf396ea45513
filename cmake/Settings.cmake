# SPDX-License-Identifier: GPL-3.0-or-later
set(CMAKE_CXX_STANDARD 23)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

add_library(maildsar_settings INTERFACE)
target_compile_definitions(maildsar_settings INTERFACE
  $<$<CONFIG:Debug>:_GLIBCXX_ASSERTIONS>
  MAILDSAR_VERSION="${PROJECT_VERSION}")
target_include_directories(maildsar_settings INTERFACE ${PROJECT_SOURCE_DIR})

if(MAILDSAR_SANITIZE)
  string(REPLACE ";" "," _san "${MAILDSAR_SANITIZE}")
  target_compile_options(maildsar_settings INTERFACE -fsanitize=${_san} -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  # Executables are linked as position-dependent: GCC's -O0 UBSan checks leave a data record with
  # pointers per check (about 4 million in `maildsar`), which a PIE makes the dynamic loader
  # relocate at every start (0.7 s and 275 MB for `maildsar --version`; 0.3 s and 179 MB
  # without). The tests start the program thousands of times (docs/reliability.md "CI wall time").
  target_link_options(maildsar_settings INTERFACE -fsanitize=${_san}
    $<$<STREQUAL:$<TARGET_PROPERTY:TYPE>,EXECUTABLE>:-no-pie>)
endif()
if(MAILDSAR_FUZZ)
  # clang 16 (Debian 12: clang-16, libclang-rt-16-dev) is the first clang whose C++23 mode can
  # compile libstdc++ 12's std::expected (it needs conditionally trivial destructors, P0848).
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang" OR CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
    message(FATAL_ERROR "MAILDSAR_FUZZ needs clang 16 or newer (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++-16")
  endif()
  if(MAILDSAR_SANITIZE)
    message(FATAL_ERROR "MAILDSAR_FUZZ already enables address and undefined: leave MAILDSAR_SANITIZE empty")
  endif()
  # The libraries get coverage instrumentation without libFuzzer's main; the harnesses in fuzz/
  # link with -fsanitize=fuzzer.
  target_compile_options(maildsar_settings INTERFACE -fsanitize=fuzzer-no-link,address,undefined
    -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(maildsar_settings INTERFACE -fsanitize=address,undefined)
  # libstdc++ 12 declares std::expected only when __cpp_concepts >= 202002L; clang 16 implements
  # what it needs (P0848) but still announces 201907L.
  target_compile_options(maildsar_settings INTERFACE -D__cpp_concepts=202002L -Wno-macro-redefined)
endif()
if(MAILDSAR_COVERAGE)
  target_compile_options(maildsar_settings INTERFACE --coverage -O0)
  target_link_options(maildsar_settings INTERFACE --coverage)
endif()
