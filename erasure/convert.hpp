// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once

/*
 * `plan --pst convert`: a PST file is replaced by an mbox archive that holds every item of the
 * PST except the subject's. Internal to erasure/ (execute.cpp runs it as one journalled step).
 */
#include "connectors/item.hpp"
#include "connectors/store_writer.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "erasure/erasure.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <set>
#include <string>

namespace maildsar::erasure {

/** One PST file to convert. */
struct PstConversionJob {
  std::string pst_path;
  std::string pst_source;
  FileIdentity planned;              // the PST file when the plan was made
  std::set<std::uint64_t> leave_out; // node ids of the subject's items
  std::string mbox_path;             // the manifest's convert_to
  const core::SourceConfig *mbox_source = nullptr; // the source that indexes mbox_path
  std::string original_to;           // where the PST file goes once the archive verifies
};

/** The kinds of the subject's identifiers an item shows (empty = none). */
using SubjectCheck = std::function<std::set<std::string>(const connectors::Item &item)>;

struct PstConversionOutcome {
  std::string result; // done | stale | failed
  std::string detail;
  std::uint64_t kept = 0; // items written to the archive
};

/**
 * Converts one PST file; resumable. `journal` is the step's journal detail: the function records
 * in it (and persists through `save` before the archive is published) the archive's SHA-256, so
 * that a resumed run recognises its own archive. Order: read every item of the PST (any item
 * that cannot be read or rendered stops the conversion: it would be lost); write the archive
 * beside its final name; fsync; rescan it with the mbox connector: one message per kept item, no
 * scan error and nothing of the subject (else nothing changes); publish it (never replacing a
 * file); then move the PST to `original_to`. The PST is touched only after the archive verified,
 * and only when it is still the file that was planned (else "stale").
 *
 * Hook steps: "convert:temp-synced", "convert:verified", "convert:published",
 * "convert:original-moved".
 */
[[nodiscard]] core::Result<PstConversionOutcome>
convert_pst(const PstConversionJob &job, const SubjectCheck &subject, nlohmann::json &journal,
            const std::function<core::Status(const nlohmann::json &)> &save, const connectors::StepHook &hook);

/** Where `plan --pst convert`'s PST file goes: <originals_dir>/<name>-<manifest hash prefix>.pst. */
[[nodiscard]] std::string original_destination(const core::Config &config, const std::string &pst_path,
                                               const std::string &manifest_hash);

} // namespace maildsar::erasure
