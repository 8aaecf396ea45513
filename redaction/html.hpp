// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// HTML parts for redaction/message.cpp: parsed with libxml2's HTML parser (entities decoded, so
// "alice&#64;example.com" is seen as the address it shows), each text, comment and attribute
// value passed through `redact`, and written back well-formed. libxml2 is in a module loaded on
// first use (redaction/html_module.hpp).

#include "core/result.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace maildsar::redaction {

/**
 * `html` (UTF-8) with every text node, comment and attribute value replaced by what `redact`
 * makes of it; the input itself (byte for byte) when `redact` changed nothing; nullopt when
 * libxml2 cannot parse it, or stopped at a limit (nesting too deep) before its end.
 * ErrorCode::internal when the HTML module cannot be loaded; what `redact` throws propagates.
 */
[[nodiscard]] core::Result<std::optional<std::string>>
redact_html(const std::string &html, const std::function<std::string(std::string_view)> &redact);

} // namespace maildsar::redaction
