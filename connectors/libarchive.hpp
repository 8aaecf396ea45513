// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// libarchive, opened with dlopen on first use (connectors/libarchive.cpp). Linked, it and what
// it needs (libxml2 with ICU, liblzma, libzstd, liblz4, libbz2, libacl) cost every start of
// the program ~3 ms, ~40 % of a no-op index; only backup archives (archive*.cpp) use it.
// Call through the table: `la().archive_read_new()`.

#include <archive.h>
#include <archive_entry.h>

// Every libarchive function maildsar calls.
#define MAILDSAR_LIBARCHIVE_FUNCTIONS(X)                                                                             \
  X(archive_entry_filetype)                                                                                          \
  X(archive_entry_hardlink)                                                                                          \
  X(archive_entry_is_encrypted)                                                                                      \
  X(archive_entry_pathname)                                                                                          \
  X(archive_entry_set_size)                                                                                          \
  X(archive_entry_size)                                                                                              \
  X(archive_entry_symlink)                                                                                           \
  X(archive_error_string)                                                                                            \
  X(archive_filter_bytes)                                                                                            \
  X(archive_filter_code)                                                                                             \
  X(archive_filter_count)                                                                                            \
  X(archive_format)                                                                                                  \
  X(archive_read_data_block)                                                                                         \
  X(archive_read_data_skip)                                                                                          \
  X(archive_read_free)                                                                                               \
  X(archive_read_new)                                                                                                \
  X(archive_read_next_header)                                                                                        \
  X(archive_read_open_fd)                                                                                            \
  X(archive_read_open_memory)                                                                                        \
  X(archive_read_support_filter_bzip2)                                                                               \
  X(archive_read_support_filter_gzip)                                                                                \
  X(archive_read_support_filter_xz)                                                                                  \
  X(archive_read_support_filter_zstd)                                                                                \
  X(archive_read_support_format_tar)                                                                                 \
  X(archive_read_support_format_zip)                                                                                 \
  X(archive_version_string)                                                                                          \
  X(archive_write_add_filter)                                                                                        \
  X(archive_write_close)                                                                                             \
  X(archive_write_data)                                                                                              \
  X(archive_write_free)                                                                                              \
  X(archive_write_header)                                                                                            \
  X(archive_write_new)                                                                                               \
  X(archive_write_open)                                                                                              \
  X(archive_write_set_bytes_in_last_block)                                                                           \
  X(archive_write_set_format)

namespace maildsar::connectors {

/** The functions of libarchive, each under its own name. */
struct LibArchive {
#define MAILDSAR_LIBARCHIVE_MEMBER(name) decltype(&::name) name = nullptr;
  MAILDSAR_LIBARCHIVE_FUNCTIONS(MAILDSAR_LIBARCHIVE_MEMBER)
#undef MAILDSAR_LIBARCHIVE_MEMBER
};

/**
 * libarchive, loaded on the first call (thread-safe). Throws std::runtime_error naming the
 * library and dlerror() when it cannot be loaded or lacks a function: a broken installation
 * (the package depends on libarchive13), reported as an internal error of the archive read.
 */
[[nodiscard]] const LibArchive &la();

} // namespace maildsar::connectors
