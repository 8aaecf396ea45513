# SPDX-License-Identifier: GPL-3.0-or-later
add_library(maildsar_warnings INTERFACE)
target_compile_options(maildsar_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wold-style-cast -Wnon-virtual-dtor -Woverloaded-virtual -Wformat=2
  -Wimplicit-fallthrough
  $<$<BOOL:${MAILDSAR_WARNINGS_AS_ERRORS}>:-Werror>)
