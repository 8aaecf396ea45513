// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Internal to connectors/archive*.cpp: what the archive reader (archive.cpp) and the archive
// rewrite (archive_rewrite.cpp) share.

#include "connectors/libarchive.hpp"

#include <cstddef>
#include <memory>
#include <string>

namespace maildsar::connectors::archive_detail {

/** Bytes asked of libarchive at a time. */
inline constexpr std::size_t k_read_block_bytes = std::size_t{64} << 10;

struct ArchiveReadFree {
  void operator()(struct archive *a) const { la().archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveReadFree>;

/** A reader for tar (with gzip, bzip2, xz, zstd) and zip only: no raw format, no external
    decompression programs. Null when libarchive has no memory. */
[[nodiscard]] ArchivePtr new_reader();

/** libarchive's message for the last error of `a`. */
[[nodiscard]] std::string archive_error(struct archive *a);

} // namespace maildsar::connectors::archive_detail
