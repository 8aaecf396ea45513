// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/item.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors::mime {

/**
 * Owns GMime's global state (g_mime_init / g_mime_shutdown). Exactly one lives in main() and
 * one in the test main, created before any thread starts.
 */
class MimeLibrary {
public:
  MimeLibrary();
  ~MimeLibrary();
  MimeLibrary(const MimeLibrary &) = delete;
  MimeLibrary &operator=(const MimeLibrary &) = delete;
};

/**
 * Decodes one RFC 5322 message (bytes as stored, LF or CRLF) and fills `item`'s message_id,
 * date, subject, addresses (every header role), ips (Received), texts (subject, body parts —
 * plain and HTML as text —, attachment names, text attachment bodies, attached messages
 * recursively) and warnings. Leaves locator and sha256 alone. Thread-safe (one parser per
 * call). Returns ErrorCode::data only when the bytes are not a message at all; partial
 * problems become warnings.
 */
[[nodiscard]] core::Status decode_message(std::string_view bytes, Item &item);

/**
 * True when `line` starts with an RFC 5322 header field name (printable ASCII, no colon)
 * followed by optional blanks and a colon ("Subject:", "From :"). Used to tell a message's
 * header block from other text (mbox separators, Maildir envelope lines).
 */
[[nodiscard]] bool is_header_field_line(std::string_view line);

/**
 * The role of the addresses of a header field the decoder reads as an address list (From, To,
 * Return-Path, Delivered-To, X-Original-To, Resent-*, ...); nullopt for any other field. The
 * redaction of messages (redaction/) edits exactly these fields as addresses.
 */
[[nodiscard]] std::optional<Role> address_field_role(std::string_view header);

/** One Received header field of a message (for `maildsar trace`). */
struct ReceivedField {
  std::string value;                // unfolded, as written (not decoded)
  std::optional<std::int64_t> date; // the date after the last ';', seconds since the epoch
  std::vector<std::string> ips;     // IP literals in the field, in order of appearance
};

/**
 * The Received fields of a message's top-level header, in header order (newest first). A
 * leading mbox "From " line is skipped. ErrorCode::data when the bytes have no header at all.
 */
[[nodiscard]] core::Result<std::vector<ReceivedField>> received_fields(std::string_view bytes);

} // namespace maildsar::connectors::mime
