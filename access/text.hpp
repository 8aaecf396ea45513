// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Text made safe for a report (access/text.cpp): compiled into access/ and into the PDF module.

#include <string>
#include <string_view>

namespace maildsar::access {

/** Valid UTF-8 (invalid bytes as U+FFFD, control characters except \t\n as U+FFFD; \r dropped). */
[[nodiscard]] std::string clean_utf8(std::string_view raw);

/** HTML text/attribute escaping of clean_utf8(raw): & < > " '. */
[[nodiscard]] std::string html_escape(std::string_view raw);

} // namespace maildsar::access
