// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Small generators of attachment files for the tests (written here, from the format
// specifications; no real person's data): PDF, ZIP (stored or deflated members), DOCX, ODT,
// XLSX, TNEF (winmail.dat), and a MIME message carrying them as base64 attachments.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace maildsar::test {

/** A PDF with one page per entry of `pages`, each showing its lines in Helvetica. */
[[nodiscard]] std::string make_pdf(const std::vector<std::vector<std::string>> &pages,
                                   const std::string &author = {});

struct ZipMember {
  std::string name;
  std::string data;
  bool deflate = true;
};
/** A ZIP archive (PKZIP 2.0: stored or deflated members, CRC-32 via zlib). */
[[nodiscard]] std::string make_zip(const std::vector<ZipMember> &members);

/** A minimal WordprocessingML document whose paragraphs are `paragraphs` (each split into two runs). */
[[nodiscard]] std::string make_docx(const std::vector<std::string> &paragraphs, const std::string &creator = {});
/** A minimal OpenDocument text. */
[[nodiscard]] std::string make_odt(const std::vector<std::string> &paragraphs);
/** A minimal SpreadsheetML workbook whose shared strings are `cells`. */
[[nodiscard]] std::string make_xlsx(const std::vector<std::string> &cells);

struct TnefAttachment {
  std::string name; // attAttachTitle and PR_ATTACH_LONG_FILENAME (PT_UNICODE)
  std::string data; // attAttachData
};
/**
 * A TNEF stream (winmail.dat, [MS-OXTNEF]): signature, key, then attributes (level, id, length,
 * data, checksum): attTnefVersion, attOemCodepage, attMessageClass, attSubject, attBody, an
 * attMAPIProps block holding PR_SENDER_EMAIL_ADDRESS (PT_STRING8) and PR_DISPLAY_TO (PT_UNICODE),
 * then per attachment attAttachRenddata, attAttachTitle, attAttachData and attAttachment (its
 * MAPI properties: PR_ATTACH_LONG_FILENAME).
 */
[[nodiscard]] std::string make_tnef(const std::string &subject, const std::string &body, const std::string &sender_email,
                                    const std::string &display_to, const std::vector<TnefAttachment> &attachments);

struct MimeAttachment {
  std::string name;
  std::string mime_type;
  std::string bytes;
};
/** An RFC 5322 message (From, To, Subject, Message-ID, Date) with a text body and attachments. */
[[nodiscard]] std::string make_message(const std::string &from, const std::string &to, const std::string &subject,
                                       const std::string &message_id, const std::string &body,
                                       const std::vector<MimeAttachment> &attachments);

} // namespace maildsar::test
