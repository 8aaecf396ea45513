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
  target_link_options(maildsar_settings INTERFACE -fsanitize=${_san})
endif()
if(MAILDSAR_COVERAGE)
  target_compile_options(maildsar_settings INTERFACE --coverage -O0)
  target_link_options(maildsar_settings INTERFACE --coverage)
endif()
