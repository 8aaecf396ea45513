// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Backup archives as read-only sources (issue 17 item 2, source type "archive"): tar (plain,
// gzip, bzip2, xz, zstd) and zip files holding Maildirs, mbox files and loose messages, read
// with libarchive and streamed — each archive is read once from its start, member after member,
// and never unpacked to disk. A member is
//  - a Maildir message when its path has a cur/, new/ or tmp/ directory component (folder: the
//    Maildir++ folder, ".Sent", or "" for the inbox),
//  - an mbox file when it begins with a "From " line (split by the mbox connector's splitter;
//    one item per message with offset and length inside the member),
//  - a loose RFC 5322 message when it begins with a header field,
//  - a PST file ("!BDN"): libpst needs a seekable file, so the member is copied into a private
//    0600 temporary file in the spool folder (set_archive_spool_dir: <state>/archive-tmp),
//    bounded by limits.archive_max_pst_mib, scanned by the isolated PST worker and removed;
//    its items keep their PST folder and node id,
//  - anything else: skipped (counted, not an error).
// Items are of store kind "archive"; their locator is the archive's path plus the member's path
// (Locator::member) plus, for an mbox member, the message's offset and length in the member.
// Every archive is bounded (ArchiveLimits, config limits.archive_*): a violation is one
// ScanError naming the archive, the member and its position, and the rest is read where that is
// safe. By default erasure plans the items as manual; with the source's "rewrite" it rewrites
// the archive without them (rewrite_archive).

#include "connectors/connector.hpp"
#include "connectors/pst_export.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace maildsar::connectors {

/** Bounds on reading one archive (config limits.archive_*; docs/reliability.md). */
struct ArchiveLimits {
  /** Decompressed bytes of one member; a bigger member is reported and not read. */
  std::uint64_t max_member_bytes = 512ULL << 20;
  /** Decompressed bytes of one archive; the rest of the archive is not read. */
  std::uint64_t max_total_bytes = 1024ULL << 30;
  /** Decompressed bytes per byte read from the file (checked from 32 MiB decompressed on); above
      it the archive is taken for a bomb and the rest is not read. */
  std::uint64_t max_ratio = 200;
  /** Members (entries of any type) of one archive. */
  std::uint64_t max_members = 1000000;
  /** Wall-clock seconds to read one archive. */
  std::uint64_t timeout_seconds = 7200;
  /** Bytes of one PST member copied into its temporary file; a bigger one is not read. */
  std::uint64_t max_pst_bytes = 4ULL << 30;
};

/** Decompressed bytes after which the ratio bound is checked. */
inline constexpr std::uint64_t k_archive_ratio_floor = 32ULL << 20;

/** Sets the bounds every archive read applies from now on (the config's, when it is loaded). */
void set_archive_limits(const ArchiveLimits &limits);
/** The bounds in force (defaults until set_archive_limits). */
[[nodiscard]] ArchiveLimits archive_limits();

/** The folder (created 0700 when missing) for the temporary copies of PST members; until it is
    set, a PST member is one problem ("no state directory"). The program sets <state>/archive-tmp. */
void set_archive_spool_dir(const std::string &dir);

/** The Maildir folder of a member path with a cur/, new/ or tmp/ directory component (the
    Maildir++ folder: ".Sent", ".A.B"; "" for the inbox), or nullopt for any other path. */
[[nodiscard]] std::optional<std::string> archive_maildir_folder(std::string_view member);

/**
 * Scans an archive held in memory (tests and the fuzz harness), as the connector scans a file:
 * items with `base` as their locator's source and path, problems to sink.error.
 */
void scan_archive_bytes(std::string_view bytes, const Locator &base, ItemSink &sink);

/**
 * The bytes of an archive item as its scan hashed them: the member's decompressed content, or
 * [offset, offset+length) of it for an mbox member's message. A PST member's item (node_id set)
 * has no byte range: ErrorCode::data, as for a PST file. Streams the archive up to the
 * member (the first member of that path), under the same bounds as a scan.
 * @errors ErrorCode::no_input when the archive file or the member is gone; ErrorCode::data when
 *         the archive is corrupt or a bound is exceeded before the member is read.
 */
[[nodiscard]] core::Result<std::string> read_archive_item_bytes(const Locator &locator);

/**
 * The items `node_ids` of the PST member `member` names (its path and member), rendered as
 * render_pst_items renders those of a PST file (connectors/pst_export.hpp): the member is copied,
 * bounded by limits.archive_max_pst_mib, into a private temporary file beside the scan's, and
 * read by the isolated PST worker.
 */
[[nodiscard]] core::Result<std::map<std::uint64_t, core::Result<PstRendering>>>
render_archive_pst_items(const Locator &member, const std::vector<std::uint64_t> &node_ids);

/** One item to remove from an archive: its locator's member (and range inside an mbox member)
    and the planned SHA-256. */
struct ArchiveCut {
  std::string member;
  std::uint64_t offset = 0; // an mbox member's message; length 0 = the whole member
  std::uint64_t length = 0;
  std::string sha256;
};

struct ArchiveRewrite {
  /** Per cut (in the caller's order): true = removed; false = stale (not there, or its bytes
      differ): left as it is. */
  std::vector<bool> removed;
  bool rewritten = false; // false when no cut matched: the archive was not touched
};

/**
 * Rewrites an archive without the given members / mbox messages (source "rewrite": true): the
 * archive is read once and written with libarchive's writer in the same format and with the
 * same compression filter to a temporary file beside it (core::NewFile: 0600 until it takes the
 * original's mode and owner), fsynced, read back (every entry must be there), renamed over the
 * original, and the folder fsynced. Every other entry is copied with its header as libarchive
 * carries it (name, type, mode, owner, times, link target, size) and its bytes; an mbox member
 * that loses messages is written with the rest of its bytes and its new size. A member to cut
 * is hashed first: a cut whose bytes differ is stale and nothing of it is removed. A whole
 * member is removed wherever the archive holds it with those bytes (an appended copy of the same
 * path too); an mbox range only from the first member of its path (the one a scan reads).
 * `hook` is called at "archive:temp-written", "archive:temp-synced", "archive:renamed" (fault
 * injection, as for the mbox rewrite). Bounded as a scan (ArchiveLimits); a member to cut is
 * held in memory (at most limits.archive_max_member_mib).
 * @errors ErrorCode::data when the archive cannot be read whole or a bound is exceeded (nothing
 *         changed); ErrorCode::temp_fail when the archive changed while it was rewritten; io errors.
 */
[[nodiscard]] core::Result<ArchiveRewrite> rewrite_archive(const std::string &path, std::span<const ArchiveCut> cuts,
                                                           const std::function<core::Status(std::string_view)> &hook);

/** Creates the connector of a configured source of type "archive" (no format, no owner). */
[[nodiscard]] core::Result<std::unique_ptr<Connector>> make_archive_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
