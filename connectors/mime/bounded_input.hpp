// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/limits.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace maildsar::connectors::mime {

/**
 * Bounds a message before GMime sees it (issue 13 item 12): the input is cut at
 * `max_item_bytes`; a line longer than `max_header_bytes` is cut to that length; a header field
 * whose folded lines together exceed `max_header_bytes` loses the lines beyond; the message is cut
 * before the boundary line that would start MIME part number `max_mime_parts + 1` (boundaries are
 * those named by `boundary=` parameters). Returns `input` itself when nothing is cut, else a view
 * of `storage`; each kind of cut adds one note (with the byte offset of its first occurrence) to
 * `notes`. Cost: one pass, one copy only when something is cut.
 */
[[nodiscard]] std::string_view bound_input(std::string_view input, const ItemLimits &limits,
                                           std::string &storage, std::vector<std::string> &notes);

} // namespace maildsar::connectors::mime
