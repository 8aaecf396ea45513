// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

// Rotated delivery logs (internal to indexer/): their documents move to the new path instead
// of being indexed again (see rotation.cpp, "Rotation").

#include "core/result.hpp"
#include "indexer/catalog.hpp"
#include "indexer/indexer.hpp"
#include "indexer/pipeline.hpp"
#include "indexer/writer.hpp"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace maildsar::index::pipeline {

/**
 * Recognises rotated logs (rotation.cpp, "Rotation"): moves the documents of every origin whose
 * content is found under a target path, and rewrites `jobs` (a moved target needs no scan, or
 * only of its new part). `moved_gone` receives the vanished paths whose rows the moves handle.
 */
[[nodiscard]] core::Status follow_rotation(const std::string &source, std::int64_t source_id,
                                           const std::unordered_map<std::string, FileRecord> &old_files,
                                           const std::unordered_set<std::string> &present,
                                           std::vector<Job> &jobs, Writer &writer, SourceSummary &sum,
                                           std::unordered_set<std::string> &moved_gone);

} // namespace maildsar::index::pipeline
