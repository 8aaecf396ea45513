// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Standard renderings of PST items for the Art. 15 access package: a message as RFC 5322 with
// its attachments, a contact as vCard 3.0, a calendar item as iCalendar, anything else as text.

#include "core/result.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace maildsar::connectors {

/** One PST item in a standard form. */
struct PstRendering {
  std::string extension; // "eml", "vcf", "ics" or "txt"
  std::string bytes;
};

/**
 * Renders the items with descriptor node ids `node_ids` of the PST/OST file `path` (one walk of
 * the file). An id that is not in the file, or an item libpst cannot parse, maps to an
 * ErrorCode::data error naming the file and the node.
 *
 * Messages: the transport headers as stored (when the PST kept them) without their MIME
 * structure headers, else headers rebuilt from the item's properties; then a multipart/mixed
 * body: text and HTML bodies (multipart/alternative) and every attachment, base64-encoded.
 *
 * @errors ErrorCode::data when the file is not a PST/OST libpst can read; no_input/permission/io
 *         when it cannot be opened.
 */
[[nodiscard]] core::Result<std::map<std::uint64_t, core::Result<PstRendering>>>
render_pst_items(const std::string &path, const std::vector<std::uint64_t> &node_ids);

} // namespace maildsar::connectors
