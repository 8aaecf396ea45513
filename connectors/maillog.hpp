// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"

#include <cstdint>
#include <limits>
#include <memory>
#include <string>

namespace maildsar::connectors {

/**
 * Creates the maillog connector for a configured source (type "maillog").
 *
 * `source.format` selects the reader: "postfix", "exim", "sendmail" (syslog-style line logs; every
 * line parser is active, the format names what the source mainly holds), "exchange" (Exchange
 * message-tracking CSV), "syslog" (any mix of syslog lines: postfix, dovecot, amavis, ...) and
 * "auto" (= syslog, but a file that starts with an Exchange `#Software:`/`#Fields:` header is read
 * as Exchange). An empty format means "auto".
 *
 * Items are log transactions: all lines of one queue id (postfix, sendmail), message id (exim,
 * exchange) or session (dovecot) in one file; any other line that shows an address or an IP
 * literal is an item of its own (queue_id "line-N"). Files may be gzip-compressed (detected by the
 * magic bytes); those cannot be scanned from an offset.
 *
 * @errors ErrorCode::config for an unknown format.
 */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_maillog_connector(const core::SourceConfig &source);

/**
 * True when every line of a log of this source joins its transaction by a key written in the
 * line itself and nothing else (a syslog program without continuation lines, not `auto`): a
 * transaction then depends only on its own lines (maillog::SourceFormat::keyed_lines).
 */
[[nodiscard]] bool keyed_log_lines(const core::SourceConfig &source);

/**
 * SHA-256 (hex) of the first 4096 bytes of the file's *decompressed* content (all of it when it is
 * shorter). Lets the indexer recognise `mail.log` -> `mail.log.1` -> `mail.log.2.gz` rotation as
 * the same data.
 *
 * @errors the errors of opening/reading the file; ErrorCode::data for corrupt gzip data.
 */
[[nodiscard]] core::Result<std::string> content_fingerprint(const std::string &path);

/** Bytes of decompressed content that the head/tail fingerprints of a log cover. */
inline constexpr std::uint64_t k_content_probe_bytes = 4096;
/** probe_content() mark meaning "the end of the content". */
inline constexpr std::uint64_t k_content_end = std::numeric_limits<std::uint64_t>::max();

/** What the indexer needs to recognise log content that moved to another file (rotation). */
struct ContentProbe {
  bool compressed = false;
  std::uint64_t size = 0;       // decompressed size (plain: the file size when opened)
  std::string head;             // the first min(4096, size) decompressed bytes
  std::string mark_fingerprint; // sha256 hex of decompressed [max(0, mark-4096), mark); "" if mark > size
  std::string end_fingerprint;  // sha256 hex of the last min(4096, size) decompressed bytes
  /** Compressed: its gzip restart points, serialised (connectors/maillog/gz_access.hpp; empty
      when it is too small to have any). */
  std::string gz_points;
};

/**
 * The first k_content_probe_bytes (or fewer) bytes of the file's decompressed content. Cheap:
 * never decompresses more than that.
 * @errors as content_fingerprint().
 */
[[nodiscard]] core::Result<std::string> read_content_head(const std::string &path);

/**
 * Probes the decompressed content of `path` at decompressed offset `mark` (k_content_end = the
 * end). A plain file is read only at its head, at the mark and at its end; a compressed one is
 * decompressed once, completely (its size is only known at the end).
 * @errors as content_fingerprint().
 */
[[nodiscard]] core::Result<ContentProbe> probe_content(const std::string &path, std::uint64_t mark);

} // namespace maildsar::connectors
