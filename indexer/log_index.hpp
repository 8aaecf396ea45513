// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// The delivery-log side of the indexer (internal to indexer/): a log is scanned into block
// documents (indexer/log_block.hpp) that go to the writer through the pipeline; the content
// marks of a completely scanned log let a later run recognise it after rotation; the writer's
// helpers for the block rows of the catalog.

#include "core/config.hpp"
#include "core/result.hpp"
#include "indexer/catalog.hpp"
#include "indexer/document.hpp"
#include "indexer/index_store.hpp"
#include "indexer/pipeline.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

namespace maildsar::index::pipeline {

/** The marks of a log just scanned in full (plain: up to the listed size). Empty on failure. */
[[nodiscard]] ContentMarks content_marks(const FileEntry &entry);

/**
 * Scans the log of `job` into block documents sent to `queue` (with a MsgBegin before each
 * attempt), from `from` in `mode`; an append scan whose old end is no longer a transaction
 * boundary falls back to a full one (`mode` and `from` then say so).
 */
core::Status scan_log_blocks(const Job &job, std::size_t index, Queue &queue,
                             const DocumentContext &ctx, ScanMode &mode, std::uint64_t &from);

/** A catalog row of a log block: adds its transactions' first lines; false for other rows. */
[[nodiscard]] core::Result<bool> old_block_lines(IndexStore &store, const ItemRecord &row,
                                                 std::unordered_set<std::uint64_t> &lines);

/**
 * The block of catalog row `row` built again from its log as it is now (`entry`, a plain log
 * edited in place with lines of the same length: erasure's pseudonyms): its transactions read
 * again from its range, their terms, digest and checks anew; key, range and first lines as
 * before. nullopt when that cannot be exact (a transaction cut or split at a limit, which
 * depends on the whole scan; other transactions than before): the log is then read whole.
 */
[[nodiscard]] core::Result<std::optional<MsgDoc>> rebuild_log_block(IndexStore &store, const ItemRecord &row,
                                                                   const DocumentContext &ctx,
                                                                   const FileEntry &entry);

/** The data and locator key of a log block's document once its log is at `new_path`. */
[[nodiscard]] core::Result<RelocatedData> relocate_log_block(std::string_view data,
                                                             const std::string &new_path);

} // namespace maildsar::index::pipeline
