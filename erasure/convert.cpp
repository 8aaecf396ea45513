// SPDX-License-Identifier: GPL-3.0-or-later
// `plan --pst convert`: a PST file becomes an mbox archive without the subject's items.
#include "erasure/convert.hpp"

#include "connectors/connector.hpp"
#include "connectors/pst.hpp"
#include "connectors/pst_export.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"

#include <fmt/format.h>

#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <vector>

namespace maildsar::erasure {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

/** Remembers where each PST item is (not its contents) and every problem of the walk. */
class PstLayout : public connectors::ItemSink {
public:
  void item(connectors::Item &&item) override {
    std::lock_guard lock(m_mutex);
    order.push_back(item.locator.node_id);
    folders.emplace(item.locator.node_id, item.locator.folder);
  }
  void error(connectors::ScanError &&error) override {
    std::lock_guard lock(m_mutex);
    errors.push_back(fmt::format("{}{}: {}", error.path, error.position.empty() ? "" : " " + error.position,
                                 error.cause));
  }
  std::vector<std::uint64_t> order;
  std::map<std::uint64_t, std::string> folders;
  std::vector<std::string> errors;

private:
  std::mutex m_mutex;
};

/** Counts what a rescan of the new archive finds, and whether any of it is the subject's. */
class ArchiveCheck : public connectors::ItemSink {
public:
  explicit ArchiveCheck(const SubjectCheck &subject) : m_subject(subject) {}
  void item(connectors::Item &&item) override {
    std::lock_guard lock(m_mutex);
    ++messages;
    if (!m_subject(item).empty()) {
      ++subject_items;
    }
  }
  void error(connectors::ScanError &&error) override {
    std::lock_guard lock(m_mutex);
    errors.push_back(fmt::format("{}: {}", error.position, error.cause));
  }
  std::uint64_t messages = 0;
  std::uint64_t subject_items = 0;
  std::vector<std::string> errors;

private:
  const SubjectCheck &m_subject;
  std::mutex m_mutex;
};

bool same_file(const core::FileStat &st, const FileIdentity &planned) {
  return st.dev == planned.dev && st.ino == planned.ino && st.size == planned.size &&
         st.mtime_ns == planned.mtime_ns;
}

PstConversionOutcome outcome(std::string result, std::string detail, std::uint64_t kept = 0) {
  return PstConversionOutcome{std::move(result), std::move(detail), kept};
}

/**
 * Writes and verifies the archive, then publishes it. Returns the number of items kept, or the
 * reason nothing was published (as a failed outcome's detail, in the error's message).
 */
core::Result<std::uint64_t> write_archive(const PstConversionJob &job, const SubjectCheck &subject, json &journal,
                                          const std::function<core::Status(const json &)> &save,
                                          const connectors::StepHook &hook) {
  PstLayout layout;
  MAILDSAR_TRY(connectors::scan_pst_file(job.pst_source, job.pst_path, layout));
  if (!layout.errors.empty()) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{} item(s) of the PST cannot be read, so converting it would lose them ({}); "
                                  "nothing was changed",
                                  layout.errors.size(), layout.errors.front()));
  }
  std::vector<std::uint64_t> keep;
  std::uint64_t left_out = 0;
  for (std::uint64_t id : layout.order) {
    if (job.leave_out.contains(id)) {
      ++left_out;
    } else {
      keep.push_back(id);
    }
  }
  if (left_out != job.leave_out.size()) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("{} of the planned item(s) are not in the PST any more; nothing was changed",
                                  job.leave_out.size() - left_out),
                      std::string(connectors::k_stale_hint));
  }

  fs::path mbox(job.mbox_path);
  std::error_code ec;
  fs::create_directories(mbox.parent_path(), ec);
  MAILDSAR_TRY_ASSIGN(core::FileStat pst_stat, core::lstat_file(job.pst_path));
  MAILDSAR_TRY_ASSIGN(core::NewFile out, core::NewFile::create(job.mbox_path, (pst_stat.mode & 0666) | 0600));
  const std::string pst_name = fs::path(job.pst_path).filename().string();
  const std::int64_t now = std::time(nullptr);
  core::Sha256 digest;
  std::uint64_t written = 0;
  MAILDSAR_TRY(connectors::for_each_pst_rendering(
      job.pst_path, keep, [&](std::uint64_t id, core::Result<connectors::PstRendering> r) -> core::Status {
        if (!r) {
          return core::fail(core::ErrorCode::data,
                            r.error().message + "; converting the PST would lose it; nothing was changed");
        }
        const std::string entry =
            connectors::to_mbox_message(*r, connectors::PstMboxContext{pst_name, layout.folders[id], id, now});
        digest.update(entry);
        ++written;
        return out.write(entry);
      }));
  MAILDSAR_TRY(out.sync());
  MAILDSAR_TRY(hook("convert:temp-synced"));

  // Read the archive back as the indexer will: every kept item, nothing of the subject.
  MAILDSAR_TRY_ASSIGN(std::unique_ptr<connectors::Connector> reader, connectors::make_connector(*job.mbox_source));
  MAILDSAR_TRY_ASSIGN(core::FileStat temp_stat, core::lstat_file(out.temp_path()));
  ArchiveCheck check(subject);
  MAILDSAR_TRY(reader->scan(connectors::FileEntry{out.temp_path(), "", "", temp_stat}, 0, check));
  if (!check.errors.empty() || check.messages != written || check.subject_items > 0) {
    return core::fail(core::ErrorCode::data,
                      fmt::format("the new archive did not verify ({} message(s) read back of {} written, {} "
                                  "scan error(s){}, {} with the subject's identifiers); nothing was changed",
                                  check.messages, written, check.errors.size(),
                                  check.errors.empty() ? std::string() : ": " + check.errors.front(),
                                  check.subject_items));
  }
  MAILDSAR_TRY(hook("convert:verified"));
  journal["mbox_sha256"] = digest.hex_digest();
  journal["kept"] = written;
  MAILDSAR_TRY(save(journal));
  MAILDSAR_TRY(out.commit());
  MAILDSAR_TRY(hook("convert:published"));
  return written;
}

} // namespace

