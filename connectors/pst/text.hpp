// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Text helpers of the PST reader (pst/*.cpp): strings as libpst gives them made valid UTF-8,
// HTML and RTF bodies made plain text.

#include <string>
#include <string_view>

namespace maildsar::connectors::pst {

/** Makes `bytes` valid UTF-8: as is when it already is, else Windows-1252, else replaced. */
std::string ensure_utf8(std::string bytes, const char *charset = "WINDOWS-1252");

/** `text` without leading and trailing blanks, CRs and LFs. */
std::string trim(std::string_view text);

/** Whether `text` starts with `prefix`, ASCII letters compared without case. */
bool iequals_prefix(std::string_view text, std::string_view prefix);

/** `text` with ASCII letters lowercased. */
std::string lower_ascii(std::string_view text);

/** HTML to plain text: drops tags, comments, <style>/<script>/<head> content; decodes entities. */
std::string html_to_text(std::string_view html);

/**
 * RTF to plain text, best effort: keeps the document text, \par and \line as newlines, \'hh as
 * Windows-1252, \uN as Unicode; drops destinations ({\*...}, font/colour tables, pictures,
 * stylesheet, info) and every other control word. HTML encapsulated in RTF keeps its text.
 */
std::string rtf_to_text(std::string_view rtf);

} // namespace maildsar::connectors::pst
