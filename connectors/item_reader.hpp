// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/item.hpp"
#include "core/result.hpp"

#include <string>

namespace maildsar::connectors {

/**
 * The bytes an item's sha256 (Item::sha256) covers, read the way its connector hashed them, so
 * `sha256_hex(read_item_bytes(loc)) == item.sha256` while the item is unchanged.
 *
 *  - maildir: the whole file.
 *  - mbox: [offset, offset+length).
 *  - maillog: the lines `locator.lines` (1-based, in the order given) of `path` joined with '\n'
 *    (no trailing newline, a line's '\r' kept); gzip files (magic bytes) are read transparently.
 *  - quarantine: length > 0: the mbox message [offset, offset+length) of the file's (decompressed,
 *    when gzip) content; a MailScanner `X.header` with an `X.body` beside it: both files
 *    concatenated; anything else: the stored file bytes (a `.gz` file compressed, as hashed).
 *  - archive: the member's decompressed content, or [offset, offset+length) of it for a message
 *    of an mbox member (connectors/archive.hpp, read_archive_item_bytes).
 *  - pst: ErrorCode::data ("not supported": a PST message has no byte range).
 *
 * Files are opened with O_NOFOLLOW (core::open_read) and must be regular files.
 *
 * @errors ErrorCode::no_input when the file is gone; ErrorCode::data for a PST locator, a range
 *         beyond the end of the file, a line number beyond the end, or corrupt gzip data;
 *         ErrorCode::io / permission for read errors.
 */
[[nodiscard]] core::Result<std::string> read_item_bytes(const Locator &locator);

/**
 * The message as RFC 5322 bytes: a maildir file; an mbox range without its "From " line and with
 * ">From " quoting undone (mbox_message_content); a quarantine message (decompressed; a
 * MailScanner header+body pair joined as the connector decodes it); an archive member (an mbox
 * member's message as for mbox).
 *
 * @errors as read_item_bytes; ErrorCode::data ("not supported") for maillog and pst locators.
 */
[[nodiscard]] core::Result<std::string> read_message(const Locator &locator);

} // namespace maildsar::connectors
