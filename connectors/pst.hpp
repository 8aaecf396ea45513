// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

#include "connectors/connector.hpp"
#include "connectors/isolate.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace maildsar::connectors {

/** What one PST/OST scan found, by libpst item kind (readpst's classification). */
struct PstScanStats {
  std::uint64_t folders = 0;      // folders walked (the top of folders included)
  std::uint64_t emails = 0;       // messages: IPM.Note, meeting requests (schedule), reports
  std::uint64_t contacts = 0;     // contacts
  std::uint64_t appointments = 0; // calendar items
  std::uint64_t journals = 0;     // journal entries
  std::uint64_t others = 0;       // tasks, sticky notes, distribution lists, anything else
  std::uint64_t unreadable = 0;   // items libpst could not parse (each reported as ScanError)

  [[nodiscard]] std::uint64_t items() const {
    return emails + contacts + appointments + journals + others;
  }
};

/**
 * An attachment of a PST item that the scan sets aside for its caller instead of reading it
 * itself: a document whose text the extract worker gives (PDF, Office, OpenDocument, RTF, ZIP,
 * gzip, TNEF; connectors/attachment_text.hpp) or an attached e-mail file (message/rfc822, .eml)
 * that the MIME parser decodes. The PST worker streams these to the parent ('A' frames, before
 * the item they belong to), so that attachments of PST messages go through the same extraction,
 * cache and problem counting as MIME attachments (merge_pst_attachments).
 */
struct PstAttachment {
  std::uint64_t node_id = 0; // the item it belongs to (the outer message for nested ones)
  std::string position;      // "2": the item's second attachment; "3.1": in an attached message
  std::string name;          // file name ("" when none)
  std::string mime_type;     // as stored ("" when none)
  std::uint64_t size = 0;    // bytes in the PST
  bool message = false;      // an attached e-mail file: decoded by the MIME parser
  bool withheld = false;     // larger than the bounds: its bytes were not read (truncated)
  std::string bytes;         // empty when withheld
};

/** What scan_pst_file_in_process sets aside, and where it goes. */
struct PstAttachmentOptions {
  bool documents = false;                    // documents too (attachment text is on), not only messages
  std::uint64_t max_attachment_bytes = 48U << 20; // limits.extract_max_attachment_mib
  std::uint64_t max_item_bytes = 64U << 20;  // all set-aside bytes of one item (limits.max_item_mib)
  std::function<void(PstAttachment &&)> sink;
};

/**
 * Adds what the set-aside attachments of `item` hold: each document's text (extract_attachments:
 * cache, then the extract worker) as `attachment-body` with the attachment's name as field, its
 * hash (Item::attachment_hashes), a failure as one Item::problems entry naming the attachment, a
 * cut as Item::truncated; each attached message's addresses, header fields and text (MIME
 * parser, its own attachments extracted the same way) as `attachment-body`.
 */
void merge_pst_attachments(Item &item, std::vector<PstAttachment> &attachments);

/**
 * Reads every item of one PST/OST file (all folders, recursively, Deleted Items included) and
 * hands each to `sink` as an Item with locator {source, pst, path, folder path, node id}.
 * Items libpst cannot parse go to sink.error and the scan goes on.
 *
 * libpst runs in a worker process (isolate.hpp, task "pst-scan") under pst_limits(): items are
 * streamed to `sink` as the worker finds them, so when the worker crashes, hangs or bloats, the
 * items before that point have reached the sink and the returned error names the file and the
 * signal or limit.
 *
 * @param source  the source name put into each locator
 * @param path    absolute path of the file
 * @param sink    receives items and per-item problems
 * @return the counts by item kind
 * @errors ErrorCode::data when the file is not a PST/OST, its indexes cannot be read, or the
 *         worker crashed or exceeded a limit; ErrorCode::no_input / permission / io when it
 *         cannot be opened; ErrorCode::internal when no worker can be started.
 * Thread-safe: each call has its own worker process.
 */
[[nodiscard]] core::Result<PstScanStats> scan_pst_file(const std::string &source,
                                                       const std::string &path, ItemSink &sink);

/**
 * scan_pst_file in this process: what the worker runs. A corrupt file can crash the calling
 * process; nothing but the worker (and tests of the parser itself) calls this. With
 * `attachments`, attached messages (and, with `documents`, documents) go to attachments->sink
 * before the item they belong to; without, attached messages are decoded here and documents give
 * their names only.
 * Thread-safe: libpst keeps global state (debug call stack, iconv handles), so in-process scans
 * are serialised by a process-wide mutex.
 */
[[nodiscard]] core::Result<PstScanStats> scan_pst_file_in_process(const std::string &source,
                                                                  const std::string &path, ItemSink &sink,
                                                                  const PstAttachmentOptions *attachments = nullptr);

/**
 * The limits of every PST worker from now on (config "limits": pst_cpu_seconds, pst_memory_mib,
 * pst_timeout_seconds; set by the program after loading the config). Thread-safe.
 */
void set_pst_limits(const isolate::Limits &limits);
[[nodiscard]] isolate::Limits pst_limits();

/** Creates the pst connector for a configured source (type "pst"). */
[[nodiscard]] core::Result<std::unique_ptr<Connector>>
make_pst_connector(const core::SourceConfig &source);

} // namespace maildsar::connectors
