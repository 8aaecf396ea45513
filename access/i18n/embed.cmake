# SPDX-License-Identifier: GPL-3.0-or-later
# Compiles the report's PO catalogues into a C++ source (run at build time by access/CMakeLists.txt):
#   cmake -DDIR=<access/i18n> -DLANGUAGES=de -DOUT=<file.cpp> -P embed.cmake
# The bytes go in as an array, so no text of a catalogue can end a string literal.
set(body "// Generated from access/i18n/*.po by access/i18n/embed.cmake. Do not edit.\n")
string(APPEND body "#include \"access/i18n.hpp\"\n\nnamespace maildsar::access::i18n {\n\nnamespace {\n")
set(cases "")
string(REPLACE "," ";" languages "${LANGUAGES}")
foreach(lang IN LISTS languages)
  file(READ "${DIR}/${lang}.po" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(APPEND body "constexpr unsigned char k_${lang}[] = {${hex}};\n")
  string(APPEND cases "  if (language == \"${lang}\") {\n    return {reinterpret_cast<const char *>(k_${lang}), sizeof k_${lang}};\n  }\n")
endforeach()
string(APPEND body "\n} // namespace\n\nstd::string_view embedded_catalogue(std::string_view language) {\n${cases}  return {};\n}\n\n} // namespace maildsar::access::i18n\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