std::string original_destination(const core::Config &config, const std::string &pst_path,
                                 const std::string &manifest_hash) {
  const fs::path p(pst_path);
  return (fs::path(config.erasure.pst_originals_dir) /
          fmt::format("{}-{}{}", p.stem().string(), manifest_hash.substr(0, 12), p.extension().string()))
      .string();
}

core::Result<PstConversionOutcome> convert_pst(const PstConversionJob &job, const SubjectCheck &subject,
                                               json &journal, const std::function<core::Status(const json &)> &save,
                                               const connectors::StepHook &hook) {
  if (job.mbox_source == nullptr) {
    return outcome("failed", job.mbox_path + ": no mbox source covers it any more; nothing was changed");
  }
  const std::string ours = journal.value("mbox_sha256", std::string());
  auto archive_is_ours = [&]() -> bool {
    auto sha = core::sha256_file(job.mbox_path);
    return !ours.empty() && sha && *sha == ours;
  };
  auto pst = core::lstat_file(job.pst_path);
  if (!pst) {
    // Moved by an interrupted run of this manifest, or gone since planning.
    if (archive_is_ours() && core::lstat_file(job.original_to)) {
      return outcome("done", "", journal.value("kept", std::uint64_t{0}));
    }
    return outcome("stale", "the PST file no longer exists; nothing was changed");
  }
  if (!same_file(*pst, job.planned)) {
    return outcome("stale", "the PST file changed since planning; nothing was changed");
  }
  std::uint64_t kept = journal.value("kept", std::uint64_t{0});
  if (core::lstat_file(job.mbox_path)) {
    if (!archive_is_ours()) {
      return outcome("failed", job.mbox_path + " exists and was not written by this erasure; nothing was changed");
    }
  } else {
    auto written = write_archive(job, subject, journal, save, hook);
    if (!written) {
      return outcome(connectors::is_stale(written.error()) ? "stale" : "failed", written.error().message);
    }
    kept = *written;
  }

  // The archive is published and verified: now the original leaves the store.
  fs::path dest(job.original_to);
  MAILDSAR_TRY(core::ensure_private_dir(dest.parent_path().string()));
  auto pst_again = core::lstat_file(job.pst_path);
  if (!pst_again || !same_file(*pst_again, job.planned)) {
    return outcome("failed", fmt::format("the PST file changed while it was converted; {} was written but the "
                                         "original stays in place",
                                         job.mbox_path));
  }
  if (auto moved = core::move_file_durably(job.pst_path, job.original_to); !moved) {
    return outcome("failed", fmt::format("{} was written, but moving the original failed: {}", job.mbox_path,
                                         moved.error().message));
  }
  MAILDSAR_TRY(hook("convert:original-moved"));
  return outcome("done", "", kept);
}

} // namespace maildsar::erasure
