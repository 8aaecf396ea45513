// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Attachment text (issue 11 class 5): the MIME parser hands the attachments it cannot read as
// text (PDF, Office, OpenDocument, RTF, ZIP, gzip) to extract_attachments(), which looks each up
// in the cache by the SHA-256 of its decoded bytes and extracts the others in the worker process
// (`maildsar-extract-worker extract-text --serve`, long-lived, one per thread; extract/ under
// isolate.hpp's limits, per request). A worker that crashes,
// exceeds a limit or hangs costs one counted problem naming the attachment; the message is still
// indexed from its other parts. docs/ARCHITECTURE.md, "The worker process".

#include "connectors/isolate.hpp"
#include "core/result.hpp"
#include "extract/extract.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace maildsar::connectors {

/** How attachment text is extracted (config "limits": extract_*; docs/reliability.md). */
struct AttachmentTextSettings {
  bool enabled = false;        // off until the program loads a config (tests, the worker itself)
  std::string cache_path;      // the cache database (state/attachments.sqlite3); "" = no cache
  isolate::Limits worker{.cpu_seconds = 60, .memory_mib = 1024, .wall_seconds = 300};
  extract::Limits extract;     // text, decompression, nesting and page bounds
  std::uint64_t max_attachment_bytes = 48U << 20; // larger attachments: names only, one warning
};

/** Settings for every extraction from now on (set when the program loads its config). */
void set_attachment_text(const AttachmentTextSettings &settings);
[[nodiscard]] AttachmentTextSettings attachment_text_settings();
[[nodiscard]] bool attachment_text_enabled();

/** The cache file in a state directory. */
[[nodiscard]] std::string attachment_cache_path(const std::string &state_dir);

/** One attachment to extract text from: the decoded bytes of a MIME part (or of a PST attachment). */
struct Attachment {
  std::string name;      // file name ("" when none)
  std::string mime_type; // "application/pdf"
  std::string part;      // MIME part number ("2", "1.3"), or the position in a PST item
  std::string bytes;
  std::string container = "MIME part"; // what `part` numbers, in messages: "PST attachment"
};

/** What was found for one attachment. */
struct AttachmentText {
  std::string sha256;                // of the decoded bytes: the cache key
  std::string text;                  // "" when nothing was extracted
  std::vector<std::string> warnings; // truncation, skipped members (non-fatal)
  std::string problem;               // non-empty: extraction failed (crash, limit, broken file)
  /** A limit cut the text (text, decompression, depth, pages) or the attachment was too large to
      extract: its text is indexed in part (the message gets Item::truncated). */
  bool truncated = false;
};

/**
 * Text of each attachment, in order: from the cache, else extracted by the calling thread's
 * long-lived worker (isolate::Worker; one request for all cache misses of the call). After a
 * failure the rest run in a fresh worker; an attachment is blamed only for a failure in a worker
 * that started fresh with it at the head of the request. Never fails as a whole: a failure is the
 * `problem` of the attachment it belongs to. Thread-safe (one worker per thread).
 */
[[nodiscard]] std::vector<AttachmentText> extract_attachments(const std::vector<Attachment> &attachments);

/** The calling thread's extract worker process, when one runs (diagnostics, tests). */
[[nodiscard]] std::optional<int> extract_worker_pid();

/**
 * Drops every cache entry whose SHA-256 is not in `keep` and rewrites the file so that no freed
 * page keeps the dropped text (after an erasure: compact_state). A missing cache is fine.
 */
[[nodiscard]] core::Status prune_attachment_cache(const std::string &cache_path,
                                                  const std::unordered_set<std::string> &keep);

/** The worker's task "extract-text" (cli/worker_main.cpp); extract/ runs here. */
[[nodiscard]] core::Status serve_extract_text(std::string_view request, isolate::Channel &channel);

} // namespace maildsar::connectors
