// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Standard renderings of PST items for the Art. 15 access package: a message as RFC 5322 with
// its attachments, a contact as vCard 3.0, a calendar item as iCalendar, anything else as text.

#include "core/result.hpp"

#include <cstdint>
#include <functional>
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

/** Receives each rendering (or the error of an item that cannot be rendered); an error stops. */
using PstRenderSink = std::function<core::Status(std::uint64_t node_id, core::Result<PstRendering> rendering)>;

/**
 * As render_pst_items, but hands the renderings one at a time to `sink` (in the file's descriptor
 * order; ids not found last), so that a whole PST can be rewritten without holding it in memory.
 *
 * libpst runs in a worker process (isolate.hpp, task "pst-render") under pst_limits(); the
 * renderings are streamed back. A worker that crashes or exceeds a limit is an ErrorCode::data
 * error naming the file and the signal or limit (renderings handed over before stay handed over).
 */
[[nodiscard]] core::Status for_each_pst_rendering(const std::string &path, const std::vector<std::uint64_t> &node_ids,
                                                  const PstRenderSink &sink);

/** for_each_pst_rendering in this process: what the worker runs (a corrupt file can crash it). */
[[nodiscard]] core::Status for_each_pst_rendering_in_process(const std::string &path,
                                                             const std::vector<std::uint64_t> &node_ids,
                                                             const PstRenderSink &sink);

/** Where a PST item came from, recorded in its mbox message. */
struct PstMboxContext {
  std::string pst_name; // the PST's file name
  std::string folder;   // its folder path in the PST
  std::uint64_t node_id = 0;
  std::int64_t now = 0; // the conversion time: the "From " line, and the Date of wrapped items
};

/**
 * One PST item as an mbox entry (`plan --pst convert`): the "From " line, the message with
 * X-Maildsar-PST-File/-Folder/-Node headers, LF line ends, mboxrd ">From " quoting and a
 * closing blank line. A message rendering keeps its headers and MIME body; a contact, calendar
 * item or other item becomes a message whose one part is the vCard / iCalendar / text.
 */
[[nodiscard]] std::string to_mbox_message(const PstRendering &rendering, const PstMboxContext &context);

} // namespace maildsar::connectors
