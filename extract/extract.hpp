// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Text extraction from attachment files (issue 11 class 5): PDF (poppler-cpp), Office Open XML
// (DOCX, XLSX, PPTX) and OpenDocument (ODT, ODS, ODP) with libzip + libxml2, RTF, ZIP archives
// and gzip files, TNEF (winmail.dat, libytnef: body, MAPI strings and attachments) recursively
// and bounded, and plain text files found inside archives.
//
// These functions parse untrusted bytes with C libraries that crash or loop on hostile input: the
// program never calls them itself. They run in the worker process (`maildsar-extract-worker
// extract-text`, connectors/attachment_text.*), under its CPU, memory and wall-clock limits.
// Every output is bounded (Limits), so a zip bomb stops at the cap.

#include "core/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace maildsar::extract {

/** The file formats text is extracted from. */
enum class Format { none, pdf, ooxml, odf, rtf, zip, gzip, tnef, message, text };

[[nodiscard]] std::string_view to_string(Format format);

/**
 * The format of an attachment from its bytes (magic numbers first), its MIME type and its file
 * name. Format::none when nothing is extracted from it (images, executables, unknown).
 * `text` is returned only for names with a text extension (.txt, .csv, .eml, ...), used for
 * members of archives; the MIME parser handles text parts itself.
 */
[[nodiscard]] Format detect(std::string_view bytes, std::string_view mime_type, std::string_view name);

/** Bounds of one extraction (configurable: limits.extract_*, docs/reliability.md). */
struct Limits {
  std::uint64_t max_text_bytes = 4U << 20;        // text returned per attachment; the rest is cut
  std::uint64_t max_inflated_bytes = 256U << 20;  // bytes decompressed from archives, in total
  std::uint32_t max_depth = 3;                    // archives within archives
  std::uint32_t max_pages = 5000;                 // PDF pages read
};

/** What one extraction gave. */
struct Extracted {
  std::string text;                  // UTF-8
  bool truncated = false;            // a limit cut the text (named in `warnings`)
  std::vector<std::string> warnings; // non-fatal: a member skipped, a limit reached
};

/**
 * The text of `bytes` in `format`.
 * @errors ErrorCode::data when the file is not of that format or cannot be read (a broken
 *         PDF, a ZIP without the parts of its format, an encrypted document).
 */
[[nodiscard]] core::Result<Extracted> extract_text(Format format, std::string_view bytes, const Limits &limits);

/** detect() then extract_text(); ErrorCode::data for Format::none. */
[[nodiscard]] core::Result<Extracted> extract_any(std::string_view bytes, std::string_view mime_type,
                                                  std::string_view name, const Limits &limits);

/**
 * Decodes an e-mail message (RFC 5322 / MIME) found inside an archive or a TNEF stream into text:
 * its header addresses with their display names, subject and text parts, at most `max_bytes`.
 * extract/ has no MIME parser (it sits below connectors/, docs/ARCHITECTURE.md): the worker
 * installs connectors' decoder here (connectors/attachment_worker.cpp). Without one, a message
 * is read as plain text (Format::text). @errors ErrorCode::data when it is not a message.
 */
using MessageDecoder = core::Result<std::string> (*)(std::string_view message, std::uint64_t max_bytes);
void set_message_decoder(MessageDecoder decoder);

/** RTF to plain UTF-8 text (control words dropped, \'hh and \u escapes decoded); never fails. */
[[nodiscard]] std::string rtf_to_text(std::string_view rtf, std::uint64_t max_bytes);

} // namespace maildsar::extract
