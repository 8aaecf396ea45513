// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"

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
 * SHA-256 (hex) of the first 4096 bytes of the file's *decompressed* content (all of it when it is
 * shorter). Lets the indexer recognise `mail.log` -> `mail.log.1` -> `mail.log.2.gz` rotation as
 * the same data.
 *
 * @errors the errors of opening/reading the file; ErrorCode::data for corrupt gzip data.
 */
[[nodiscard]] core::Result<std::string> content_fingerprint(const std::string &path);

} // namespace maildsar::connectors
