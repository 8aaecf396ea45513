# SPDX-License-Identifier: GPL-3.0-or-later
add_library(maildsar_warnings INTERFACE)
target_compile_options(maildsar_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wold-style-cast -Wnon-virtual-dtor -Woverloaded-virtual -Wformat=2
  -Wimplicit-fallthrough
  # GCC 12 at -O2 reports false "maybe-uninitialized" warnings inside std::expected and
  # std::optional (GCC bugs 105562, 107138); -Wuninitialized (from -Wall) stays on.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>
  $<$<BOOL:${MAILDSAR_WARNINGS_AS_ERRORS}>:-Werror>)
