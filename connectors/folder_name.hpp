// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Folder names as the stores write them on disk, in the words a person reads.

#include <optional>
#include <string>
#include <string_view>

namespace maildsar::connectors {

/**
 * IMAP's modified UTF-7 (RFC 3501 5.1.3), which Dovecot and Courier use for Maildir++ folder
 * names on disk (".Entw&APw-rfe" is "Entwürfe"), decoded to UTF-8. nullopt when `name` is not
 * valid modified UTF-7 (a byte above 0x7F, an unterminated or malformed "&...-" run, an unpaired
 * surrogate, leftover bits, US-ASCII written in base64): such a name is taken as written (Dovecot's UTF8 layout option
 * writes UTF-8 itself).
 */
[[nodiscard]] std::optional<std::string> decode_imap_utf7(std::string_view name);

/**
 * The name of a Maildir item's folder (Locator::folder: "" for the inbox, ".Sent",
 * ".Entw&APw-rfe", "foo/baz") as a mail program shows it: leading dots of the Maildir++
 * convention dropped, modified UTF-7 decoded where it is valid; "" for the inbox. Not yet safe
 * as a file name (the caller sanitises).
 */
[[nodiscard]] std::string maildir_folder_display_name(std::string_view folder);

} // namespace maildsar::connectors
