// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace maildsar::connectors {

/** A file in a Maildir's tmp/ older than this is an abandoned delivery (the Maildir spec's
    36 hours), and an item; a younger one is a delivery in progress and is not touched. */
inline constexpr std::int64_t k_maildir_tmp_age_seconds = 36 * 3600;

/** The folder of a Maildir item's file: the directory holding its cur/, new/ and tmp/ (for a
    stray file the directory it lies in). */
[[nodiscard]] std::string maildir_folder_dir(const Locator &locator);

/** The Maildir a Maildir item belongs to: maildir_folder_dir() without the item's folder
    (".Sent", "foo/baz"). */
[[nodiscard]] std::string maildir_root(const Locator &locator);

/** True when `bytes` start like a mail message: a header field after an optional UTF-8 BOM and
    mbox-style "From " line, and no NUL byte in the header block (the Maildir connector's check,
    also used for archive members). */
[[nodiscard]] bool looks_like_mail_message(std::string_view bytes);

/** Bytes before the header block: a UTF-8 BOM and/or a "From " envelope line; 0 if neither. */
[[nodiscard]] std::size_t mail_envelope_line_length(std::string_view bytes);

/** Creates the maildir connector for a configured source (type "maildir"). */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_maildir_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
