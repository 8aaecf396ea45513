// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace maildsar::connectors {

/** The on-disk quarantine layouts we read (SourceConfig.format). */
enum class QuarantineFormat { amavis, mailscanner, plain, pmg };

/** "amavis", "mailscanner", "plain", "pmg" -> format; nullopt for anything else. */
[[nodiscard]] std::optional<QuarantineFormat> quarantine_format_from_string(std::string_view name);

/**
 * Creates the quarantine connector for a configured source (type "quarantine").
 *
 * Layouts (see ../shared/corpus/FORMATS.md §1):
 *  - amavis: `<root>/[<c>/]{spam,virus,banned,badh,unchecked,clean,archive}-<mail_id>[.gz]`;
 *    a file that is an mbox (amavis appends to an existing file target) yields one item per
 *    message with locator offset/length.
 *  - mailscanner: `<root>/YYYYMMDD/<id>/message`, `<root>/YYYYMMDD/{spam,nonspam,mcp,nonmcp}/<id>`;
 *    `<id>/` folders without a `message` file yield one attachment item per file; `X.header` +
 *    `X.body` pairs are one message.
 *  - pmg: `<root>/[cluster/<cid>/]{spam,virus,attachment}/<XX>/<UID>`; `Delivered-To` holds the
 *    envelope recipients.
 *  - plain: every regular file below the root is one message.
 * Symbolic links are never followed (reported and skipped); dotfiles are skipped.
 *
 * @errors ErrorCode::config for a missing or unknown format.
 */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_quarantine_connector(const core::SourceConfig &source);

/**
 * Decompresses gzip data (several members are concatenated). Fails with ErrorCode::data on a
 * truncated or corrupt stream, or when the output would exceed `max_bytes`.
 */
[[nodiscard]] core::Result<std::string> gunzip(std::string_view compressed,
                                               std::uint64_t max_bytes = 1ULL << 30);

/** Compresses `data` as one gzip member (zlib level 6, no name, mtime 0: the same input always
    gives the same bytes). ErrorCode::internal when zlib fails; data for more than 4 GiB. */
[[nodiscard]] core::Result<std::string> gzip_compress(std::string_view data);

} // namespace maildsar::connectors
