# SPDX-License-Identifier: GPL-3.0-or-later
# Every third-party library comes in as an imported target, so that its headers are
# system headers (-isystem) and our strict warnings apply to our code only.
find_package(PkgConfig REQUIRED)
pkg_check_modules(GMIME REQUIRED IMPORTED_TARGET gmime-3.0>=3.2.13)
pkg_check_modules(XAPIAN REQUIRED IMPORTED_TARGET xapian-core>=1.4.22)
pkg_check_modules(LIBPST REQUIRED IMPORTED_TARGET libpst>=0.6.76)
pkg_check_modules(LIBIDN2 REQUIRED IMPORTED_TARGET libidn2>=2.3)
pkg_check_modules(GLIB REQUIRED IMPORTED_TARGET glib-2.0)
# Attachment text (extract/): PDF, ZIP containers (OOXML, ODF, archives), their XML parts, TNEF.
pkg_check_modules(POPPLER_CPP REQUIRED IMPORTED_TARGET poppler-cpp>=22.02)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip>=1.7)
pkg_check_modules(LIBXML2 REQUIRED IMPORTED_TARGET libxml-2.0>=2.9.14)
pkg_check_modules(LIBYTNEF REQUIRED IMPORTED_TARGET libytnef>=1.9)
# The access report as PDF (access/report_pdf.cpp): text laid out by Pango, drawn by cairo.
pkg_check_modules(PANGOCAIRO REQUIRED IMPORTED_TARGET pangocairo>=1.50 cairo-pdf>=1.16)
find_package(SQLite3 REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
# SHA-256 and HMAC (core/hash.cpp): Nettle, which libarchive loads anyway. OpenSSL signs, in a
# module loaded on first use (erasure/sign_module.hpp): libcrypto is ~3 ms of every start.
pkg_check_modules(NETTLE REQUIRED IMPORTED_TARGET nettle>=3.8)
# The program's allocator (cli/CMakeLists.txt).
pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc>=5.2)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(LibArchive 3.6 REQUIRED) # backup archives (connectors/archive.cpp): LibArchive::LibArchive
# ISA-L's igzip: inflating gzip logs from their start or a restart point (zlib records the points).
pkg_check_modules(LIBISAL REQUIRED IMPORTED_TARGET libisal>=2.30)
find_package(Threads REQUIRED)

# libphonenumber ships no CMake or pkg-config file on Debian 12: wrap it ourselves.
find_library(PHONENUMBER_LIBRARY NAMES phonenumber REQUIRED)
find_path(PHONENUMBER_INCLUDE_DIR NAMES phonenumbers/phonenumberutil.h REQUIRED)
add_library(maildsar_phonenumber INTERFACE IMPORTED)
target_link_libraries(maildsar_phonenumber INTERFACE ${PHONENUMBER_LIBRARY})
target_include_directories(maildsar_phonenumber SYSTEM INTERFACE ${PHONENUMBER_INCLUDE_DIR})

if(MAILDSAR_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
